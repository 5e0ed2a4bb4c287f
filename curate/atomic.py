"""Atomic file writes: write to a temporary name in the same folder, then rename.

A reader never sees a half-written file and a killed writer leaves only a
`.tmp-*` file that the next run overwrites.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".tmp-{os.getpid()}-{path.name}")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; on success rename it over `path`.

    A failed write (disk full, read-only folder) is raised as an OSError that names `path`, so the console
    commands can say which file in one line (see curate/cliutil.py).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as exc:
        if exc.filename is not None and exc.filename != str(tmp):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(final)) from exc
    except Exception as exc:
        errno = os_error_number(exc)
        if errno is None:
            raise
        raise OSError(errno, os.strerror(errno), str(final)) from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def os_error_number(exc: BaseException) -> int | None:
    """The errno inside a library's wrapped IO error: polars reports a full disk as
    ComputeError("... No space left on device (os error 28)")."""
    found = re.search(r"\(os error (\d+)\)", str(exc))
    return int(found.group(1)) if found else None


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_bytes(path, text.encode("utf-8"))


def write_parquet(path: str | os.PathLike, frame) -> None:
    """Write a polars DataFrame atomically (zstd, statistics on: deterministic bytes)."""
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp, compression="zstd", statistics=True)


def write_npy(path: str | os.PathLike, array) -> None:
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
