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
    if n < 2 or any(sd is None or not math.isfinite(sd) for _, sd, _, _ in terms):
        return Estimate(value, None, n)
    variances = [sd**2 / count for _, sd, count, _ in terms]
    total = sum(variances)
    if total == 0:
        return Estimate(value, (value, value), n)
    df = total**2 / sum(v**2 / (count - 1) for v, (_, _, count, _) in zip(variances, terms, strict=True))
    half = _t_quantile(df, level) * math.sqrt(total)
    return Estimate(value, (value - half, value + half), n)


def difference(a: tuple[float, float | None, int], b: tuple[float, float | None, int], level: float = 0.95) -> Estimate:
    """mean_a - mean_b with a Welch interval; a and b are (mean, sd, n)."""
    return combination([(*a, 1.0), (*b, -1.0)], level)
