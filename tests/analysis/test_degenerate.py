"""What the report does not draw, each rule on hand-made runs: an interval that leaves the metric's range, a fit at
a bound of its parameters (flat "alpha = 0.00" lines), fewer distinct points than parameters + 1, a panel with one
point per tier and no fit; and the one bound that stays drawable (E = 0, a pure power law)."""

import json

import numpy as np
import polars as pl
import pytest
from tierclip.analysis import fit, plots
from tierclip.analysis.collect import collect
from tierclip.analysis.degenerate import combination_range, fit_problem, interval_problem
from tierclip.analysis.report import ReportConfig, report
from tierclip.analysis.study import StudyConfig, build_study

from tests.analysis.fake_runs import write_run

BUDGET = 8000


def study_of(root, **cfg):
    table, problems = collect([root])
    return build_study(table, problems, StudyConfig(task="shape", metric="top1", n_boot=8, **cfg))


def test_interval_rules_by_hand():
    assert "leaves [0, 1]" in interval_problem((-0.089, 0.562))  # the two-seed interval of an accuracy
    assert interval_problem((0.1, 0.5)) is None and interval_problem(None) is None
    assert combination_range(2) == (-1.0, 1.0) and combination_range(4) == (-2.0, 2.0)
    assert "leaves [-1, 1]" in interval_problem((-1.2, 0.4), combination_range(2))
    assert interval_problem((0.2, float("nan"))) == "the 95 % interval is not finite"


def test_two_seed_interval_wider_than_the_metric_is_said_not_drawn(tmp_path, monkeypatch):
    for seed, value in ((0, 0.05), (1, 0.45)):  # mean 0.25, sd 0.28: t(1) = 12.7 -> [-2.3, 2.8]
        write_run(tmp_path / "runs", tier="top30", method="clip", subset_size=1000, samples_seen=BUDGET, seed=seed,
                  shape_top1=value)
    for seed, value in ((0, 0.20), (1, 0.21)):
        write_run(tmp_path / "runs", tier="full", method="clip", subset_size=1000, samples_seen=BUDGET, seed=seed,
                  shape_top1=value, manifest={"fraction": 1.0})
    _, study = report([tmp_path / "runs"], ReportConfig(tmp_path / "rep", "png", StudyConfig(task="shape", metric="top1", n_boot=5)))
    summary = (tmp_path / "rep" / "summary.md").read_text()
    assert "too wide to mean anything: [-2.291, 2.791] leaves [0, 1]" in summary
    assert "+4.5 points, but the seeds are too few to bound it" in summary  # the gap's interval leaves [-1, 1]
    # the best-tier bars: sd whiskers for both tiers, the thin 95 % whisker only for the tier whose interval fits
    calls = []
    monkeypatch.setattr(plots, "_save", lambda fig, out: out)
    import matplotlib.axes

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", lambda self, *a, **k: calls.append(k["elinewidth"]))
    plots.plot_best_tier(study, tmp_path / "b.png")
    assert sorted(calls) == [0.8, 2.2, 2.2]


def flat_and_clean_runs(root):
    """Tier `flat` gets no better with data (error rises a little): the best power law is a flat line at a bound.
    Tier `clean` follows a pure power law (E = 0). Four sizes x two seeds each."""
    flat = {500: (0.40, 0.39), 1000: (0.38, 0.39), 2000: (0.37, 0.36), 4000: (0.35, 0.34)}
    for size, values in flat.items():
        for seed, value in enumerate(values):
            write_run(root, tier="flat", method="clip", subset_size=size, samples_seen=BUDGET, seed=seed, shape_top1=value)
            clean = 1 - fit.saturating_power_law(size, 0.0, 30.0, 0.5) + (0.002 if seed else -0.002)
            write_run(root, tier="clean", method="clip", subset_size=size, samples_seen=BUDGET, seed=seed, shape_top1=clean)


