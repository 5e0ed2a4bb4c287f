"""Read a WebDataset tar that may be truncated: every member up to the break, and where it broke.

`curate.pool.read_tar_samples` trusts its tars (the pool wrote them); input tars come
from elsewhere, so this reader keeps what it can read and says what it could not.
"""

from __future__ import annotations

import tarfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from tierclip.curate.pool import has_end_marker


@dataclass
class TarContents:
    parts: dict[str, deque[dict[str, bytes]]] = field(default_factory=dict)   # key -> samples (ext -> bytes), in order
    order: list[str] = field(default_factory=list)                            # keys in order of first appearance
    cut_keys: set[str] = field(default_factory=set)                           # members cut mid-way
    problem: str | None = None                                                # why the tar is incomplete, or None
    absent: str | None = None                                                 # the shard's tar (or folder) is not there

    def take(self, key: str) -> dict[str, bytes] | None:
        """The next sample stored under `key` (a key can appear twice in a bad tar)."""
        queue = self.parts.get(key)
        return queue.popleft() if queue else None

    def leftovers(self) -> list[tuple[str, dict[str, bytes]]]:
        """Samples nobody took, in tar order."""
        out = []
        for key in dict.fromkeys(self.order):
            while (sample := self.take(key)) is not None:
                out.append((key, sample))
        return out


def read_tar(path: Path) -> TarContents:
    contents = TarContents()
    current_key, current = None, None
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = input_member_key(member.name)
                if key != current_key or current is None or ext in current:
                    current_key, current = key, {}
                    contents.parts.setdefault(key, deque()).append(current)
                    contents.order.append(key)
                try:
                    current[ext] = tar.extractfile(member).read()
                except (tarfile.TarError, EOFError, OSError) as exc:
                    contents.cut_keys.add(key)
                    contents.problem = f"{path}: member {member.name} is cut mid-way ({exc})"
                    return contents
            end = tar.offset
    except (tarfile.TarError, EOFError, OSError) as exc:
        contents.problem = f"{path}: unreadable tar after {len(contents.order)} samples ({exc})"
        return contents
    if not has_end_marker(path, end):
        contents.problem = f"{path}: tar ends without its end-of-archive blocks after {len(contents.order)} samples (truncated)"
    return contents


def input_member_key(name: str) -> tuple[str, str]:
    """WebDataset's rule for a tar from elsewhere: the key is the member's whole path up to the first dot of its
    base name (`sub/dir.jpg` -> `sub/dir`, so it meets its parquet row; a leading `./` is dropped); the writer
    maps keys that are not safe member names."""
    folder, _, base = name.removeprefix("./").rpartition("/")
    key, _, ext = base.partition(".")
    return (f"{folder}/{key}" if folder else key), ext.lower()
