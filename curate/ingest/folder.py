"""`curate ingest folder DIR --captions FILE`: a folder of images plus a table of (path, caption).

Each table row becomes one sample, in table order. Its key is the image path with every
character outside [A-Za-z0-9_-] replaced by `_` (so it is a valid WebDataset key); the path
itself is kept in the sample's json. A listed image that is not on disk is kept as a row
with status `missing_image`; a path that leaves the folder (absolute, `..`, or a symbolic link
leading out unless `--follow-links`) keeps its row with status `outside_folder` and is never
read. An optional `uid` column is kept (32 hex characters).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from tierclip.curate.errors import UserError
from tierclip.curate.ingest.captions import captions_format, read_captions
from tierclip.curate.ingest.keys import shortened_key
from tierclip.curate.ingest.source import Source
from tierclip.curate.ingest.writer import Record
from tierclip.curate.paths import outside_reason

OUTSIDE_FOLDER = "outside_folder"  # status: the listed path leaves the image folder; its bytes are never read


@dataclass(frozen=True)
class FolderConfig:
    root: Path
    captions: Path
    path_col: str = "path"
    caption_col: str = "caption"
    uid_col: str = "uid"
    follow_links: bool = False  # read images behind symbolic links that lead outside `root`


def open_folder(cfg: FolderConfig) -> Source:
    if not cfg.root.is_dir():
        raise UserError(f"{cfg.root}: no such image folder")
    if not cfg.captions.is_file():
        raise UserError(f"{cfg.captions}: no such captions file")
    captions_format(cfg.captions)
    rows = read_captions(cfg.captions, (cfg.path_col, cfg.caption_col), (cfg.uid_col,))
    first = next(rows, None)   # reads the header now, so a wrong column is an error before anything is written
    config = {"source": "folder", "input": str(cfg.root.resolve()), "captions": str(cfg.captions.resolve()),
              "path_col": cfg.path_col, "caption_col": cfg.caption_col, "uid_col": cfg.uid_col,
              **({"follow_links": True} if cfg.follow_links else {})}  # recorded only when set: older pools still resume
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
    outside = outside_reason(cfg.root, rel, cfg.follow_links)
    if outside is not None:  # never read: a captions table must not copy other files into a pool
        hint = "; pass --follow-links to read it" if outside.startswith("is a symbolic link") else ""
        return Record(key=path_key(rel), caption=caption, uid=uid, extra=extra, status=OUTSIDE_FOLDER,
                      error=f"{cfg.captions}: row {row_no}: path {rel!r} {outside}; not read{hint}")
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
    return shortened_key(stem, rel)