def test_fit_at_a_bound_is_not_drawn_and_said(tmp_path):
    flat_and_clean_runs(tmp_path / "runs")
    paths, study = report([tmp_path / "runs"], ReportConfig(tmp_path / "rep", "png", StudyConfig(task="shape", metric="top1",
                                                                                                   n_boot=8)))
    fits = {f.tier: f for f in study.sample_fits}
    assert fits["flat"].model is not None and not fits["flat"].drawable
    assert "α at its floor" in fits["flat"].problem and "A at 0" in fits["flat"].problem
    assert fits["clean"].drawable and ("E", "floor") in fits["clean"].model.at_bounds()  # a pure power law: drawn
    summary = (tmp_path / "rep" / "summary.md").read_text()
    assert "flat · clip at 8,000 samples seen: curve not drawn, fit at a bound of its parameters" in summary
    assert "E at 0: a pure power law over the fitted range" in summary
    saved = json.loads((tmp_path / "rep" / "fits.json").read_text())["fits"]
    assert {f["tier"]: f["not_drawn"] is None for f in saved if f["x"] == "unique_samples"} == {"flat": False, "clean": True}
    # the legend of the samples figure says it too
    labels = []
    monkeypatch_save(labels)
    plots.plot_acc_vs_samples(study, tmp_path / "s.png")
    assert "flat (fit not drawn: at a bound, see the fit table)" in labels and any(lab.startswith("clean (α=0.50") for lab in labels)


def monkeypatch_save(labels):
    """Collect the legend labels of the next figure instead of writing it (restored by the next _save call)."""
    original = plots._save

    def keep(fig, out):
        labels.extend(text.get_text() for ax in fig.axes for text in ax.get_legend().get_texts())
        plots._save = original
        return original(fig, out)

    plots._save = keep


def test_fewer_distinct_points_than_parameters_plus_one_is_refused():
    with pytest.raises(fit.TooFewPoints, match="only 3 distinct x values for 3 parameters; need at least 4"):
        fit.fit_power_law([1e3, 1e3, 2e3, 2e3, 4e3, 4e3], [0.5, 0.51, 0.45, 0.46, 0.4, 0.41])
    with pytest.raises(fit.TooFewPoints, match=r"only 4 distinct \(samples seen, subset size\) pairs for 4 parameters"):
        fit.fit_repetition([1e3, 2e3, 4e3, 8e3, 8e3], [1e3] * 5, [0.5, 0.45, 0.42, 0.41, 0.4])
    fit.fit_power_law([1e3, 2e3, 4e3, 8e3], [0.5, 0.45, 0.42, 0.41], n_boot=0)  # four distinct: fitted


def test_repetition_fit_at_a_bound_of_tau():
    at_cap = fit.RepetitionFit(0.1, -0.3, 0.1, 1e3, 1e5, 6, 0.01, (), np.empty((0, 4)))
    assert "τ at its cap" in fit_problem(at_cap)
    fixed = fit.RepetitionFit(0.1, -0.3, 0.1, 1e3, 1e5, 6, 0.01, ("tau",), np.empty((0, 4)))
    assert fit_problem(fixed) is None  # a tau the user fixed is not a fitted bound


def test_panel_with_one_point_per_tier_and_no_fit_is_left_out(tmp_path):
    flat_and_clean_runs(tmp_path / "runs")
    for tier in ("flat", "clean"):  # a second budget at one size only
        for seed in (0, 1):
            write_run(tmp_path / "runs", tier=tier, method="clip", subset_size=1000, samples_seen=2 * BUDGET, seed=seed,
                      shape_top1=0.5)
    study = study_of(tmp_path / "runs")
    panels, notes = plots.sample_panels(study)
    assert panels == [("clip", BUDGET)]
    assert notes == ["clip at 16,000 samples seen: not drawn, every tier has runs at one data size only (1,000 unique "
                     "samples): see the best-tier table"]
    assert notes[0] in plots.figure_notes(study)["acc_vs_samples"]


def test_figures_with_nothing_to_compare_are_not_drawn(tmp_path):
    for seed in (0, 1):  # one tier, one method, one size, one budget
        write_run(tmp_path / "runs", tier="top10", method="clip", subset_size=1000, samples_seen=BUDGET, seed=seed,
                  shape_top1=0.4 + seed / 100)
    paths, study = report([tmp_path / "runs"], ReportConfig(tmp_path / "rep", "png", StudyConfig(task="shape", metric="top1",
                                                                                                   n_boot=5)))
    drawn = {p.name for p in (tmp_path / "rep").iterdir() if p.suffix == ".png"}
    assert drawn == {"data_cards.png"}  # the synthetic gt shares: the one figure that shows something here
    notes = plots.figure_notes(study)
    assert notes["best_tier"] == ["Not drawn: no budget has two tiers to compare (see the table)."]
    assert notes["acc_vs_compute"][0].startswith("Not drawn: every run has the same training compute")
    assert not any(p.stat().st_size == 0 for p in (tmp_path / "rep").iterdir())
    assert study.best.filter(pl.col("tier") == "top10")["n"].to_list() == [2]
