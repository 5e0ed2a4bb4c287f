"""Everything a report shows, computed once: tables, fits (or why a fit was refused), crossovers, conclusions.

`build_study` is the only place the report fits; `plots` and `report` only draw and write what it holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import polars as pl
from tierclip.analysis import axes, findings, fit, selection, tables
from tierclip.analysis.collect import Problem
from tierclip.analysis.degenerate import combination_range, fit_problem, interval_problem
from tierclip.analysis.stats import combination, pooled_sd
from tierclip.curate.errors import UserError


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
    problem: str | None = None  # why a fitted curve is not drawn (analysis.degenerate.fit_problem)

    @property
    def drawable(self) -> bool:
        """A fit whose curve says something: fitted, and no parameter at a bound that makes it flat or a step."""
        return self.model is not None and self.problem is None


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
    best: pl.DataFrame  # each tier at its best size, chosen without the runs reported (analysis.selection.best_sizes)
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
    headlines: list[selection.Headline] = field(default_factory=list)
    headline_means: pl.DataFrame | None = None  # every tier of every headline, equal seeds per headline
    best_notes: list[str] = field(default_factory=list)  # tiers without an unbiased best size, and why
    majority_score: float | None = None  # the majority-class score of a zero-shot metric, when the eval set gives it
    companion_metric: str | None = None  # the same retrieval metric in the other direction, when the runs report it
    companion_means: pl.DataFrame | None = None  # its headline seed means


def _check_number(name: str, value, ok: bool, must: str) -> None:
    if not ok:
        raise UserError(f"{name} {value}: must be {must}")


@dataclass(frozen=True)
class StudyConfig:
    task: str | None = None
    metric: str | None = None
    n_boot: int = 200
    seed: int = 0
    level: float = 0.95
    tau: float | None = None  # hold the repetition half-life fixed (None = fit it)
    headline_size: int | None = None  # the subset size tiers are compared at (None: chosen from the runs that exist)

    def __post_init__(self):
        whole = (lambda v: isinstance(v, int) and not isinstance(v, bool))  # noqa: E731
        _check_number("--n-boot", self.n_boot, whole(self.n_boot) and self.n_boot >= 0, "a whole number >= 0")
        _check_number("--seed", self.seed, whole(self.seed) and self.seed >= 0, "a whole number >= 0")
        _check_number("level", self.level, isinstance(self.level, float) and 0.0 < self.level < 1.0, "in (0, 1)")
        lo, hi = fit.REPETITION_BOUNDS["tau"]
        _check_number("--tau", self.tau, self.tau is None or (isinstance(self.tau, (int, float)) and math.isfinite(self.tau)
                                                              and lo <= self.tau <= hi), f"a number of epochs in [{lo:g}, {hi:g}]")
        _check_number("--headline-size", self.headline_size,
                      self.headline_size is None or (whole(self.headline_size) and self.headline_size >= 1), "a whole number >= 1")


def _groups(points: pl.DataFrame, by=("tier", "method")):
    for key, group in points.group_by(list(by), maintain_order=True):
        yield tuple(key), group


def power_law_fits(points: pl.DataFrame, x: str, cfg: StudyConfig) -> list[GroupFit]:
    """err vs `x` per tier x method, and per samples-seen budget when x is unique samples (runs trained for
    different budgets are never pooled into one data-scaling curve) or per subset size when x is compute (a
    compute curve trains longer on the same data). Refused fits keep the reason; a group whose runs all share one
    x (one budget, or one data size) has no axis and is left out: its figure says so in words."""
    third = "samples_seen" if x == "unique_samples" else "subset_size"
    fits = []
    for key, group in _groups(points.drop_nulls([x, "err"]).filter(pl.col(x) > 0), ("tier", "method", third)):
        tier, method, extra = str(key[0]), str(key[1]), (int(key[2]) if key[2] is not None else None)
        if group[x].n_unique() < 2:
            continue
        where = {"budget": extra} if x == "unique_samples" else {"subset_size": extra}
        try:
            model = fit.fit_power_law(group[x].to_numpy(), group["err"].to_numpy(), cfg.n_boot, cfg.seed, cfg.level)
            fits.append(GroupFit(tier, method, x, group.height, model, None, **where, problem=fit_problem(model)))
        except (fit.FitRefused, fit.FitFailed) as exc:
            fits.append(GroupFit(tier, method, x, group.height, None, str(exc), **where))
    return fits


def repetition_fits(points: pl.DataFrame, cfg: StudyConfig) -> list[GroupFit]:
    """Goyal et al.'s law per tier (pool) x method, from samples seen vs subset size."""
    fits = []
    usable = points.drop_nulls(["samples_seen", "subset_size", "err"]).filter((pl.col("subset_size") > 0)
                                                                             & (pl.col("samples_seen") > 0))
    for (tier, method), group in _groups(usable):
        try:
            model = fit.fit_repetition(group["samples_seen"].to_numpy(), group["subset_size"].to_numpy(),
                                       group["err"].to_numpy(), tau=cfg.tau, n_boot=cfg.n_boot, seed=cfg.seed,
                                       level=cfg.level)
            fits.append(GroupFit(tier, method, "samples_seen", group.height, model, problem=fit_problem(model)))
        except (fit.FitRefused, fit.FitFailed) as exc:
            fits.append(GroupFit(tier, method, "samples_seen", group.height, None, str(exc)))
    return fits


def _pairs_by_size(fits: list[GroupFit], sizes: dict[str, int]):
    """Pairs of drawable fits with the same method and budget, the smaller tier (by size, then name) first."""
    fitted = [f for f in fits if f.drawable]
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
    return f"{delta * 100:+.1f} points"


