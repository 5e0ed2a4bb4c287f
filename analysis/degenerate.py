"""When a fit or an interval says nothing, and the words the report says instead of drawing it.

The rules (docs/analysis.md, "What the report does not draw"):

* An interval of a mean that leaves the metric's range, [0, 1] for an accuracy or a recall ([-1, 1] for a difference
  of two, [-2, 2] for a difference of differences), is not drawn: a t-interval from 2 seeds (t = 12.7) easily
  spans values the metric cannot take, and then it says nothing about the real spread. The tables say so in words.
* A fit with a parameter on a bound of the box it was searched in is not drawn: the least-squares optimum lies outside
  the family the bounds allow, and its bootstrap is not a sampling distribution. Power law: alpha at its floor (a
  flat line, the "alpha = 0.00" fit), alpha at its cap (a step), A at 0 (flat), E at its cap (flat at the worst
  error). Repetition law: b at its cap (fresh data does not help), b at its floor, a at either bound, tau at either
  bound (the runs do not say how fast repetition loses value), d at its cap. The one bound that stays drawable is
  the floor of the irreducible error (E = 0 or d = 0): the curve is then a pure power law, which still describes
  the points over the range fitted; the fit table notes it.
* Fewer distinct x values than parameters + 1 is a refused fit (analysis/fit.py): the curve would pass through
  every mean and test nothing.
"""

from __future__ import annotations

import math

from tierclip.analysis.fit import PowerLawFit, RepetitionFit

VALUE_RANGE = (0.0, 1.0)  # accuracies and recalls
DRAWABLE_BOUNDS = {("E", "floor"), ("d", "floor")}  # a pure power law: still a description of the points
BOUND_MEANINGS = {
    ("alpha", "floor"): "α at its floor (a flat line: the points show no gain from more data that this law can follow)",
    ("alpha", "cap"): "α at its cap (a step: the points do not look like a power law)",
    ("A", "floor"): "A at 0 (a flat line)",
    ("E", "cap"): "E at its cap, the worst error of the points (a flat line)",
    ("b", "cap"): "b at its cap (fresh data shows no benefit)",
    ("b", "floor"): "b at its floor (a cliff, not a power law)",
    ("a", "floor"): "a at its floor (a flat line)",
    ("a", "cap"): "a at its cap",
    ("tau", "floor"): "τ at its floor (the runs do not say how fast repetition loses value)",
    ("tau", "cap"): "τ at its cap (the runs do not say how fast repetition loses value)",
    ("d", "cap"): "d at its cap (flat at the worst error)",
}


def combination_range(terms: int) -> tuple[float, float]:
    """The range a signed sum of `terms` metric values can take: [0, 1] for one, [-1, 1] for a difference, ..."""
    if terms <= 1:
        return VALUE_RANGE
    positive = (terms + 1) // 2
    return (-float(terms - positive), float(positive))


def interval_problem(interval: tuple[float, float] | None, bounds: tuple[float, float] = VALUE_RANGE) -> str | None:
    """Why a 95 % interval says nothing (it leaves the range the metric can take), or None when it is usable."""
    if interval is None:
        return None
    lo, hi = interval
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "the 95 % interval is not finite"
    if lo < bounds[0] - 1e-9 or hi > bounds[1] + 1e-9:
        return (f"the 95 % interval [{lo:.3f}, {hi:.3f}] leaves [{bounds[0]:g}, {bounds[1]:g}], the range the metric "
                "can take: too few seeds for a t-interval")
    return None


def fit_problem(model: PowerLawFit | RepetitionFit | None) -> str | None:
    """Why a fitted curve is not drawn (a parameter at a bound that makes it say nothing), or None."""
    if model is None:
        return None
    hits = [hit for hit in model.at_bounds() if hit not in DRAWABLE_BOUNDS]
    if not hits:
        return None
    return "fit at a bound of its parameters: " + "; ".join(BOUND_MEANINGS.get(hit, f"{hit[0]} at its {hit[1]}") for hit in hits)


def bound_notes(model: PowerLawFit | RepetitionFit | None) -> str:
    """The drawable bounds a fit sits on, in words (for the fit table), or ""."""
    if model is None:
        return ""
    hits = [hit for hit in model.at_bounds() if hit in DRAWABLE_BOUNDS]
    return "; ".join(f"{name} at 0: a pure power law over the fitted range (no saturation seen)" for name, _ in hits)
