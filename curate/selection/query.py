"""The selection query: one lazy polars frame over meta joined with the sidecars on uid.

The frame carries a `pass_<clause>` flag per clause and a final `keep`.
Drop counts are "applied in order": a row is counted against the first
clause it fails, so `sum(drop_counts) + n_kept == pool size`.

`--fraction F` is DataComp's top-k rule (baselines/utils.py `get_threshold`):
    n = int(len(scores) * F);  threshold = -np.sort(-scores)[n];  keep score >= threshold
i.e. the threshold is the (n+1)-th highest score and every row scoring at
least that much is kept: n + 1 rows without ties, more when scores tie at
the threshold (all tied rows are kept, none are cut at random). F = 1.0
(where DataComp's index runs off the end) keeps every row with a score.
`fraction_of="remaining"` (default) ranks the rows that pass every other
clause and have a score; `fraction_of="pool"` ranks every row of the pool
(rows without a score sort last, as NaN does in numpy), which is DataComp's
semantics when it intersects a CLIP-score threshold with another filter.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from tierclip.curate.errors import UserError
from tierclip.curate.pool import Pool
from tierclip.curate.selection.config import Clause, FilterConfig, clauses
from tierclip.curate.selection.sources import ColumnIndex, alignment_check, scan_columns
from tierclip.curate.selection.uidorder import sort_uids

POLARS_ERRORS = (pl.exceptions.PolarsError,)


def topk_threshold(score: pl.Expr, population: pl.Expr | None, fraction: float) -> pl.Expr:
    """DataComp's threshold as a polars aggregation over the rows where `population` holds (None: all rows)."""
    values = score if population is None else score.filter(population)
    if fraction >= 1.0:
        return values.min()
    count = pl.len() if population is None else population.sum()
    n = (count.cast(pl.Float64) * fraction).floor().cast(pl.Int64)
    return values.sort(descending=True, nulls_last=True).get(n, null_on_oob=True)


@dataclass(frozen=True)
class Plan:
    pool: Pool
    config: FilterConfig
    index: ColumnIndex
    clauses: list[Clause]
    frame: pl.LazyFrame  # uid, the needed columns, pass_<clause>..., alive (passes every clause but fraction)

    @property
    def clause_names(self) -> list[str]:
        names = [c.name for c in self.clauses]
        return names + ["fraction"] if self.config.fraction is not None else names

    def rule_text(self) -> str:
        parts = [c.text for c in self.clauses]
        if self.config.fraction is not None:
            parts.append(f"top {self.config.fraction:g} of {self.config.fraction_of} by {self.config.score} "
                         "(DataComp top-k: score >= threshold)")
        return " AND ".join(parts)

    def first_failed(self) -> pl.Expr:
        """The name of the first clause a row fails (null for kept rows); needs `keep`."""
        expr = pl.when(pl.col("keep")).then(pl.lit(None, dtype=pl.Utf8))
        for clause in self.clauses:
            expr = expr.when(~pl.col(f"pass_{clause.name}")).then(pl.lit(clause.name))
        return expr.otherwise(pl.lit("fraction")).alias("dropped_by")


def plan(pool: Pool, config: FilterConfig, extra_columns: tuple[str, ...] = ()) -> Plan:
    """Build the lazy query: needed columns of meta and sidecars, one flag per clause, `alive`."""
    index = ColumnIndex(pool)
    found = clauses(config)
    needed = {col for clause in found for col in _clause_columns(index, clause)} | set(extra_columns) | set(index.gt_flags())
    if config.uses_score():
        needed.add(_check_score_column(index, config.score))
    frame = scan_columns(index, needed).with_columns([c.expr for c in found])
    _check_where(frame, found)
    alive = pl.all_horizontal([f"pass_{c.name}" for c in found])
    return Plan(pool, config, index, found, frame.with_columns(alive.alias("alive")))


def collect_flags(plan: Plan, all_uids: bool = False, extra_columns: tuple[str, ...] = ()) -> pl.DataFrame:
    """Run the query once (streaming engine: captions are never held whole) into a narrow frame.

    Columns: uid (null for rows that fail a clause, unless `all_uids`), pass_<clause>..., alive,
    the score column, gt flags, `extra_columns`, then `threshold` and `keep` (DataComp's top-k
    when --fraction is given, else keep = alive).
    """
    config = plan.config
    uid = pl.col("uid") if all_uids else pl.when(pl.col("alive")).then(pl.col("uid")).alias("uid")
    score = [config.score] if config.uses_score() else []
    keep_cols = dict.fromkeys([*score, *plan.index.gt_flags(), *extra_columns])
    narrow = plan.frame.select(uid, *[f"pass_{c.name}" for c in plan.clauses], "alive", *keep_cols,
                               alignment_check(plan.frame))
    try:
        flags = narrow.collect(engine="streaming")
    except POLARS_ERRORS as exc:
        raise UserError(f"{plan.pool.root}: selection failed: {exc}".splitlines()[0]) from None
    if not flags["aligned"].all():
        raise UserError(f"{plan.pool.root}/scores: a sidecar's rows are not aligned with meta (uid mismatch); "
                        f"re-run its stage and check the pool with `curate validate {plan.pool.root}`")
    return _with_keep(flags.drop("aligned"), config)


