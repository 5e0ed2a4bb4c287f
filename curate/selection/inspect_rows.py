"""`curate inspect`'s data: why each row is out, the seeded gallery draw and the picked samples' thumbnails.

Every row gets a `reason`: null when kept, else its status (when not
`success`), else the first clause of the subset's recorded filter it fails,
else `fraction` / `not_in_subset`. The gallery takes up to `per_reason`
samples per reason (a seeded draw), thumbnails as PNG data: URIs. The page
itself (charts and HTML) is `curate.selection.inspect_page`.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl
from tierclip.curate.errors import UserError
from tierclip.curate.pool import OK, Pool, read_tar_samples
from tierclip.curate.selection.config import FilterConfig
from tierclip.curate.selection.sources import ColumnIndex, scan_columns, score_columns
from tierclip.curate.subset import Subset, check_subset_pool, read_subset

KEPT = "kept"


@dataclass(frozen=True)
class InspectConfig:
    per_reason: int = 24
    thumb_px: int = 96
    seed: int = 0
    caption_chars: int = 240

    def __post_init__(self):
        if self.per_reason < 0:
            raise UserError(f"--per-reason {self.per_reason}: must be 0 or more")
        if self.thumb_px < 1:
            raise UserError(f"thumbnail size {self.thumb_px}: must be positive")


def open_target(path: str | Path, pool_path: str | Path | None = None) -> tuple[Pool, Subset | None]:
    """A pool folder, or a subset folder (its pool from --pool or from the manifest)."""
    path = Path(path)
    if (path / "pool.json").is_file():
        return Pool(path), None
    if not (path / "uids.parquet").is_file():
        raise UserError(f"{path}: neither a pool (pool.json) nor a subset (uids.parquet)")
    subset = read_subset(path)
    recorded = subset.manifest.get("pool", {}).get("path")
    if pool_path is None and recorded is None:
        raise UserError(f"{path}/manifest.json: no pool recorded; pass --pool POOL")
    pool = Pool(pool_path or recorded)
    check_subset_pool(subset, pool)
    return pool, subset


def row_table(pool: Pool, subset: Subset | None) -> pl.DataFrame:
    """One row per pool sample: uid, shard, key, status, scores, gt flags and `reason` (null = kept)."""
    index = ColumnIndex(pool)
    complete = set(pool.stages())
    scores = [c for c in score_columns() if _available(index, c, complete)]
    frame = scan_columns(index, ["shard", "key", "status", *scores, *index.gt_flags()]).select(
        "uid", "shard", "key", "status", *scores, *index.gt_flags()).collect()
    status_reason = pl.when(pl.col("status") != OK).then(pl.col("status"))
    if subset is None:
        return frame.with_columns(status_reason.alias("reason"))
    in_subset = pl.col("uid").is_in(subset.uids["uid"].implode())
    clause = _clause_reasons(pool, subset)
    if clause is not None:
        frame = frame.join(clause, on="uid", how="left")
    fallback = _fallback_reason(subset.manifest)
    reason = (pl.when(in_subset).then(pl.lit(None, dtype=pl.Utf8))
              .when(pl.col("status") != OK).then(pl.col("status"))
              .otherwise(pl.col("dropped_by").fill_null(fallback) if clause is not None else pl.lit(fallback)))
    frame = frame.with_columns(reason.alias("reason"))
    return frame.drop("dropped_by") if clause is not None else frame


def _fallback_reason(manifest: dict) -> str:
    """Why a row that passes every recorded clause is still out of the subset."""
    if manifest.get("tier"):
        return "not_in_tier"
    return "fraction" if manifest.get("fraction") is not None else "not_in_subset"


def _available(index: ColumnIndex, column: str, complete_stages: set[str]) -> bool:
    """In meta, or in the sidecar of a stage that finished every shard."""
    try:
        stage = index.stage_of(column)
    except UserError:
        return False
    return stage is None or stage in complete_stages


def _clause_reasons(pool: Pool, subset: Subset) -> pl.DataFrame | None:
    """uid -> first failing clause of the subset's recorded filter (fraction left out)."""
    from tierclip.curate.selection.query import collect_flags, plan

    recorded = subset.manifest.get("filter_config")
    if not recorded:
        return None
    config = replace(FilterConfig.from_json(recorded), fraction=None)
    flags = collect_flags(plan(pool, config), all_uids=True)
    first = pl.when(pl.col("alive")).then(pl.lit(None, dtype=pl.Utf8))
    for name in [c[len("pass_"):] for c in flags.columns if c.startswith("pass_")]:
        first = first.when(~pl.col(f"pass_{name}")).then(pl.lit(name))
    return flags.select("uid", first.alias("dropped_by"))


def gallery_rows(rows: pl.DataFrame, config: InspectConfig) -> pl.DataFrame:
    """Up to per_reason samples per reason (kept first), a seeded draw independent of row order."""
    labelled = rows.with_columns(pl.col("reason").fill_null(KEPT).alias("group")).sort("uid")
    picked = [
        group.sample(n=min(config.per_reason, group.height), seed=config.seed)
        for _, group in labelled.group_by("group", maintain_order=True)
    ]
    order = {KEPT: 0}
    out = pl.concat(picked) if picked else labelled.clear()
    return out.sort([pl.col("group").replace_strict(order, default=1, return_dtype=pl.Int32), "group", "uid"])


def fetch_samples(pool: Pool, picked: pl.DataFrame, config: InspectConfig) -> dict[str, dict]:
    """uid -> {caption, error, thumb (data: URI or None)} for the picked rows, one pass per shard."""
    meta_cols = pool.scan_meta().filter(pl.col("uid").is_in(picked["uid"].implode())).select(
        "uid", "key", "shard", "caption", "error").collect()
    found = {row["uid"]: {**row, "thumb": None} for row in meta_cols.iter_rows(named=True)}
    by_key = {(row["shard"], row["key"]): row for row in found.values()}
    for shard in sorted({row["shard"] for row in found.values()}):
        if not pool.tar_path(shard).is_file():
            continue
        wanted = sum(1 for s, _ in by_key if s == shard)
        for sample in read_tar_samples(pool.tar_path(shard)):
            row = by_key.get((shard, sample.key))
            if row is not None:
                row["thumb"] = thumbnail(sample.image, config.thumb_px, pool.decode_options)
                wanted -= 1
                if wanted == 0:
                    break
    return found


def thumbnail(image: bytes | None, size: int, decode=None) -> str | None:
    """A small PNG as a data: URI (decoded as every reader does: curate.images); None when there is no image or it cannot be decoded."""
    if not image:
        return None
    from tierclip.curate.images import DecodeOptions, ImageDecodeError, decode_image

    try:
        small = decode_image(image, decode or DecodeOptions())
        small.thumbnail((size, size))
    except ImageDecodeError:
        return None
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def reason_counts(rows: pl.DataFrame) -> dict[str, int]:
    """Rows per reason (kept included), most frequent first."""
    counts = rows.select(pl.col("reason").fill_null(KEPT)).to_series().value_counts(sort=True)
    return {str(reason): int(n) for reason, n in counts.iter_rows()}
