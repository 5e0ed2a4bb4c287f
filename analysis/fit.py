"""Scaling-curve fits: pure functions, arrays in, frozen dataclasses with parameters and intervals out.

Three models (no plotting here; `analysis/plots.py` draws what these return):

* `fit_power_law`: the saturating power law ``err(x) = E + A * x**(-alpha)`` of error
  (1 - accuracy) against unique samples or compute, with seeded bootstrap
  confidence intervals on the parameters and on the curve.
* `fit_repetition`: the repetition-aware law of Goyal et al., *Scaling Laws for
  Data Filtering -- Data Curation cannot be Compute Agnostic* (CVPR 2024),
  fitted per pool from runs that repeat a subset (samples seen vs pool size).
* `crossover`: the budget at which one curve overtakes another (brentq on a
  log grid), with an interval from paired bootstrap curves.

A fit with too few points raises `TooFewPoints` (a `FitRefused`), never a
silent bad fit; an optimizer that finds nothing raises `FitFailed`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

HALF = 0.5  # Goyal et al.: the utility exponent halves every tau repetitions
DEFAULT_N_REF = 100_000.0  # the samples normaliser of Goyal et al.'s reference code
POWER_LAW_ALPHA_MIN = 1e-3
POWER_LAW_ALPHA_MAX = 5.0


class FitRefused(ValueError):
    """The data cannot determine the model; the message says why."""


class TooFewPoints(FitRefused):
    """Fewer points (or distinct x values) than the model needs."""


class NotIdentifiable(FitRefused):
    """The points carry no information about one parameter (e.g. no run repeats its data)."""


class FitFailed(RuntimeError):
    """The optimizer found no fit from any starting point."""


def _quantiles(samples: np.ndarray, level: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - level) / 2.0
    return np.quantile(samples, tail, axis=axis), np.quantile(samples, 1.0 - tail, axis=axis)


def _check_points(x: np.ndarray, y: np.ndarray, n_params: int, what: str, distinct: int | None = None,
                  unit: str = "x values") -> None:
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"{what}: x and y must be 1-d arrays of the same length, got {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))) or np.any(x <= 0):
        raise ValueError(f"{what}: x must be positive and finite, y finite")
    if x.size < n_params + 1:
        raise TooFewPoints(f"{what}: {x.size} points for {n_params} parameters; need at least {n_params + 1}")
    distinct = np.unique(x).size if distinct is None else distinct
    if distinct < n_params + 1:
        raise TooFewPoints(f"{what}: only {distinct} distinct {unit} for {n_params} parameters; need at least "
                           f"{n_params + 1} (with fewer the curve passes through every mean and tests nothing)")


def _check_bootstrap(n_boot: int, level: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be a whole number >= 0, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")


def _at_bound(value: float, bound: float) -> bool:
    return bool(np.isfinite(bound)) and abs(value - bound) <= 1e-6 * max(1.0, abs(bound))


def bounds_hit(values: dict[str, float], bounds: dict[str, tuple[float, float]]) -> list[tuple[str, str]]:
    """(parameter, "floor" | "cap") for every value sitting on a bound of its fit."""
    hits = []
    for name, value in values.items():
        low, high = bounds[name]
        hits += [(name, side) for side, bound in (("floor", low), ("cap", high)) if _at_bound(value, bound)]
    return hits


# --------------------------------------------------------------------------- saturating power law


def saturating_power_law(x, E: float, A: float, alpha: float):
    """err(x) = E + A * x**(-alpha)."""
    return E + A * np.power(np.asarray(x, dtype=float), -alpha)


@dataclass(frozen=True, eq=False)
class PowerLawFit:
    """err(x) = E + A * x**(-alpha), fitted on x / x_ref (A = A_ref * x_ref**alpha) for conditioning.

    `boot` holds the bootstrap parameter samples (rows of E, A_ref, alpha) behind the intervals.
    """

    E: float
    A_ref: float
    alpha: float
    x_ref: float
    n_points: int
    rmse: float
    x_range: tuple[float, float]
    boot: np.ndarray = field(repr=False)
    level: float = 0.95
    E_max: float = 1.0  # the upper bound E was fitted under (the largest error among the points)

    @property
    def A(self) -> float:
        return float(self.A_ref * self.x_ref**self.alpha)

    def predict(self, x) -> np.ndarray:
        return saturating_power_law(np.asarray(x, dtype=float) / self.x_ref, self.E, self.A_ref, self.alpha)

    def predict_boot(self, x) -> np.ndarray:
        """(n_boot, len(x)) predictions of the bootstrap fits."""
        u = np.asarray(x, dtype=float)[None, :] / self.x_ref
        E, A_ref, alpha = (self.boot[:, i : i + 1] for i in range(3))
        return E + A_ref * np.power(u, -alpha)

    def band(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise bootstrap interval of err(x) at `level` (NaN when no bootstrap fit succeeded)."""
        if len(self.boot) == 0:
            nan = np.full(np.shape(x), np.nan)
            return nan, nan
        return _quantiles(self.predict_boot(np.atleast_1d(x)), self.level)

    def intervals(self) -> dict[str, tuple[float, float]]:
        """Bootstrap intervals of E, A (in x's own units) and alpha."""
        if len(self.boot) == 0:
            return {name: (float("nan"), float("nan")) for name in ("E", "A", "alpha")}
        A = self.boot[:, 1] * self.x_ref ** self.boot[:, 2]
        columns = {"E": self.boot[:, 0], "A": A, "alpha": self.boot[:, 2]}
        return {name: tuple(float(v) for v in _quantiles(col, self.level)) for name, col in columns.items()}

    def curve(self) -> Callable[[np.ndarray], np.ndarray]:
        return self.predict

    def bounds(self) -> dict[str, tuple[float, float]]:
        """The box the fit was searched in: E in [0, max err], A >= 0, alpha in [POWER_LAW_ALPHA_MIN, POWER_LAW_ALPHA_MAX]."""
        return {"E": (0.0, self.E_max), "A": (0.0, np.inf), "alpha": (POWER_LAW_ALPHA_MIN, POWER_LAW_ALPHA_MAX)}

    def at_bounds(self) -> list[tuple[str, str]]:
        """(parameter, "floor" | "cap") for each parameter stuck at the edge of its bounds (A tested in its fitted units)."""
        return bounds_hit({"E": self.E, "A": self.A_ref, "alpha": self.alpha}, self.bounds())

    def boot_curves(self) -> list[Callable[[np.ndarray], np.ndarray]]:
        return [lambda x, p=p: saturating_power_law(np.asarray(x, dtype=float) / self.x_ref, *p) for p in self.boot]


