"""Where a column lives (meta or a stage's sidecar) and one lazy frame of the columns a rule needs.

Sidecars are found by reading the parquet schema of each stage's first
shard (cheap: no rows are read), so a score column is located wherever a
stage put it: `clip_score` in `scores/clip/`, DataComp's
`clip_l14_similarity_score` in `scores/datacomp/`, and so on.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl
from tierclip.curate.errors import UserError
from tierclip.curate.pool import Pool, gt_flag_columns

# Stages written by another command than `curate score`, and their columns.
PRODUCER_COMMANDS = {"datacomp": "curate ingest datacomp ... --out {pool}"}


def producers() -> dict[str, str]:
    """Which stage produces a column (used to tell the user which command to run when a column is missing).

    Derived from each stage's own `produces` in `curate.stages.STAGES`, plus the `datacomp` sidecar of ingest.
    """
    from tierclip.curate.ingest.datacomp import SCORE_COLUMNS as DATACOMP_SCORES
    from tierclip.curate.ingest.datacomp import STAGE as DATACOMP
    from tierclip.curate.stages import STAGES

    found = {column: name for name, stage in STAGES.items() for column in stage.produces}
    return {**found, **dict.fromkeys(DATACOMP_SCORES, DATACOMP)}


def score_columns() -> tuple[str, ...]:
    """Columns that are scores (inspect and the report list them): each stage's `scores`, then DataComp's two CLIP scores."""
    from tierclip.curate.ingest.datacomp import SCORE_COLUMNS as DATACOMP_SCORES
    from tierclip.curate.stages import STAGES

    return (*(c for stage in STAGES.values() for c in stage.scores), *DATACOMP_SCORES)


def stage_command(pool: Pool, stage: str) -> str:
    template = PRODUCER_COMMANDS.get(stage, "curate score {pool} --stages " + stage)
    return template.format(pool=pool.root)


def meta_schema(pool: Pool) -> pl.Schema:
    pool.require_rows("select or inspect")
    if not pool.meta_path(0).is_file():
        raise UserError(f"{pool.meta_path(0)}: missing meta file for shard 0 of pool {pool.root}")
    return pl.read_parquet_schema(pool.meta_path(0))


def sidecar_schemas(pool: Pool) -> dict[str, pl.Schema]:
    """{stage: schema} for every stage folder that has a readable first-shard sidecar (complete or not);
    set-aside dot folders (`.previous-STAGE`) are not read."""
    from tierclip.curate.sidecars import stage_names

    return {name: _sidecar_schema(pool, name) for name in stage_names(pool.root) if pool.scores_path(name, 0).is_file()}


def _sidecar_schema(pool: Pool, stage: str) -> pl.Schema:
    path = pool.scores_path(stage, 0)
    try:
        return pl.read_parquet_schema(path)
    except Exception as exc:  # polars raises ComputeError/OSError for a cut or overwritten file
        from tierclip.curate.images import reason_of

        raise UserError(f"{path}: damaged sidecar ({reason_of(exc)}); `{stage_command(pool, stage)}` recomputes it") from None


class ColumnIndex:
    """All columns a rule can use: meta's and each sidecar's, with their types."""

    def __init__(self, pool: Pool):
        self.pool = pool
        self.meta = meta_schema(pool)
        self.sidecars = sidecar_schemas(pool)

    def stage_of(self, column: str) -> str | None:
        """None when the column is in meta; else the stage whose sidecar holds it."""
        if column in self.meta:
            return None
        holders = [stage for stage, schema in self.sidecars.items() if column in schema]
        if len(holders) > 1:
            raise UserError(f"{self.pool.root}/scores: column '{column}' is in several sidecars ({', '.join(holders)}); "
                            "remove the stale one")
        if holders:
            return holders[0]
        raise UserError(self.missing_message(column))

    def dtype(self, column: str) -> pl.DataType:
        stage = self.stage_of(column)
        return self.meta[column] if stage is None else self.sidecars[stage][column]

    def missing_message(self, column: str) -> str:
        stage = producers().get(column)
        if stage is not None and stage in self.sidecars:
            return (f"{self.pool.scores_dir(stage)}: no column '{column}' (written by an older tierclip); "
                    f"run `{stage_command(self.pool, stage)} --force` to recompute it")
        if stage is not None:
            return (f"{self.pool.scores_dir(stage)}: missing sidecar of stage '{stage}' (needed for column '{column}'); "
                    f"run `{stage_command(self.pool, stage)}` first")
        numeric = sorted(c for c, t in self.all_columns().items() if t.is_numeric())
        return f"{self.pool.root}: unknown column '{column}' (numeric columns here: {', '.join(numeric) or 'none'})"

    def all_columns(self) -> dict[str, pl.DataType]:
        columns = dict(self.meta)
        for schema in self.sidecars.values():
            columns.update({c: t for c, t in schema.items() if c != "uid"})
        return columns

    def gt_flags(self) -> list[str]:
        """Boolean ground-truth columns of a synthetic pool (gt_<defect>, gt_clean)."""
        return gt_flag_columns(self.meta)


def aligned_uid(stage: str) -> str:
    return f"_uid_{stage}"


def scan_columns(index: ColumnIndex, columns: Iterable[str]) -> pl.LazyFrame:
    """Meta's needed columns (always uid) joined on uid with the needed columns of each sidecar.

    A sidecar has the same rows in the same order as meta (the pool format),
    so the join on uid is positional: the sidecar's columns are placed beside
    meta's, with the sidecar's uid kept as `_uid_<stage>` so that
    `alignment_check` can prove every row met its own uid. A hash join on 10
    million 32-character uids takes ~20 s here; this takes ~2 s.
    """
    wanted = sorted(set(columns) - {"uid"})
    by_stage: dict[str, list[str]] = {}
    meta_cols = ["uid"]
    for column in wanted:
        stage = index.stage_of(column)
        if stage is None:
            meta_cols.append(column)
        else:
            by_stage.setdefault(stage, []).append(column)
    parts = [index.pool.scan_meta().select(meta_cols)]
    for stage, stage_cols in sorted(by_stage.items()):
        parts.append(_scan_stage(index.pool, stage).select(pl.col("uid").alias(aligned_uid(stage)), *stage_cols))
    return pl.concat(parts, how="horizontal") if len(parts) > 1 else parts[0]


def alignment_check(frame: pl.LazyFrame) -> pl.Expr:
    """Per row: True when every joined sidecar row carries the uid of the meta row beside it.

    Row-wise (not `.all()` inside the query): an aggregate broadcast beside row columns would make
    the streaming engine hold whole columns in memory."""
    stage_uids = [c for c in frame.collect_schema().names() if c.startswith("_uid_")]
    if not stage_uids:
        return pl.lit(True).alias("aligned")
    return pl.all_horizontal([(pl.col("uid") == pl.col(c)).fill_null(False) for c in stage_uids]).alias("aligned")


def _scan_stage(pool: Pool, stage: str) -> pl.LazyFrame:
    missing = [s for s in pool.shard_ids() if not pool.is_done(stage, s)]
    if missing:
        raise UserError(f"{pool.scores_dir(stage)}: stage '{stage}' is incomplete ({len(missing)} of "
                        f"{pool.info.n_shards} shards missing); run `{stage_command(pool, stage)}`")
    return pool.scan_scores(stage)