def _with_keep(flags: pl.DataFrame, config: FilterConfig) -> pl.DataFrame:
    if config.fraction is None:
        return flags.with_columns(pl.lit(None, dtype=pl.Float64).alias("threshold"), pl.col("alive").alias("keep"))
    score = pl.col(config.score)
    population = (pl.col("alive") & score.is_not_null()) if config.fraction_of == "remaining" else None
    flags = flags.with_columns(topk_threshold(score, population, config.fraction).cast(pl.Float64).alias("threshold"))
    return flags.with_columns((pl.col("alive") & (score >= pl.col("threshold")).fill_null(False)).alias("keep"))


def _clause_columns(index: ColumnIndex, clause: Clause) -> list[str]:
    columns = clause.columns()
    for column in columns:
        try:
            index.stage_of(column)
        except UserError as exc:
            raise UserError(f"{exc} (used by {clause.option})") from None
    return columns


def _check_score_column(index: ColumnIndex, column: str) -> str:
    dtype = index.dtype(column)
    if not dtype.is_numeric():
        raise UserError(f"{index.pool.root}: score column '{column}' is {dtype}, not numeric")
    return column


def _check_where(frame: pl.LazyFrame, found: list[Clause]) -> None:
    where = [c for c in found if c.name == "where"]
    if not where:
        return
    try:
        dtype = frame.select(where[0].expr).collect_schema().dtypes()[0]
    except POLARS_ERRORS as exc:
        raise UserError(f"--where: {where[0].text}: {exc}".splitlines()[0]) from None
    if dtype != pl.Boolean:
        raise UserError(f"--where: {where[0].text} gives {dtype} values, not true/false")


@dataclass(frozen=True)
class Selection:
    uids: pl.Series
    n_pool: int
    drop_counts: dict[str, int]
    thresholds: dict[str, float]
    gt_shares: dict[str, float]
    rule: str

    def manifest(self, plan: Plan) -> dict:
        from tierclip.curate.subset import pool_ref

        config = plan.config
        manifest = {
            "pool": pool_ref(plan.pool), "rule": self.rule, "thresholds": self.thresholds,
            "score_column": config.score if config.uses_score() else None,
            "fraction": config.fraction, "fraction_of": config.fraction_of if config.fraction is not None else None,
            "parent": None, "drop_counts": self.drop_counts, "clause_order": list(self.drop_counts),
            "n_pool": self.n_pool, "filter_config": config.to_json(),
        }
        if self.gt_shares:
            manifest["gt_shares"] = self.gt_shares
        return manifest


def run(plan: Plan) -> Selection:
    """Counts per clause (applied in order), the threshold used, gt shares and the kept uids."""
    flags = collect_flags(plan)
    kept = flags.filter(pl.col("keep"))
    return Selection(
        uids=sort_uids(kept["uid"]),
        n_pool=flags.height,
        drop_counts=drop_counts(flags, plan),
        thresholds=_thresholds(flags, plan.config),
        gt_shares=gt_shares(kept, plan.index.gt_flags()),
        rule=plan.rule_text(),
    )


def drop_counts(flags: pl.DataFrame, plan: Plan) -> dict[str, int]:
    """Rows each clause removes when applied in order (the first clause a row fails counts it)."""
    names = [c.name for c in plan.clauses]
    alive = [flags.height, *flags.select(
        pl.all_horizontal([f"pass_{n}" for n in names[: i + 1]]).sum().alias(str(i)) for i in range(len(names))
    ).row(0)]
    counts = {name: alive[i] - alive[i + 1] for i, name in enumerate(names)}
    if plan.config.fraction is not None:
        counts["fraction"] = alive[-1] - int(flags["keep"].sum())
    return counts


def _thresholds(flags: pl.DataFrame, config: FilterConfig) -> dict[str, float]:
    thresholds = {}
    if config.min_score is not None:
        thresholds["min_score"] = config.min_score
    if config.fraction is not None:
        threshold = flags["threshold"][0] if flags.height else None
        thresholds["fraction"] = None if threshold is None else float(threshold)
    if config.min_lang_prob is not None:
        thresholds["min_lang_prob"] = config.min_lang_prob
    return thresholds


def gt_shares(frame: pl.DataFrame, gt_flags: list[str]) -> dict[str, float]:
    """Share of rows with each ground-truth flag set (0.0 for an empty frame)."""
    if not gt_flags:
        return {}
    if frame.height == 0:
        return {flag: 0.0 for flag in gt_flags}
    means = frame.select([pl.col(flag).cast(pl.Float64).mean() for flag in gt_flags]).row(0, named=True)
    return {flag: float(value or 0.0) for flag, value in means.items()}


def filter_pool(pool: Pool, config: FilterConfig) -> tuple[Plan, Selection]:
    selected_plan = plan(pool, config)
    return selected_plan, run(selected_plan)


def write_filtered(pool: Pool, config: FilterConfig, out) -> tuple[Selection, object]:
    """Run the filter and write the subset; returns the selection and the written Subset."""
    from tierclip.curate.subset import write_subset

    selected_plan, selection = filter_pool(pool, config)
    subset = write_subset(out, selection.uids, selection.manifest(selected_plan))
    return selection, subset
