"""Derived tables over the collected frame: one metric's points, seed means (with sd and 95 % intervals only
where a configuration has >= 2 seeds), best tier per budget, method comparison at equal samples seen, data
cards. Pure polars, no fitting, no plotting."""

from __future__ import annotations

import polars as pl
from tierclip.analysis.collect import share_columns
from tierclip.curate.errors import UserError

CONFIG = ["tier", "method", "model", "subset_size", "unique_samples", "samples_seen"]
# Per-configuration columns carried into the seed means (the same for every seed of a configuration).
MODEL_COLUMNS = ("model_family", "params", "image_params", "text_params", "image_width", "image_depth", "text_width",
                 "text_depth", "text_context", "vocab_size", "gflops_per_sample", "train_method", "augmentation", "scoring")
PREFERRED_METRICS = ("top1", "acc", "accuracy", "mean_recall@1", "image_retrieval_recall@1")
# Retrieval metrics in both directions (train/eval_metrics.py): each name -> the same metric the other way.
DIRECTIONS = {"image_retrieval_recall": ("text_retrieval_recall", "text→image", ""),
              "text_retrieval_recall": ("image_retrieval_recall", "image→text", ""),
              "t2i_recall_merged": ("i2t_recall_merged", "text→image", " (identical captions merged)"),
              "i2t_recall_merged": ("t2i_recall_merged", "image→text", " (identical captions merged)")}
TOKENWISE = "tokenwise_"  # the metric prefix of token-wise rows (train/eval_tokenwise.py's PREFIX)
CONTROL_KIND = "random"  # tier_kind of `curate tiers --random-control` subsets: controls, never the reference


def choose_task_metric(table: pl.DataFrame, task: str | None = None, metric: str | None = None) -> tuple[str, str]:
    """The (task, metric) to report: the given ones, else a top-1-like metric of the task most runs report
    (ties: the task with the lowest mean score, i.e. the least saturated one)."""
    if table.is_empty():
        raise UserError("no finished runs to report on")
    pairs = (table.group_by(["task", "metric"]).agg(len=pl.len(), mean=pl.col("value").mean())
             .sort(["len", "mean", "task", "metric"], descending=[True, False, False, False]))
    if task is not None:
        pairs = pairs.filter(pl.col("task") == task)
    if metric is not None:
        pairs = pairs.filter(pl.col("metric") == metric)
    if pairs.is_empty():
        known = ", ".join(sorted({f"{t}/{m}" for t, m in table.select("task", "metric").iter_rows()}))
        raise UserError(f"no runs report task={task or 'any'} metric={metric or 'any'}; known: {known}")
    for name in PREFERRED_METRICS:
        if metric is None and name in pairs["metric"].to_list():
            return str(pairs.filter(pl.col("metric") == name)["task"][0]), name
    return str(pairs["task"][0]), str(pairs["metric"][0])


def is_retrieval(metric: str) -> bool:
    return "recall" in metric


def companion_metric(metric: str) -> str | None:
    """The same retrieval metric in the other direction (image→text for text→image), None for other metrics."""
    name, _, k = metric.partition("@")
    return f"{DIRECTIONS[name][0]}@{k}" if name in DIRECTIONS and k else None


def metric_title(task: str, metric: str) -> str:
    """How the report names a metric: "retrieval, text→image recall@1" or "zero-shot shape top1"."""
    name, _, k = metric.partition("@")
    if name in DIRECTIONS:
        _, direction, note = DIRECTIONS[name]
        return f"{task}: {direction} recall@{k}{note}"
    return f"{task}: {metric}" if is_retrieval(metric) else f"zero-shot {task} {metric}"


def method_label(method: str, augmentation: str | None) -> str:
    """A method with other than its own augmentation is its own variant: "slip (aug off)"."""
    return method if augmentation in (None, "none", "default") else f"{method} (aug {augmentation})"


def metric_points(table: pl.DataFrame, task: str, metric: str) -> pl.DataFrame:
    """One row per run for the chosen task/metric, with `err` = 1 - value; `method` names the variant a run trained
    (method_label) and `train_method` the method itself. A run that also reports `tokenwise_<metric>` (its checkpoint
    carries FILIP's token-wise head: FILIP, DeFILIP) is scored by that value, as the FILIP authors score zero-shot
    and retrieval; `scoring` says which ("token-wise" or "pooled")."""
    points = scored(table.filter(pl.col("task") == task), metric).with_columns(err=1.0 - pl.col("value"))
    if "augmentation" not in points.columns:
        points = points.with_columns(augmentation=pl.lit(None, dtype=pl.Utf8))
    labels = [method_label(m, a) for m, a in points.select("method", "augmentation").iter_rows()]
    return (points.with_columns(train_method=pl.col("method"), method=pl.Series(labels, dtype=pl.Utf8))
            .sort(["tier", "method", "model", "unique_samples", "samples_seen", "seed"], nulls_last=True))