def gap_text(row: dict, ref: dict) -> str:
    """A tier's gap to the reference with its Welch interval, in words (no interval: said; too wide: said)."""
    delta = combination([(row["mean"], row["std"], row["n"], 1.0), (ref["mean"], ref["std"], ref["n"], -1.0)])
    if delta.interval is None:
        return f"{_points(delta.value)} (one seed each: no interval)"
    lo, hi = delta.interval
    problem = interval_problem(delta.interval, combination_range(2))
    if problem:
        return f"{_points(delta.value)}, but the seeds are too few to bound it ({problem.replace('the metric', 'a gap')})"
    span = f"95 % interval {lo * 100:+.1f} to {hi * 100:+.1f}"
    if lo > 0 or hi < 0:
        return f"{_points(delta.value)} ({span}: a clear {'gain' if lo > 0 else 'loss'})"
    return f"{_points(delta.value)}, within seed noise ({span} includes 0)"


def headline_conclusions(found: list[selection.Headline], means: pl.DataFrame, reference: str, title: str) -> list[str]:
    """One sentence per headline: every tier against the reference, at one size, over the same seeds."""
    lines = []
    for h in found:
        rows = {r["tier"]: r for r in means.filter((pl.col("method") == h.method) & (pl.col("samples_seen") == h.samples_seen)
                                                   & (pl.col("subset_size") == h.subset_size)).iter_rows(named=True)}
        seeds = ", ".join(str(s) if s != selection.NO_SEED else "?" for s in h.seeds)
        where = (f"{title} at {h.samples_seen:,} samples seen ({h.method}), every tier at subset size {h.subset_size:,}"
                 f"{' (declared)' if h.declared else ''}, seed{'s' if len(h.seeds) > 1 else ''} {seeds}")
        ref = rows.get(reference)
        if ref is None:
            parts = "; ".join(f"{tier} {r['mean']:.3f}" for tier, r in rows.items())
            lines.append(f"{where}: {parts} (the reference tier {reference} has no run here).")
            continue
        parts = "; ".join(f"{tier} {r['mean']:.3f} vs {reference} {ref['mean']:.3f}: {gap_text(r, ref)}"
                          for tier, r in rows.items() if tier != reference)
        lines.append(f"{where}: {parts}." + (f" Note: {h.note}." if h.note else ""))
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


def _companion(table: pl.DataFrame, task: str, metric: str, model: str | None, found, level: float):
    """(the other retrieval direction, its headline seed means) when the runs report it, else (None, None)."""
    other = tables.companion_metric(metric)
    if other is None or table.filter((pl.col("task") == task) & (pl.col("metric") == other)).is_empty():
        return None, None
    points = tables.metric_points(table, task, other)
    points = points.filter(pl.col("model") == model) if model is not None else points
    return other, selection.headline_means(points, found, level)


def _fits(points: pl.DataFrame, cfg: StudyConfig):
    """(fits vs unique samples, vs compute, repetition fits, crossovers) of the tier model's points."""
    sample_fits, compute_fits = power_law_fits(points, "unique_samples", cfg), power_law_fits(points, "gflops", cfg)
    rep_fits = repetition_fits(points, cfg)
    seen = points["samples_seen"].drop_nulls().to_numpy().astype(float)
    budgets = (float(np.min(seen)), float(np.max(seen))) if seen.size else (1.0, 10.0)
    return sample_fits, compute_fits, rep_fits, find_crossovers(sample_fits, rep_fits, tables.tier_sizes(points), budgets)


def build_study(table: pl.DataFrame, problems: list[Problem], cfg: StudyConfig = StudyConfig()) -> Study:
    task, metric = tables.choose_task_metric(table, cfg.task, cfg.metric)
    all_points = tables.metric_points(table, task, metric)
    all_means = tables.seed_means(all_points, cfg.level)
    model = tables.primary_model(all_points)
    points = all_points.filter(pl.col("model") == model) if model is not None else all_points
    means = tables.seed_means(points, cfg.level)
    found = selection.headlines(points, cfg.headline_size)
    head_means = selection.headline_means(points, found, cfg.level)
    best, best_notes = selection.best_sizes(points, found, cfg.level)
    methods, methods_budget = tables.method_comparison(means)
    reference = tables.reference_tier(points)
    sample_fits, compute_fits, rep_fits, crossovers = _fits(points, cfg)
    companion, companion_means = _companion(table, task, metric, model, found, cfg.level)
    conclusions = headline_conclusions(found, head_means, reference, tables.metric_title(task, metric))
    if companion is not None:
        conclusions += headline_conclusions(found, companion_means, reference, tables.metric_title(task, companion))
    conclusions += crossover_conclusions([row for row in crossovers if row.kind.startswith("samples seen")])
    arch, families, depth = axes.architecture_table(all_means), axes.family_table(all_means), axes.depth_table(all_means)
    evidence = findings.Evidence(head_means, reference, tables.control_tiers(points), means, all_means, arch, families, depth,
                                 crossovers, rep_fits, tables.tier_sizes(points), tables.is_retrieval(metric),
                                 pooled_sd(all_means["std"].to_list(), all_means["n"].to_list()))
    cards = tables.data_cards(table.filter(pl.col("model") == model) if model is not None else table)
    return Study(task, metric, tables.random_score(points), points, means, best, methods, methods_budget, cards, reference,
                 sample_fits, compute_fits, rep_fits, crossovers, conclusions, list(problems), model, all_means, arch,
                 families, depth, findings.all_findings(evidence), found, head_means, best_notes,
                 tables.random_score(points, "majority_score"), companion, companion_means)
