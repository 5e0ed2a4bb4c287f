"""Read a captions table (CSV, JSONL or Parquet) row by row, streaming, captions as raw bytes.

Captions stay bytes so the writer can tell invalid UTF-8 (`invalid_caption`) from text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from tierclip.curate.errors import UserError

BATCH_ROWS = 4096
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def captions_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unknown captions format {path.suffix!r}; use .csv, .tsv, .jsonl or .parquet")
    return fmt


def read_captions(path: Path, columns: tuple[str, ...], optional: tuple[str, ...] = ()) -> Iterator[dict]:
    """Rows as dicts holding `columns` (required) and whichever of `optional` the file has."""
    if not path.is_file():
        raise UserError(f"{path}: no such captions file")
    readers = {"csv": _csv_rows, "tsv": _csv_rows, "jsonl": _jsonl_rows, "parquet": _parquet_rows}
    return readers[captions_format(path)](path, columns, optional)


def check_columns(path: Path, names: list[str], columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in names]
    if missing:
        raise UserError(f"{path}: no column {missing[0]!r} (columns: {', '.join(names) or 'none'}); "
                        "set --path-col / --caption-col")


def _csv_rows(path: Path, columns, optional) -> Iterator[dict]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    types = {c: pa.binary() for c in (*columns, *optional)}
    try:
        reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 22),
                               parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                               convert_options=pcsv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as exc:
        raise UserError(f"{path}: not a readable CSV ({exc})") from None
    check_columns(path, reader.schema.names, columns)
    keep = [c for c in (*columns, *optional) if c in reader.schema.names]
    row_no = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise UserError(f"{path}: after row {row_no}: {exc}") from None
        for row in batch.select(keep).to_pylist():
            row_no += 1
            yield row


def _jsonl_rows(path: Path, columns, optional) -> Iterator[dict]:
    with open(path, "rb") as handle:
        for row_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line.decode("utf-8", errors="surrogateescape"))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}: row {row_no}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise UserError(f"{path}: row {row_no}: expected a JSON object per line")
            if columns[0] not in obj:
                raise UserError(f"{path}: row {row_no}: no {columns[0]!r} field (set --path-col)")
            yield {c: _raw(obj.get(c)) for c in (*columns, *optional) if c in obj or c in columns}


def _raw(value):
    """JSON strings back to the bytes the file held (surrogateescape keeps invalid UTF-8 visible)."""
    return value.encode("utf-8", errors="surrogateescape") if isinstance(value, str) else value


def _parquet_rows(path: Path, columns, optional) -> Iterator[dict]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for non-parquet bytes
        raise UserError(f"{path}: not a readable parquet file ({exc})") from None
    names = parquet.schema_arrow.names
    check_columns(path, names, columns)
    keep = [c for c in (*columns, *optional) if c in names]
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=keep):
        yield from batch.to_pylist()