def scored(rows: pl.DataFrame, metric: str) -> pl.DataFrame:
    """The `metric` rows of one task, each replaced by the same run's `tokenwise_<metric>` row where it has one."""
    pooled, tokenwise = rows.filter(pl.col("metric") == metric), rows.filter(pl.col("metric") == TOKENWISE + metric)
    keys = [c for c in rows.columns if c not in ("metric", "value", "random_score", "majority_score")]
    joined = pooled.join(tokenwise.select(*keys, tokenwise_value="value"), on=keys, how="left", nulls_equal=True)
    return joined.with_columns(value=pl.coalesce("tokenwise_value", "value"),
                               scoring=pl.when(pl.col("tokenwise_value").is_null()).then(pl.lit("pooled"))
                               .otherwise(pl.lit("token-wise"))).drop("tokenwise_value")


def random_score(points: pl.DataFrame, column: str = "random_score") -> float | None:
    """The chance score (or, with column="majority_score", the majority-class score) of the chosen metric."""
    if column not in points.columns:
        return None
    scores = points[column].drop_nulls()
    return float(scores.mean()) if scores.len() else None


def seed_means(points: pl.DataFrame, level: float = 0.95) -> pl.DataFrame:
    """Mean, standard deviation, count and t-interval over seeds for each configuration (tier, method, model,
    size, budget). With one seed `std`, `ci_lo` and `ci_hi` are null: no error bar, never a zero-width one."""
    from tierclip.analysis.stats import interval_from_summary

    carried = [pl.col(c).first() for c in MODEL_COLUMNS if c in points.columns]
    throughput = [pl.col("samples_per_s").mean()] if "samples_per_s" in points.columns else []
    means = (points.group_by(CONFIG)
             .agg(*carried, *throughput, mean=pl.col("value").mean(), std=pl.col("value").std(), n=pl.len(),
                  gflops=pl.col("gflops").mean())
             .with_columns(std=pl.when(pl.col("n") >= 2).then(pl.col("std")).otherwise(None))
             .sort(CONFIG, nulls_last=True))
    bounds = [interval_from_summary(m, s, n, level) or (None, None) for m, s, n in means.select("mean", "std", "n").iter_rows()]
    return means.with_columns(ci_lo=pl.Series([b[0] for b in bounds], dtype=pl.Float64),
                              ci_hi=pl.Series([b[1] for b in bounds], dtype=pl.Float64))


def primary_model(points: pl.DataFrame) -> str | None:
    """The model of the tier study: the one with the most runs (ties: by name); None when no run names one."""
    counts = points.drop_nulls("model").group_by("model").agg(runs=pl.col("run").n_unique()).sort(["runs", "model"],
                                                                                                   descending=[True, False])
    return str(counts["model"][0]) if counts.height else None


def tier_sizes(points: pl.DataFrame) -> dict[str, int]:
    """The largest subset size seen for each tier (its pool size in the sweep)."""
    sizes = points.group_by("tier").agg(pl.col("subset_size").max()).iter_rows()
    return {str(tier): int(size or 0) for tier, size in sizes}


def control_tiers(points: pl.DataFrame) -> set[str]:
    """Tiers drawn at random as controls (`curate tiers --random-control`: tier_kind "random")."""
    if "tier_kind" not in points.columns:
        return set()
    return set(points.filter(pl.col("tier_kind") == CONTROL_KIND)["tier"].to_list())


def reference_tier(points: pl.DataFrame) -> str:
    """The unfiltered baseline: a tier holding every candidate (top-k fraction 1.0, or `all`: the whole pool), else
    the largest tier; never a random control. Ties broken by name."""
    sizes, controls = tier_sizes(points), control_tiers(points)
    whole = {"all"} & set(sizes)
    if "fraction" in points.columns:
        whole |= set(points.filter(pl.col("fraction") >= 1.0)["tier"].to_list())
    candidates = sorted((whole or set(sizes)) - controls) or sorted(sizes)
    return max(candidates, key=lambda tier: sizes[tier])


def method_comparison(means: pl.DataFrame) -> tuple[pl.DataFrame, int | None]:
    """Each tier x method at the largest samples-seen budget all methods share, largest common subset size."""
    methods = means["method"].unique().len()
    shared = (means.group_by("samples_seen").agg(pl.col("method").n_unique().alias("k"))
              .filter(pl.col("k") == methods)["samples_seen"])
    if shared.len() == 0:
        return means.clear(), None
    budget = int(shared.max())
    at_budget = means.filter(pl.col("samples_seen") == budget)
    common_size = (at_budget.group_by(["tier", "subset_size"]).agg(pl.col("method").n_unique().alias("k"))
                   .filter(pl.col("k") == methods).group_by("tier").agg(pl.col("subset_size").max()))
    table = at_budget.join(common_size, on=["tier", "subset_size"]).sort(["tier", "method"])
    return table, budget


def data_cards(table: pl.DataFrame) -> pl.DataFrame:
    """One row per tier: tier set, rule, its largest subset size, the pool and its source (pool.json's `source`: where
    the data came from), the subset's sources with their shares and licences, and the share of each gt defect type."""
    shares = share_columns(table)
    provenance = [c for c in ("pool", "pool_source", "subset_sources") if c in table.columns]
    columns = ["tier", "tier_set", "rule", "subset_size", *provenance, *shares]
    return (table.select(columns).sort("subset_size", descending=True, nulls_last=True)
            .group_by("tier", maintain_order=True).first().sort("subset_size", nulls_last=True))
