"""Everything a report shows, computed once: tables, fits (or why a fit was refused), crossovers, conclusions.

`build_study` is the only place the report fits; `plots` and `report` only draw and write what it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import polars as pl
from tierclip.analysis import axes, findings, fit, tables
from tierclip.analysis.collect import Problem
from tierclip.analysis.stats import combination


@dataclass(frozen=True, eq=False)
class GroupFit:
    """One fit of one (tier, method) group against `x` (unique_samples, gflops, or samples_seen for the
    repetition law); `model` is None and `refusal` says why when the data could not determine it."""

    tier: str
    method: str
    x: str
    n_points: int
    model: fit.PowerLawFit | fit.RepetitionFit | None
    refusal: str | None = None
    budget: int | None = None  # samples seen shared by the points (fits against unique samples only)
    subset_size: int | None = None  # the subset the points trained on (fits against compute only)


@dataclass(frozen=True)
class CrossoverRow:
    kind: str  # "unique samples (power law)" | "samples seen (repetition law)"
    method: str
    tier_a: str  # the smaller tier (by size, then name)
    tier_b: str
    result: fit.Crossover
    budget: int | None = None  # samples seen of the power-law fits compared (None for the repetition law)


@dataclass(frozen=True, eq=False)
class Study:
    task: str
    metric: str
    random_score: float | None
    points: pl.DataFrame
    means: pl.DataFrame
    best: pl.DataFrame
    methods: pl.DataFrame
    methods_budget: int | None
    cards: pl.DataFrame
    reference_tier: str
    sample_fits: list[GroupFit]
    compute_fits: list[GroupFit]
    repetition_fits: list[GroupFit]
    crossovers: list[CrossoverRow]
    conclusions: list[str]
    problems: list[Problem] = field(default_factory=list)
    model: str | None = None  # the model of the tier sections (tables.primary_model)
    all_means: pl.DataFrame | None = None  # seed means over every model's runs
    architecture: axes.AxisTable | None = None
    families: axes.AxisTable | None = None
    depth: axes.AxisTable | None = None
    findings: list[findings.Finding] = field(default_factory=list)


@dataclass(frozen=True)
class StudyConfig:
    task: str | None = None
    metric: str | None = None
    n_boot: int = 200
    seed: int = 0
    level: float = 0.95
    tau: float | None = None  # hold the repetition half-life fixed (None = fit it)


def _groups(points: pl.DataFrame, by=("tier", "method")):
    for key, group in points.group_by(list(by), maintain_order=True):
        yield tuple(key), group


def power_law_fits(points: pl.DataFrame, x: str, cfg: StudyConfig) -> list[GroupFit]:
    """err vs `x` per tier x method, and per samples-seen budget when x is unique samples (runs trained for
    different budgets are never pooled into one data-scaling curve) or per subset size when x is compute (a
    compute curve trains longer on the same data). Refused fits keep the reason; a compute group whose runs
    all share one budget has no compute axis and is left out."""
    third = "samples_seen" if x == "unique_samples" else "subset_size"
    fits = []
    for key, group in _groups(points.drop_nulls([x, "err"]).filter(pl.col(x) > 0), ("tier", "method", third)):
        tier, method, extra = str(key[0]), str(key[1]), (int(key[2]) if key[2] is not None else None)
        if x == "gflops" and group[x].n_unique() < 2:
            continue
        where = {"budget": extra} if x == "unique_samples" else {"subset_size": extra}
        try:
            model = fit.fit_power_law(group[x].to_numpy(), group["err"].to_numpy(), cfg.n_boot, cfg.seed, cfg.level)
            fits.append(GroupFit(tier, method, x, group.height, model, None, **where))
        except (fit.FitRefused, fit.FitFailed) as exc:
            fits.append(GroupFit(tier, method, x, group.height, None, str(exc), **where))
    return fits


def repetition_fits(points: pl.DataFrame, cfg: StudyConfig) -> list[GroupFit]:
    """Goyal et al.'s law per tier (pool) x method, from samples seen vs subset size."""
    fits = []
    usable = points.drop_nulls(["samples_seen", "subset_size", "err"]).filter(pl.col("subset_size") > 0)
    for (tier, method), group in _groups(usable):
        try:
            model = fit.fit_repetition(group["samples_seen"].to_numpy(), group["subset_size"].to_numpy(),
                                       group["err"].to_numpy(), tau=cfg.tau, n_boot=cfg.n_boot, seed=cfg.seed,
                                       level=cfg.level)
            fits.append(GroupFit(tier, method, "samples_seen", group.height, model))
        except (fit.FitRefused, fit.FitFailed) as exc:
            fits.append(GroupFit(tier, method, "samples_seen", group.height, None, str(exc)))
    return fits


def _pairs_by_size(fits: list[GroupFit], sizes: dict[str, int]):
    """Pairs of fitted groups with the same method and budget, the smaller tier (by size, then name) first."""
    fitted = [f for f in fits if f.model is not None]
    for a, b in combinations(sorted(fitted, key=lambda f: (f.method, sizes.get(f.tier, 0), f.tier)), 2):
        if (a.method, a.budget) == (b.method, b.budget):
            yield a, b


