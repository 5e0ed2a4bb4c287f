"""`curate ingest img2dataset DIR`: img2dataset's output (webdataset, parquet or files format) as records.

img2dataset writes, per shard NNNNN: `NNNNN.tar` (webdataset; only successful samples) or
`NNNNN/` (files), plus `NNNNN.parquet` listing EVERY row it tried (status `success`,
`failed_to_download`, `failed_to_resize`, error_message, url, caption, width/height,
original_width/height, exif, sha256, and any `--save_additional_columns` such as DataComp's
`uid`). With output_format=parquet that parquet also holds the image bytes (column `jpg`,
`png` or `webp`) and the caption (`txt`). We walk the parquet rows (the complete list) and
join each with its image; samples found only in the tar are kept too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path

from tierclip.curate.errors import UserError
from tierclip.curate.ingest.source import Source, json_safe
from tierclip.curate.ingest.tarread import TarContents, read_tar
from tierclip.curate.ingest.writer import Record
from tierclip.curate.pool import IMAGE_EXTS, OK, split_member_name

FORMATS = ("webdataset", "parquet", "files")
BATCH_ROWS = 1024


def open_img2dataset(root: Path, input_format: str = "auto") -> Source:
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder (expected img2dataset's output folder)")
    fmt = detect_format(root) if input_format == "auto" else input_format
    if fmt not in FORMATS:
        raise UserError(f"{root}: unknown img2dataset output format {fmt!r}; use one of {', '.join(FORMATS)}")
    shards = _shard_parquets(root, fmt)
    readers = {"webdataset": _webdataset_records, "parquet": _parquet_records, "files": _files_records}
    records = (rec for parquet in shards for rec in readers[fmt](parquet))
    config = {"source": "img2dataset", "input": str(root.resolve()), "format": fmt}
    return Source("img2dataset", config, records, total=sum(_parquet_rows(p) for p in shards))


def detect_format(root: Path) -> str:
    if any(root.glob("*.tar")):
        return "webdataset"
    if any(p.is_dir() and p.name.isdigit() for p in root.iterdir()):
        return "files"
    if any(root.glob("*.parquet")):
        return "parquet"
    raise UserError(f"{root}: no img2dataset output here (no NNNNN.tar, NNNNN/ or NNNNN.parquet shards)")


def _shard_parquets(root: Path, fmt: str) -> list[Path]:
    """One parquet per shard; for tar/folder shards the parquet next to each is required."""
    if fmt == "parquet":
        shards = sorted(p for p in root.glob("*.parquet") if p.stem.isdigit())
        if not shards:
            raise UserError(f"{root}: no NNNNN.parquet shards (is this img2dataset output with output_format=parquet?)")
        for path in shards:
            _image_column(path)
        return shards
    bodies = sorted(root.glob("*.tar")) if fmt == "webdataset" else sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    if not bodies:
        raise UserError(f"{root}: no {'NNNNN.tar' if fmt == 'webdataset' else 'NNNNN/'} shards for format {fmt}")
    stems = sorted({body.name.split(".")[0] for body in bodies} | {p.stem for p in root.glob("*.parquet") if p.stem.isdigit()})
    for stem in stems:
        if not (root / f"{stem}.parquet").is_file():
            raise UserError(f"{root / stem}.parquet: missing; img2dataset writes it next to each shard (it lists every row, "
                            "failed ones too); re-run img2dataset for this shard or remove the shard")
    return [root / f"{stem}.parquet" for stem in stems]


def _parquet_file(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for non-parquet bytes
        raise UserError(f"{path}: not a readable parquet file ({exc})") from None


def _parquet_rows(path: Path) -> int:
    return _parquet_file(path).metadata.num_rows


def _image_column(path: Path) -> str:
    names = _parquet_file(path).schema_arrow.names
    found = [ext for ext in IMAGE_EXTS if ext in names]
    if not found:
        raise UserError(f"{path}: no image column ({'/'.join(IMAGE_EXTS)}); is this img2dataset output with output_format=parquet?")
    return found[0]


def _rows(path: Path) -> Iterator[dict]:
    parquet = _parquet_file(path)
    if "key" not in parquet.schema_arrow.names:
        raise UserError(f"{path}: no `key` column; not an img2dataset shard parquet")
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        yield from batch.to_pylist()


# -- the three formats -----------------------------------------------------------------
def _webdataset_records(parquet: Path) -> Iterator[Record]:
    tar_path = parquet.with_suffix(".tar")
    tar = read_tar(tar_path) if tar_path.is_file() else TarContents(absent=f"{tar_path}: missing")
    for row in _rows(parquet):
        parts = tar.take(str(row["key"]))
        yield _record(row, parts, _missing_reason(tar, str(row["key"]), parts))
    for key, parts in tar.leftovers():
        yield _record({"key": key, **_json_part(parts)}, parts, _missing_reason(tar, key, parts))


def _files_records(parquet: Path) -> Iterator[Record]:
    folder = parquet.with_suffix("")
    files: dict[str, dict[str, bytes]] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        key, ext = split_member_name(path.name)
        files.setdefault(key, {})[ext] = path.read_bytes()
    contents = TarContents(absent=None if folder.is_dir() else f"{folder}: missing")
    for key, parts in files.items():
        contents.parts.setdefault(key, deque()).append(parts)
        contents.order.append(key)
    for row in _rows(parquet):
        parts = contents.take(str(row["key"]))
        yield _record(row, parts, _missing_reason(contents, str(row["key"]), parts))
    for key, parts in contents.leftovers():
        yield _record({"key": key, **_json_part(parts)}, parts, None)


def _parquet_records(parquet: Path) -> Iterator[Record]:
    image_col = _image_column(parquet)
    for row in _rows(parquet):
        image = row.pop(image_col, None)
        caption = row.pop("txt", None)
        parts = {image_col: image} if image is not None else {}
        if caption is not None:
            parts["txt"] = caption.encode("utf-8") if isinstance(caption, str) else caption
        missing = None if image is not None else ("missing_image", "img2dataset says success but the row has no image bytes")
        yield _record(row, parts, missing)


# -- one row ---------------------------------------------------------------------------
def _missing_reason(tar: TarContents, key: str, parts: dict | None) -> tuple[str, str] | None:
    if key in tar.cut_keys:
        return "truncated_shard", tar.problem
    if parts is not None and any(ext in parts for ext in IMAGE_EXTS):
        return None
    if tar.problem:
        return "truncated_shard", f"image lost: {tar.problem}"
    if tar.absent:
        return "missing_image", f"img2dataset says success but {tar.absent}"
    return "missing_image", "img2dataset says success but its shard has no image for this key"


def _json_part(parts: dict[str, bytes]) -> dict:
    import json

    try:
        value = json.loads(parts.get("json", b"{}"))
        return value if isinstance(value, dict) else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}


def _record(row: dict, parts: dict[str, bytes] | None, missing: tuple[str, str] | None) -> Record:
    parts = parts or {}
    image_ext = next((ext for ext in IMAGE_EXTS if ext in parts), None)
    status, error = row.get("status"), row.get("error_message")
    if status in (None, OK) and missing is not None:
        status, error = missing
    caption = parts.get("txt", row.get("caption"))
    return Record(
        key=str(row["key"]),
        image=parts.get(image_ext) if image_ext else None,
        image_ext=image_ext,
        caption=caption,
        url=row.get("url"),
        uid=None if row.get("uid") is None else str(row["uid"]),
        width=_first_int(row.get("original_width"), row.get("width")),
        height=_first_int(row.get("original_height"), row.get("height")),
        extra=json_safe({k: v for k, v in row.items() if k not in ("caption",)}),
        status=status or OK,
        error=error,
    )


def _first_int(*values) -> int | None:
    return next((int(v) for v in values if v is not None), None)
