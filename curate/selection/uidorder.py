"""Sort uids fast: by their two 64-bit halves instead of as strings.

For 32-character lowercase hex uids (every pool uid, see `curate.uids`)
the order of (high u64, low u64) is the string order, and polars sorts two
integer columns ~8x faster than 5 million strings. The result carries
polars' sorted flag, so `curate.subset.write_subset`'s own sort is free.
Anything that is not a 32-hex uid falls back to a plain string sort.
"""

from __future__ import annotations

import polars as pl


def sort_uids(uids: pl.Series) -> pl.Series:
    uids = uids.rename("uid").cast(pl.Utf8)
    halves = pl.DataFrame({"uid": uids}).with_columns(
        pl.col("uid").str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64, strict=False).alias("high"),
        pl.col("uid").str.slice(16).str.to_integer(base=16, dtype=pl.UInt64, strict=False).alias("low"),
        pl.col("uid").str.contains("^[0-9a-f]{32}$").alias("hex"),
    )
    if halves.height and not halves["hex"].all():
        return uids.sort()
    return halves.sort("high", "low")["uid"].set_sorted()