def find_crossovers(study_fits: list[GroupFit], rep_fits: list[GroupFit], sizes: dict[str, int],
                    budgets: tuple[float, float]) -> list[CrossoverRow]:
    """Where one tier overtakes another (typically a larger, lower-quality tier a smaller one): in unique samples (power-law fits, over
    the x range both were fitted on) and in samples seen (repetition law, each tier at its full size, over
    the observed budgets x 0.1 .. x 100)."""
    rows = []
    for a, b in _pairs_by_size(study_fits, sizes):
        lo, hi = max(a.model.x_range[0], b.model.x_range[0]), max(a.model.x_range[1], b.model.x_range[1])
        if lo < hi:
            result = fit.crossover(a.model.curve(), b.model.curve(), lo, hi, a.model.boot_curves(), b.model.boot_curves(),
                                   names=(a.tier, b.tier))
            rows.append(CrossoverRow("unique samples (power law)", a.method, a.tier, b.tier, result, a.budget))
    lo, hi = budgets[0] / 10, budgets[1] * 100
    for a, b in _pairs_by_size(rep_fits, sizes):
        size_a, size_b = sizes[a.tier], sizes[b.tier]
        result = fit.crossover(a.model.curve_at_pool(size_a), b.model.curve_at_pool(size_b), lo, hi,
                               a.model.boot_curves_at_pool(size_a), b.model.boot_curves_at_pool(size_b), names=(a.tier, b.tier))
        rows.append(CrossoverRow("samples seen (repetition law)", a.method, a.tier, b.tier, result))
    return rows


def _points(delta: float) -> str:
    return f"{abs(delta) * 100:.1f} points"


def budget_conclusions(best: pl.DataFrame, reference: str) -> list[str]:
    """One honest sentence per method x budget: does the best tier beat the reference (largest) tier?"""
    lines = []
    for (method, budget), group in best.group_by(["method", "samples_seen"], maintain_order=True):
        top = group.row(0, named=True)
        ref = group.filter(pl.col("tier") == reference)
        where = f"at {int(budget):,} samples seen ({method})"
        if ref.is_empty():
            lines.append(f"{where}: best tier is {top['tier']} ({top['mean']:.3f}); the reference tier {reference} has no run here.")
            continue
        ref = ref.row(0, named=True)
        if top["tier"] == reference:
            second = group.row(1, named=True) if group.height > 1 else None
            tail = f"; next best is {second['tier']} ({second['mean']:.3f})" if second else ""
            lines.append(f"{where}: no filtered tier beats the full pool (tier {reference}, {ref['mean']:.3f}){tail}.")
            continue
        delta = combination([(top["mean"], top["std"], top["n"], 1.0), (ref["mean"], ref["std"], ref["n"], -1.0)])
        if delta.interval is None:
            caveat = f" (single seed on at least one side: no error estimate; {top['n']} vs {ref['n']} seeds)"
        else:
            lo, hi = delta.interval
            span = f"95 % interval of the gap {lo * 100:+.1f} to {hi * 100:+.1f} points, {top['n']} vs {ref['n']} seeds"
            caveat = f" ({span})" if lo > 0 else f" — within seed noise ({span}: it includes 0), so not a clear win"
        lines.append(f"{where}: tier {top['tier']} (best at subset size {int(top['subset_size']):,}) beats the full pool "
                     f"(tier {reference}, best at {int(ref['subset_size']):,}) by {_points(delta.value)}: "
                     f"{top['mean']:.3f} vs {ref['mean']:.3f}{caveat}.")
    return lines


def crossover_conclusions(rows: list[CrossoverRow]) -> list[str]:
    lines = []
    for row in rows:
        res = row.result
        at = f" at {row.budget:,} samples seen" if row.budget else ""
        pair = f"{row.tier_b} vs {row.tier_a} ({row.method}{at}, crossover in {row.kind})"
        if res.x is None:
            lines.append(f"{pair}: {res.reason}.")
            continue
        interval = f", {int(res.interval[0]):,}–{int(res.interval[1]):,} in {res.boot_share:.0%} of bootstrap fits" if res.interval else ""
        lines.append(f"{pair}: crossover at {res.x:,.0f}{interval}; {res.reason}.")
    return lines


def build_study(table: pl.DataFrame, problems: list[Problem], cfg: StudyConfig = StudyConfig()) -> Study:
    task, metric = tables.choose_task_metric(table, cfg.task, cfg.metric)
    all_points = tables.metric_points(table, task, metric)
    all_means = tables.seed_means(all_points, cfg.level)
    model = tables.primary_model(all_points)
    points = all_points.filter(pl.col("model") == model) if model is not None else all_points
    means = tables.seed_means(points, cfg.level)
    best = tables.best_per_budget(means)
    methods, methods_budget = tables.method_comparison(means)
    reference = tables.reference_tier(points)
    sample_fits = power_law_fits(points, "unique_samples", cfg)
    compute_fits = power_law_fits(points, "gflops", cfg)
    rep_fits = repetition_fits(points, cfg)
    seen = points["samples_seen"].drop_nulls().to_numpy().astype(float)
    budgets = (float(np.min(seen)), float(np.max(seen))) if seen.size else (1.0, 10.0)
    crossovers = find_crossovers(sample_fits, rep_fits, tables.tier_sizes(points), budgets)
    compute_crossovers = [row for row in crossovers if row.kind.startswith("samples seen")]
    conclusions = budget_conclusions(best, reference) + crossover_conclusions(compute_crossovers)
    arch, families, depth = axes.architecture_table(all_means), axes.family_table(all_means), axes.depth_table(all_means)
    found = findings.all_findings(best, reference, means, arch, families, depth, crossovers, rep_fits,
                                  tables.tier_sizes(points))
    cards = tables.data_cards(table.filter(pl.col("model") == model) if model is not None else table)
    return Study(task, metric, tables.random_score(points), points, means, best, methods, methods_budget,
                 cards, reference, sample_fits, compute_fits, rep_fits, crossovers, conclusions,
                 list(problems), model, all_means, arch, families, depth, found)
