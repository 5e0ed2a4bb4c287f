"""`curate ingest folder DIR --captions FILE`: a folder of images plus a table of (path, caption).

Each table row becomes one sample, in table order. Its key is the image path with every
character outside [A-Za-z0-9_-] replaced by `_` (so it is a valid WebDataset key); the path
itself is kept in the sample's json. A listed image that is not on disk is kept as a row
with status `missing_image`. An optional `uid` column is kept (32 hex characters).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from tierclip.curate.errors import UserError
from tierclip.curate.ingest.captions import captions_format, read_captions
from tierclip.curate.ingest.source import Source
from tierclip.curate.ingest.writer import Record

MAX_KEY_CHARS = 64


@dataclass(frozen=True)
class FolderConfig:
    root: Path
    captions: Path
    path_col: str = "path"
    caption_col: str = "caption"
    uid_col: str = "uid"


def open_folder(cfg: FolderConfig) -> Source:
    if not cfg.root.is_dir():
        raise UserError(f"{cfg.root}: no such image folder")
    if not cfg.captions.is_file():
        raise UserError(f"{cfg.captions}: no such captions file")
    captions_format(cfg.captions)
    rows = read_captions(cfg.captions, (cfg.path_col, cfg.caption_col), (cfg.uid_col,))
    first = next(rows, None)   # reads the header now, so a wrong column is an error before anything is written
    config = {"source": "folder", "input": str(cfg.root.resolve()), "captions": str(cfg.captions.resolve()),
              "path_col": cfg.path_col, "caption_col": cfg.caption_col, "uid_col": cfg.uid_col}
    return Source("folder", config, _records(cfg, first, rows))


def _records(cfg: FolderConfig, first: dict | None, rows: Iterator[dict]) -> Iterator[Record]:
    if first is None:
        return
    for row_no, row in enumerate(chain([first], rows), start=1):
        yield _record(cfg, row_no, row)


def _record(cfg: FolderConfig, row_no: int, row: dict) -> Record:
    rel = _text(row.get(cfg.path_col))
    caption = row.get(cfg.caption_col)
    uid = _text(row.get(cfg.uid_col))
    if not rel:
        return Record(key=f"row{row_no:09d}", caption=caption, uid=uid, extra={"row": row_no},
                      status="missing_image", error=f"{cfg.captions}: row {row_no}: no image path")
    path = cfg.root / rel
    extra = {"path": rel}
    if not path.is_file():
        return Record(key=path_key(rel), caption=caption, uid=uid, extra=extra,
                      status="missing_image", error=f"{path}: no such image file")
    return Record(key=path_key(rel), image=path.read_bytes(), image_ext=path.suffix.lstrip(".").lower() or None,
                  caption=caption, uid=uid, extra=extra)


def _text(value) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", errors="surrogateescape") if isinstance(value, bytes) else str(value)


def path_key(rel: str) -> str:
    """A WebDataset-safe key from a relative path: `a/b.c.jpg` -> `a_b_c`; long ones end in a hash."""
    stem = rel[: -len(Path(rel).suffix)] if Path(rel).suffix else rel
    key = re.sub(r"[^A-Za-z0-9_-]", "_", stem) or "_"
    if len(key) > MAX_KEY_CHARS:
        digest = hashlib.blake2b(rel.encode("utf-8", errors="surrogateescape"), digest_size=8).hexdigest()
        key = f"{key[: MAX_KEY_CHARS - 17]}_{digest}"
    return key
