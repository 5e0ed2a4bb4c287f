"""What every source hands the writer: its options (recorded in ingest.json) and its records."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Source:
    kind: str                      # "img2dataset", "folder", "datacomp"
    config: dict                   # everything that determines the pool's content (checked on resume)
    records: Iterator[Any]         # Records (image sources) or frames (datacomp), produced lazily
    total: int | None = None       # rows, when cheap to know (for the progress bar)
    write: Callable | None = None  # how its records become shards; None = writer.write_records
    meta_schema: dict | None = None  # meta columns the source adds after the pool's own (Record.columns)


def json_safe(value: Any) -> Any:
    """Source metadata as JSON: bytes dropped, NaN as null, numpy/arrow scalars as Python values."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items() if not isinstance(v, bytes | bytearray)}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "item"):
        return json_safe(value.item())
    return str(value)
