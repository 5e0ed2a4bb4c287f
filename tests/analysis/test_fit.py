"""Fit recovery from synthetic noisy points, refusals, and crossovers of known curves."""

import numpy as np
import pytest
from tierclip.analysis import fit


def noisy_power_law(E=0.2, A=30.0, alpha=0.5, noise=0.004, seed=1):
    rng = np.random.default_rng(seed)
    x = np.repeat(np.geomspace(1e3, 1e6, 6), 3)
    return x, fit.saturating_power_law(x, E, A, alpha) + rng.normal(0, noise, x.size)


def test_power_law_recovers_known_parameters_with_intervals():
    x, err = noisy_power_law()
    result = fit.fit_power_law(x, err, n_boot=40, seed=0)
    assert result.E == pytest.approx(0.2, abs=0.01)
    assert result.alpha == pytest.approx(0.5, abs=0.03)
    assert result.A == pytest.approx(30.0, rel=0.2)
    ci = result.intervals()
    assert ci["alpha"][0] <= 0.5 <= ci["alpha"][1] and ci["E"][0] <= 0.2 <= ci["E"][1]
    lo, hi = result.band(np.array([1e3, 1e6]))
    assert np.all(lo < result.predict([1e3, 1e6])) and np.all(result.predict([1e3, 1e6]) < hi)
    assert result.at_bounds() == []


def test_power_law_bootstrap_is_seeded():
    x, err = noisy_power_law()
    a, b = fit.fit_power_law(x, err, n_boot=10, seed=3), fit.fit_power_law(x, err, n_boot=10, seed=3)
    assert np.array_equal(a.boot, b.boot)


@pytest.mark.parametrize("x", [[1e3, 1e4, 1e5], [1e3, 1e3, 1e4, 1e4, 1e4]])
def test_power_law_refuses_too_few_points(x):
    with pytest.raises(fit.TooFewPoints):
        fit.fit_power_law(x, [0.5] * len(x))


def test_repetition_law_matches_the_paper_formulation():
    # first pass: a (n/n_ref)^b + d; second pass multiplies by (n / S)^(b * 0.5^(1/tau))
    a, b, d, tau, pool = 0.1, -0.4, 0.1, 2.0, 1000.0
    first = a * (1000 / 1e5) ** b + d
    assert fit.repetition_error(500, pool, a, b, d, tau)[0] == pytest.approx(a * (500 / 1e5) ** b + d)
    assert fit.repetition_error(1500, pool, a, b, d, tau)[0] == pytest.approx(first * 1.5 ** (b * 0.5 ** (1 / tau)))
    # the utility exponent halves every tau passes: pass 3 uses b * 0.5^(2/tau) = b/2
    third = first * 2.0 ** (b * 0.5 ** (1 / tau)) * 1.5 ** (b * 0.5)
    assert fit.repetition_error(3000, pool, a, b, d, tau)[0] == pytest.approx(third)


def test_repetition_law_recovers_known_parameters():
    rng = np.random.default_rng(2)
    pools = np.array([1e3, 3e3, 1e4, 3e4] * 3)
    seen = np.repeat([1e4, 3e4, 1e5], 4)
    true = {"a": 0.08, "b": -0.4, "d": 0.1, "tau": 3.0}
    err = fit.repetition_error(seen, pools, **true) + rng.normal(0, 0.002, seen.size)
    result = fit.fit_repetition(seen, pools, err, n_boot=20, seed=0)
    assert result.b == pytest.approx(-0.4, abs=0.05)
    assert result.tau == pytest.approx(3.0, rel=0.3)
    assert result.d == pytest.approx(0.1, abs=0.03)
    assert result.rmse < 0.005
    ci = result.intervals()
    assert ci["tau"][0] < ci["tau"][1]


def test_repetition_law_refuses_without_repeats_or_points():
    with pytest.raises(fit.NotIdentifiable):
        fit.fit_repetition([1e3, 2e3, 3e3, 4e3, 5e3], [1e4] * 5, [0.5, 0.45, 0.42, 0.4, 0.39])
    with pytest.raises(fit.TooFewPoints):
        fit.fit_repetition([1e4, 2e4, 3e4], [1e3, 1e3, 1e3], [0.5, 0.45, 0.42])
    fixed = fit.fit_repetition([1e3, 2e3, 3e3, 4e3], [1e4] * 4, [0.5, 0.45, 0.42, 0.4], tau=2.0, n_boot=0)
    assert fixed.tau == 2.0 and "tau" in fixed.fixed


def test_crossover_of_two_known_curves():
    # err_a = 0.2 + 10 x^-0.5 (small, clean: good early, saturates high); err_b = 0.05 + 100 x^-0.5
    # equal where 0.15 = 90 x^-0.5  ->  x = 360000
    curve_a = lambda x: fit.saturating_power_law(x, 0.2, 10.0, 0.5)  # noqa: E731
    curve_b = lambda x: fit.saturating_power_law(x, 0.05, 100.0, 0.5)  # noqa: E731
    result = fit.crossover(curve_a, curve_b, 1e3, 1e8, names=("small", "large"))
    assert result.x == pytest.approx(360000, rel=1e-6)
    assert "large is better above" in result.reason


def test_crossover_interval_from_bootstrap_and_none_out_of_range():
    curve_a = lambda x: fit.saturating_power_law(x, 0.2, 10.0, 0.5)  # noqa: E731
    boot_b = [lambda x, E=E: fit.saturating_power_law(x, E, 100.0, 0.5) for E in (0.04, 0.05, 0.06)]
    result = fit.crossover(curve_a, boot_b[1], 1e3, 1e8, [curve_a] * 3, boot_b)
    assert result.interval[0] < result.x < result.interval[1] and result.boot_share == 1.0
    none = fit.crossover(curve_a, boot_b[1], 1e3, 1e5, names=("small", "large"))
    assert none.x is None and "small is better throughout" in none.reason


def test_repetition_crossover_small_clean_pool_overtaken_by_large_pool():
    clean = {"a": 0.05, "b": -0.5, "d": 0.1, "tau": 2.0}
    noisy = {"a": 0.1, "b": -0.35, "d": 0.1, "tau": 4.0}
    small = lambda x: fit.repetition_error(x, 2e3, **clean)  # noqa: E731
    large = lambda x: fit.repetition_error(x, 2e4, **noisy)  # noqa: E731
    result = fit.crossover(small, large, 1e3, 1e6, names=("top10", "full"))
    assert 2e3 < result.x < 1e6
    assert small(np.array([result.x]))[0] == pytest.approx(large(np.array([result.x]))[0], abs=1e-9)
    assert "full is better above" in result.reason
