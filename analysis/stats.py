"""Seed statistics: mean, standard deviation and Student-t 95 % intervals over seeds, and intervals of
differences (Welch) and of differences of differences, all from per-configuration (mean, sd, n).

One seed gives no interval: every function returns None for the interval (never a zero-width one), so the
report draws no error bar and says "one seed" instead of a misleading ±0.000.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    """A mean (or a combination of means) with its sd over seeds (None for a combination), seed count(s) and
    95 % interval (None when some side has a single seed)."""

    value: float
    interval: tuple[float, float] | None
    n: int
    sd: float | None = None
    group_sds: tuple[float | None, ...] = ()  # sd over seeds of each group combined (what `seeds_needed` scales)

    @property
    def has_interval(self) -> bool:
        return self.interval is not None


def _t_quantile(df: float, level: float) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, df))


def mean_estimate(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean ± t-interval of seed values (None interval with one seed)."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("mean_estimate: no values")
    mean = sum(values) / n
    if n < 2:
        return Estimate(mean, None, n)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = _t_quantile(n - 1, level) * sd / math.sqrt(n)
    return Estimate(mean, (mean - half, mean + half), n, sd)


def interval_from_summary(mean: float, sd: float | None, n: int, level: float = 0.95) -> tuple[float, float] | None:
    """The t-interval of a mean from its sd and seed count (None with one seed)."""
    if n < 2 or sd is None or not math.isfinite(sd):
        return None
    half = _t_quantile(n - 1, level) * sd / math.sqrt(n)
    return mean - half, mean + half


def combination(terms: Sequence[tuple[float, float | None, int, float]], level: float = 0.95) -> Estimate:
    """sum(sign_i x mean_i) over independent groups given as (mean, sd, n, sign), with a Welch-Satterthwaite
    t-interval. A difference is [(a, sd_a, n_a, +1), (b, sd_b, n_b, -1)]; a difference of differences (an
    interaction) has four terms. No interval when any group has fewer than 2 seeds."""
    value = sum(sign * mean for mean, _, _, sign in terms)
    n = min(count for _, _, count, _ in terms)
    sds = tuple(sd if sd is not None and math.isfinite(sd) else None for _, sd, _, _ in terms)
    if n < 2 or None in sds:
        return Estimate(value, None, n, group_sds=sds)
    variances = [sd**2 / count for _, sd, count, _ in terms]
    total = sum(variances)
    if total == 0:
        return Estimate(value, (value, value), n, group_sds=sds)
    df = total**2 / sum(v**2 / (count - 1) for v, (_, _, count, _) in zip(variances, terms, strict=True))
    half = _t_quantile(df, level) * math.sqrt(total)
    return Estimate(value, (value - half, value + half), n, group_sds=sds)


def difference(a: tuple[float, float | None, int], b: tuple[float, float | None, int], level: float = 0.95) -> Estimate:
    """mean_a - mean_b with a Welch interval; a and b are (mean, sd, n)."""
    return combination([(*a, 1.0), (*b, -1.0)], level)


SEEDS_CAP = 10_000


def expected_width(sds: Sequence[float], n: int, level: float = 0.95) -> float:
    """The 95 % Welch interval's width for a combination of groups with these sds when every group has n seeds."""
    total, fourth = sum(sd**2 for sd in sds), sum(sd**4 for sd in sds)
    df = (n - 1) * total**2 / fourth
    return 2 * _t_quantile(df, level) * math.sqrt(total / n)


def seeds_needed(sds: Sequence[float], target_width: float, level: float = 0.95) -> int | None:
    """The fewest seeds per group (>= 2) for which the expected Welch t-interval of the combination is narrower than
    `target_width`, taking the groups' sds as measured; None when not even SEEDS_CAP seeds would do, or no spread.

    An interval narrower than an effect d, centred on d, lies wholly above 0: with a normal estimate that happens
    in about 97.5 % of repeats when the true difference is d (the width criterion is stricter than 80 % power).
    The width falls with n (t-quantile and 1/sqrt(n) both shrink), so the smallest n is found by bisection.
    """
    if not sds or any(sd < 0 or not math.isfinite(sd) for sd in sds) or sum(sds) == 0 or not target_width > 0:
        return None
    if expected_width(sds, SEEDS_CAP, level) >= target_width:
        return None
    low, high = 2, SEEDS_CAP
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if expected_width(sds, middle, level) < target_width else (middle + 1, high)
    return low


def pooled_sd(stds: Sequence[float | None], counts: Sequence[int]) -> float | None:
    """The seed sd pooled over configurations with >= 2 seeds (degrees-of-freedom weighted), None without any."""
    pairs = [(sd, n) for sd, n in zip(stds, counts, strict=True) if sd is not None and math.isfinite(sd) and n >= 2]
    dof = sum(n - 1 for _, n in pairs)
    return math.sqrt(sum((n - 1) * sd**2 for sd, n in pairs) / dof) if dof else None