def _power_law_starts(u: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Starting points: for a few guesses of E, a straight line through log(y - E) vs log(u)."""
    starts = []
    for E0 in (0.0, 0.5 * y.min(), 0.9 * y.min()):
        excess = np.clip(y - E0, 1e-6, None)
        slope, intercept = np.polyfit(np.log(u), np.log(excess), 1)
        starts.append(np.array([E0, np.exp(intercept), float(np.clip(-slope, 0.01, 4.0))]))
    return starts


def _power_law_jacobian(u, E, A, alpha):
    power = np.power(u, -alpha)
    return np.stack([np.ones_like(u), power, -A * power * np.log(u)], axis=1)


def _least_squares_power_law(u, y, starts) -> np.ndarray:
    from scipy.optimize import curve_fit

    lower, upper = np.array([0.0, 0.0, POWER_LAW_ALPHA_MIN]), np.array([_e_max(y), np.inf, POWER_LAW_ALPHA_MAX])
    best, best_sse = None, np.inf
    for p0 in starts:
        p0 = np.clip(p0, lower + 1e-12, upper - 1e-12)
        try:
            params, _ = curve_fit(saturating_power_law, u, y, p0=p0, bounds=(lower, upper), jac=_power_law_jacobian, maxfev=5000)
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum((saturating_power_law(u, *params) - y) ** 2))
        if sse < best_sse:
            best, best_sse = params, sse
    if best is None:
        raise FitFailed("saturating power law: curve_fit found no fit from any starting point")
    return best


def _e_max(y: np.ndarray) -> float:
    return max(float(y.max()), 1e-9)


def _bootstrap(x, y, fit_once, n_boot: int, seed: int, min_distinct: int, width: int) -> np.ndarray:
    """Refit on `n_boot` resamples of the points (seeded); resamples with too few distinct x are skipped."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_boot):
        idx = rng.integers(0, x.shape[0], x.shape[0])
        if np.unique(x[idx], axis=0).shape[0] < min_distinct:
            continue
        try:
            samples.append(fit_once(idx))
        except (FitFailed, RuntimeError, ValueError):
            continue
    return np.array(samples, dtype=float).reshape(len(samples), width)


def fit_power_law(x: Sequence[float], err: Sequence[float], n_boot: int = 200, seed: int = 0,
                  level: float = 0.95) -> PowerLawFit:
    """Least-squares fit of err(x) = E + A * x**(-alpha) with bounds E in [0, max err], A >= 0, alpha in (0, 5].

    Raises TooFewPoints with fewer than 4 points or fewer than 4 distinct x values (parameters + 1).
    Intervals come from `n_boot` bootstrap resamples of the points (seeded by `seed`).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(err, dtype=float)
    _check_bootstrap(n_boot, level)
    _check_points(x, y, 3, "saturating power law")
    x_ref = float(np.exp(np.mean(np.log(x))))
    u = x / x_ref
    params = _least_squares_power_law(u, y, _power_law_starts(u, y))
    boot = _bootstrap(u, y, lambda idx: _least_squares_power_law(u[idx], y[idx], [params]), n_boot, seed, 4, 3)
    rmse = float(np.sqrt(np.mean((saturating_power_law(u, *params) - y) ** 2)))
    return PowerLawFit(float(params[0]), float(params[1]), float(params[2]), x_ref, int(x.size), rmse,
                       (float(x.min()), float(x.max())), boot, level, _e_max(y))


# --------------------------------------------------------------------------- repetition-aware law (Goyal et al.)


def repetition_error(samples_seen, pool_size, a: float, b: float, d: float, tau: float,
                     n_ref: float = DEFAULT_N_REF) -> np.ndarray:
    """Error after `samples_seen` samples drawn in epochs over a pool of `pool_size` unique samples.

    Goyal et al. (CVPR 2024), eq. for a pool with utility b < 0 whose utility decays with repetition:

        first pass (n <= S):   y(n) = a * (n / n_ref)**b + d
        k-th pass (k >= 2):    y(n) = y((k-1) S) * (n / ((k-1) S))**b_k   for (k-1) S < n <= k S
        b_k = b * 0.5**((k-1) / tau)

    i.e. the instantaneous law dy/dn = b_k * y / n with the utility exponent halving every tau
    repetitions (tau = the half-life, in epochs). Their reference code writes the first term as
    (a' n / 1e5)**b; that is the same family with a = a'**b and n_ref = 1e5.
    """
    seen = np.atleast_1d(np.asarray(samples_seen, dtype=float))
    pool = np.broadcast_to(np.asarray(pool_size, dtype=float), seen.shape)
    first = a * (np.minimum(seen, pool) / n_ref) ** b + d
    passes = np.ceil(seen / pool - 1e-9).astype(int)
    if passes.max(initial=1) <= 1:
        return first
    # passes k = 2..K for every point at once; passes beyond a point's own K contribute log(1) = 0
    k = np.arange(2, passes.max() + 1, dtype=float)[None, :]
    start = (k - 1) * pool[:, None]
    stop = np.clip(np.minimum(k * pool[:, None], seen[:, None]), start, None)
    b_k = b * HALF ** ((k - 1) / tau)
    return first * np.exp(np.sum(b_k * np.log(stop / start), axis=1))


REPETITION_PARAMS = ("a", "b", "d", "tau")
REPETITION_BOUNDS = {"a": (1e-9, 1e3), "b": (-3.0, -1e-4), "d": (0.0, 1.0), "tau": (0.05, 1e3)}


@dataclass(frozen=True, eq=False)
class RepetitionFit:
    """Per-pool parameters of the repetition-aware law; `fixed` names those held fixed (not fitted).

    `boot` rows hold (a, b, d, tau) of the bootstrap fits (fixed ones repeated).
    """

    a: float
    b: float
    d: float
    tau: float
    n_ref: float
    n_points: int
    rmse: float
    fixed: tuple[str, ...]
    boot: np.ndarray = field(repr=False)
    level: float = 0.95

    def predict(self, samples_seen, pool_size) -> np.ndarray:
        return repetition_error(samples_seen, pool_size, self.a, self.b, self.d, self.tau, self.n_ref)

    def at_bounds(self) -> list[tuple[str, str]]:
        """(parameter, "floor" | "cap") for each fitted (not fixed) parameter at the edge of REPETITION_BOUNDS."""
        free = {name: getattr(self, name) for name in REPETITION_PARAMS if name not in self.fixed}
        return bounds_hit(free, REPETITION_BOUNDS)

    def intervals(self) -> dict[str, tuple[float, float]]:
        if len(self.boot) == 0:
            return {name: (float("nan"), float("nan")) for name in REPETITION_PARAMS}
        return {name: tuple(float(v) for v in _quantiles(self.boot[:, i], self.level)) for i, name in enumerate(REPETITION_PARAMS)}

    def curve_at_pool(self, pool_size: float) -> Callable[[np.ndarray], np.ndarray]:
        """err as a function of samples seen, training on this pool of `pool_size` unique samples."""
        return lambda x: self.predict(x, pool_size)

    def boot_curves_at_pool(self, pool_size: float) -> list[Callable[[np.ndarray], np.ndarray]]:
        return [lambda x, p=p: repetition_error(x, pool_size, *p, self.n_ref) for p in self.boot]


def _repetition_least_squares(seen, pool, y, free: list[str], fixed: dict, starts, n_ref: float) -> np.ndarray:
    from scipy.optimize import curve_fit

    def model(index, *values):
        params = {**fixed, **dict(zip(free, values, strict=True))}
        return repetition_error(seen[index.astype(int)], pool[index.astype(int)], n_ref=n_ref, **params)

    lower = np.array([REPETITION_BOUNDS[name][0] for name in free])
    upper = np.array([REPETITION_BOUNDS[name][1] for name in free])
    index = np.arange(seen.size, dtype=float)
    best, best_sse = None, np.inf
    for start in starts:
        p0 = np.clip([start[name] for name in free], lower * (1 + 1e-9) + 1e-12, upper * (1 - 1e-9))
        try:
            values, _ = curve_fit(model, index, y, p0=p0, bounds=(lower, upper), maxfev=4000)
        except (RuntimeError, ValueError, FloatingPointError):
            continue
        sse = float(np.sum((model(index, *values) - y) ** 2))
        if np.isfinite(sse) and sse < best_sse:
            best, best_sse = values, sse
    if best is None:
        raise FitFailed("repetition-aware law: curve_fit found no fit from any starting point")
    full = {**fixed, **dict(zip(free, best, strict=True))}
    return np.array([full[name] for name in REPETITION_PARAMS], dtype=float)


def _repetition_starts(seen, pool, y, n_ref: float) -> list[dict]:
    """A small grid like the paper's (which grid-searches because gradient fits were unstable), then refined."""
    first_pass = seen <= pool
    d0 = 0.5 * float(y.min())
    if np.unique(seen[first_pass]).size >= 2:
        slope, _ = np.polyfit(np.log(seen[first_pass] / n_ref), np.log(np.clip(y[first_pass] - d0, 1e-6, None)), 1)
        b0 = float(np.clip(slope, -2.5, -0.01))
    else:
        b0 = -0.3
    n0 = np.minimum(seen, pool)
    a0 = float(np.median(np.clip(y - d0, 1e-6, None) / (n0 / n_ref) ** b0))
    return [{"a": a0, "b": b0, "d": d, "tau": tau} for tau in (1.0, 3.0, 10.0, 50.0) for d in (d0, 0.0)]


def fit_repetition(samples_seen: Sequence[float], pool_size: Sequence[float], err: Sequence[float], *,
                   tau: float | None = None, d: float | None = None, n_ref: float = DEFAULT_N_REF,
                   n_boot: int = 200, seed: int = 0, level: float = 0.95) -> RepetitionFit:
    """Fit one pool's (a, b, d, tau) of `repetition_error` to runs of that pool.

    Each point is one run: samples seen, the unique samples it drew from (its subset size), its error.
    `tau` or `d` given = held fixed (the paper fixes d and grid-searches the rest). Raises
    TooFewPoints with fewer than (free parameters + 1) points or distinct (samples seen, pool size) pairs,
    NotIdentifiable when tau is free but no run repeats its data (samples seen <= pool size everywhere).
    """
    seen, pool, y = (np.asarray(v, dtype=float) for v in (samples_seen, pool_size, err))
    _check_bootstrap(n_boot, level)
    fixed = {name: float(v) for name, v in (("tau", tau), ("d", d)) if v is not None}
    for name, value in fixed.items():
        low, high = REPETITION_BOUNDS[name]
        if not low <= value <= high:  # also refuses NaN
            raise ValueError(f"repetition-aware law: {name} = {value} must lie in [{low:g}, {high:g}]")
    free = [name for name in REPETITION_PARAMS if name not in fixed]
    if seen.shape != pool.shape or np.any(pool <= 0):
        raise ValueError("repetition-aware law: samples_seen and pool_size must have the same length, pools > 0")
    points = np.stack([seen, pool], axis=1)
    _check_points(seen, y, len(free), "repetition-aware law", distinct=np.unique(points, axis=0).shape[0],
                  unit="(samples seen, subset size) pairs")
    if "tau" in free and not np.any(seen > pool * (1 + 1e-9)):
        raise NotIdentifiable("repetition-aware law: no run repeats its data (samples seen <= pool size), so tau "
                              "cannot be fitted; hold tau fixed")
    starts = _repetition_starts(seen, pool, y, n_ref)
    params = _repetition_least_squares(seen, pool, y, free, fixed, starts, n_ref)
    warm = [dict(zip(REPETITION_PARAMS, params, strict=True))]
    boot = _bootstrap(points, y, lambda idx: _repetition_least_squares(seen[idx], pool[idx], y[idx], free, fixed, warm, n_ref),
                      n_boot, seed, len(free) + 1, len(REPETITION_PARAMS))
    rmse = float(np.sqrt(np.mean((repetition_error(seen, pool, *params, n_ref) - y) ** 2)))
    return RepetitionFit(*(float(p) for p in params), n_ref, int(y.size), rmse, tuple(fixed), boot, level)


# --------------------------------------------------------------------------- crossover


@dataclass(frozen=True)
class Crossover:
    """Where curve b's error falls below curve a's (x None when not in range, `reason` says why).

    `interval` comes from the paired bootstrap curves that cross in range; `boot_share` is their share.
    """

    x: float | None
    interval: tuple[float, float] | None
    reason: str
    boot_share: float | None = None


def first_crossing(curve_a, curve_b, lo: float, hi: float, grid: int = 256) -> float | None:
    """First x in [lo, hi] where curve_b(x) - curve_a(x) changes sign (brentq on a log grid), or None."""
    from scipy.optimize import brentq

    log_x = np.linspace(np.log(lo), np.log(hi), grid)
    diff = np.asarray(curve_b(np.exp(log_x)), dtype=float) - np.asarray(curve_a(np.exp(log_x)), dtype=float)
    if not np.all(np.isfinite(diff)):
        return None
    nonzero = np.flatnonzero(np.abs(diff) > 1e-12)  # ties (equal curves) are no crossing
    changes = np.flatnonzero(np.sign(diff[nonzero[:-1]]) != np.sign(diff[nonzero[1:]]))
    if changes.size == 0:
        return None
    left, right = int(nonzero[changes[0]]), int(nonzero[changes[0] + 1])

    def gap(t):
        x = np.exp(np.atleast_1d(t))
        return float(np.asarray(curve_b(x))[0] - np.asarray(curve_a(x))[0])

    return float(np.exp(brentq(gap, log_x[left], log_x[right], xtol=1e-10)))


def crossover(curve_a, curve_b, lo: float, hi: float, boot_a: Sequence = (), boot_b: Sequence = (),
              level: float = 0.95, names: tuple[str, str] = ("a", "b")) -> Crossover:
    """The budget x in [lo, hi] where curve_b (e.g. a larger, lower-quality tier) overtakes curve_a.

    Curves map x to error (lower is better). The interval pairs the i-th bootstrap curve of each.
    """
    if not (0 < lo < hi):
        raise ValueError(f"crossover: need 0 < lo < hi, got {lo}, {hi}")
    x = first_crossing(curve_a, curve_b, lo, hi)
    pairs = list(zip(boot_a, boot_b, strict=False))
    crossings = [first_crossing(a, b, lo, hi) for a, b in pairs]
    hits = np.array([c for c in crossings if c is not None], dtype=float)
    share = float(hits.size / len(pairs)) if pairs else None
    interval = tuple(float(v) for v in _quantiles(np.log(hits), level)) if hits.size >= 2 else None
    interval = tuple(float(np.exp(v)) for v in interval) if interval else None
    if x is None:
        better = names[0] if float(curve_a(np.array([hi]))[0]) <= float(curve_b(np.array([hi]))[0]) else names[1]
        return Crossover(None, interval, f"the curves do not cross in [{lo:.4g}, {hi:.4g}]: {better} is better throughout",
                         share)
    mid = min(x * 1.01, hi)
    after = names[1] if float(curve_b(np.array([mid]))[0]) < float(curve_a(np.array([mid]))[0]) else names[0]
    return Crossover(x, interval, f"{after} is better above x = {x:.4g}", share)
