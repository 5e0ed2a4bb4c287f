"""The model axes of a report (architecture vs data size, ConvNet vs ViT per method, text depth), their
intervals over seeds and the findings-vs-papers verdicts, from fake runs whose values are known."""

import numpy as np
import polars as pl
import pytest
from scipy import stats as scipy_stats
from tierclip.analysis import findings
from tierclip.analysis.report import ReportConfig, report
from tierclip.analysis.stats import Estimate, difference, mean_estimate
from tierclip.analysis.study import StudyConfig

from tests.analysis.fake_runs import fake_model, write_run

OFFSETS = {0: -0.01, 1: 0.01}  # two seeds: mean = the value, sd = 0.01 * sqrt(2)
SMALL = {0: -0.002, 1: 0.002}
# (model, method, unique samples) -> mean accuracy, at tier top30 and 8,000 samples seen
VALUES = {("vit-s", "clip", 1000): 0.40, ("vit-s", "clip", 4000): 0.45,
          ("vit-l", "clip", 1000): 0.35, ("vit-l", "clip", 4000): 0.55,
          ("rn-a", "clip", 1000): 0.42, ("rn-a", "clip", 4000): 0.50,
          ("rn-a", "slip", 4000): 0.60, ("vit-l", "slip", 4000): 0.57}
DEPTHS = {"rn-t1": (1, 0.50, 0.040, 600.0), "rn-t4": (4, 0.505, 0.055, 450.0)}  # model: depth, mean, GFLOPs, samples/s


@pytest.fixture(scope="module")
def axes_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("axes")
    fake_model("vit-s", "vit", 200_000, image_width=64)
    fake_model("vit-l", "vit", 2_000_000, image_width=192)
    fake_model("rn-a", "convnet", 1_000_000)  # text depth 3
    for name, (depth, *_) in DEPTHS.items():
        fake_model(name, "convnet", 1_000_000, text_depth=depth)
    for (model, method, size), value in VALUES.items():
        for seed, offset in OFFSETS.items():
            write_run(root / "runs", tier="top30", method=method, subset_size=size, samples_seen=8000, seed=seed,
                      shape_top1=value + offset, model=model, gflops_per_sample=0.05, samples_per_s=500.0)
    for model, (_, value, gflops, speed) in DEPTHS.items():
        for seed, offset in SMALL.items():
            write_run(root / "runs", tier="top30", method="clip", subset_size=4000, samples_seen=8000, seed=seed,
                      shape_top1=value + offset, model=model, gflops_per_sample=gflops, samples_per_s=speed + 10 * offset / 0.002)
    write_run(root / "runs", tier="full", method="clip", subset_size=4000, samples_seen=8000, seed=0, shape_top1=0.3,
              model="rn-a")  # one seed: no interval, no error bar
    out = root / "report"
    _, study = report([root / "runs"], ReportConfig(out, "png", StudyConfig(task="shape", metric="top1", n_boot=5)))
    return out, study


def test_architecture_table_means_and_best_model_per_size(axes_report):
    _, study = axes_report
    rows = study.architecture.rows
    for (model, method, size), value in VALUES.items():
        if method != "clip":
            continue
        row = rows.filter((pl.col("model") == model) & (pl.col("unique_samples") == size)).row(0, named=True)
        assert row["mean"] == pytest.approx(value) and row["n"] == 2
        assert row["std"] == pytest.approx(0.01 * np.sqrt(2))
        t = scipy_stats.t.ppf(0.975, 1) * row["std"] / np.sqrt(2)
        assert (row["ci_lo"], row["ci_hi"]) == (pytest.approx(value - t), pytest.approx(value + t))
    best = {r["unique_samples"]: r["model"] for r in rows.filter(pl.col("rank") == 1).iter_rows(named=True)}
    assert best == {1000: "rn-a", 4000: "vit-l"}
    assert rows.filter(pl.col("model") == "vit-l")["model_family"].unique().to_list() == ["vit"]


def test_family_table_and_supervision_interaction(axes_report):
    out, study = axes_report
    assert "tier top30, subset size 4,000, 8,000 samples seen" == study.families.setting
    assert set(study.families.rows["model"].to_list()) == {"rn-a", "vit-s", "vit-l"}  # text-depth variants left out
    cells = {(r["method"], r["model"]): r["mean"] for r in study.families.rows.iter_rows(named=True)}
    assert cells[("slip", "rn-a")] == pytest.approx(0.60) and cells[("slip", "vit-l")] == pytest.approx(0.57)
    # ViT - ConvNet for clip, against scipy's Welch interval over the same seed values
    welch = scipy_stats.ttest_ind([0.54, 0.56], [0.49, 0.51], equal_var=False).confidence_interval(0.95)
    gap = difference((0.55, 0.01 * np.sqrt(2), 2), (0.50, 0.01 * np.sqrt(2), 2))
    assert gap.interval == (pytest.approx(welch.low), pytest.approx(welch.high))
    page = (out / "index.html").read_text()
    assert f"0.050 [{welch.low:.3f}, {welch.high:.3f}]" in page
    supervision = next(f for f in study.findings if f.key == "supervision")
    # (0.57 - 0.55) - (0.60 - 0.50) = -0.08; four groups of sd 0.01*sqrt(2), n 2: se 0.02, df 4
    half = scipy_stats.t.ppf(0.975, 4) * 0.02
    assert supervision.estimate.value == pytest.approx(-0.08)
    assert supervision.estimate.interval == (pytest.approx(-0.08 - half), pytest.approx(-0.08 + half))
    assert supervision.verdict == "reproduced"


def test_vit_size_finding(axes_report):
    _, study = axes_report
    vit = next(f for f in study.findings if f.key == "vit_size")
    # (vit-l - vit-s) at 4,000 unique minus at 1,000: (0.55 - 0.45) - (0.35 - 0.40) = 0.15
    assert vit.estimate.value == pytest.approx(0.15) and vit.verdict == "reproduced"
    assert vit.estimate.interval[0] == pytest.approx(0.15 - scipy_stats.t.ppf(0.975, 4) * 0.02)


def test_text_depth_table_and_finding(axes_report):
    out, study = axes_report
    rows = {r["text_depth"]: r for r in study.depth.rows.iter_rows(named=True)}
    assert sorted(rows) == [1, 3, 4]
    assert rows[1]["gflops_per_sample"] == pytest.approx(0.040) and rows[4]["samples_per_s"] == pytest.approx(450.0)
    assert rows[1]["mean"] == pytest.approx(0.50) and rows[3]["model"] == "rn-a"
    depth = next(f for f in study.findings if f.key == "text_depth")
    expected = scipy_stats.ttest_ind([0.498, 0.502], [0.503, 0.507], equal_var=False).confidence_interval(0.95)
    assert depth.estimate.interval == (pytest.approx(expected.low), pytest.approx(expected.high))
    assert depth.verdict == "reproduced"  # lower end -0.017 > -0.02
    summary = (out / "summary.md").read_text()
    for title in ("## Architecture vs data size", "## ConvNet vs ViT per method", "## Text-encoder depth"):
        assert title in summary
    assert summary.index("## Findings vs the seed papers") > summary.index("## Problems")
    for figure in ("architectures.png", "families.png", "text_depth.png"):
        assert (out / figure).stat().st_size > 1000


def test_one_seed_has_no_error_bar(axes_report):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tierclip.analysis.plots import _errorbars
    from tierclip.analysis.report import best_rows

    _, study = axes_report
    one = study.all_means.filter(pl.col("tier") == "full").row(0, named=True)
    assert one["n"] == 1 and one["std"] is None and one["ci_lo"] is None
    fig, ax = plt.subplots()
    _errorbars(ax, [0], [one])
    assert len(ax.lines) == 0 and len(ax.collections) == 0
    _errorbars(ax, [1], [study.all_means.filter(pl.col("model") == "vit-l").row(0, named=True)])
    assert len(ax.collections) == 2  # sd and 95 % interval whiskers
    plt.close(fig)
    headers, rows = best_rows(study)
    full = next(r for r in rows if r[3] == "full")
    assert full[headers.index("sd")] == "–" and full[headers.index("95% interval")] == "–"


@pytest.mark.parametrize(("kind", "interval", "expected"), [
    ("better", (0.01, 0.05), "reproduced"), ("better", (-0.05, -0.01), "contradicted"), ("better", (-0.01, 0.05), "inconclusive"),
    ("no worse", (-0.019, 0.03), "reproduced"), ("no worse", (-0.08, -0.03), "contradicted"),
    ("no worse", (-0.05, 0.01), "inconclusive"), ("differs", (-0.08, -0.01), "reproduced"),
    ("differs", (-0.015, 0.01), "contradicted"), ("differs", (-0.05, 0.03), "inconclusive"),
    ("better", None, "inconclusive"), ("no worse", (0.0, 0.0), "inconclusive")])
def test_verdict_rules(kind, interval, expected):
    assert findings.verdict(kind, Estimate(0.0, interval, 2 if interval else 1))[0] == expected


def test_mean_estimate_one_seed_has_no_interval():
    assert mean_estimate([0.3]).interval is None and mean_estimate([0.3]).sd is None
    two = mean_estimate([0.2, 0.4])
    assert two.interval == (pytest.approx(0.3 - scipy_stats.t.ppf(0.975, 1) * 0.1), pytest.approx(0.3 + scipy_stats.t.ppf(0.975, 1) * 0.1))


def test_aug_half_pairs_clip_aug_with_clip_at_twice_the_data():
    def cell(method, size, mean):
        return {"tier": "top40", "model": "m", "samples_seen": 10000, "method": method, "subset_size": size,
                "mean": mean, "std": 0.01, "n": 3}

    means = pl.DataFrame([cell("clip-aug", 1000, 0.40), cell("clip", 2000, 0.41), cell("clip", 3600, 0.60),
                          cell("clip-aug", 2000, 0.30)])
    found = findings.aug_half_finding(means)
    # only 1,000 vs 2,000 is "twice" (3,600 is 1.8x of 2,000): 0.40 - 0.41 = -0.01, se 0.01*sqrt(2/3), df 4
    half = scipy_stats.t.ppf(0.975, 4) * 0.01 * np.sqrt(2 / 3)
    assert found.estimate.value == pytest.approx(-0.01)
    assert found.estimate.interval == (pytest.approx(-0.01 - half), pytest.approx(-0.01 + half))
    assert found.verdict == "inconclusive"  # lower end -0.033 < -0.02
    assert findings.aug_half_finding(means.filter(pl.col("method") == "clip")).verdict == "not tested by these runs"


def test_crossover_needs_a_smaller_and_a_larger_tier():
    from tierclip.analysis.fit import Crossover
    from tierclip.analysis.study import CrossoverRow

    def row(reason, share=0.9):
        return CrossoverRow("samples seen (repetition law)", "clip", "top20", "top100",
                            Crossover(5000.0, (3000.0, 9000.0), reason, share))

    larger_wins = row("top100 is better above x = 5000")
    equal = findings.crossover_finding([larger_wins], [], {"top20": 2000, "top100": 2000})
    assert equal.verdict == "not tested by these runs" and "same largest size" in equal.why
    found = findings.crossover_finding([larger_wins], [], {"top20": 4000, "top100": 20000})
    assert found.verdict == "reproduced" and found.estimate.interval == (3000.0, 9000.0)
    assert findings.crossover_finding([row("top20 is better above x = 5000")], [], {"top20": 4000, "top100": 20000}).verdict \
        == "contradicted"
    assert findings.crossover_finding([row("top100 is better above x = 5000", 0.3)], [],
                                      {"top20": 4000, "top100": 20000}).verdict == "inconclusive"


def test_architecture_panels_show_every_mean(axes_report, tmp_path, monkeypatch):
    """The panels share their y axis: its limits must hold every panel's means (in the --full demo a clip-aug panel
    with lower means framed the axis and cut CLIP's best models off the chart)."""
    from types import SimpleNamespace

    from tierclip.analysis import plots

    _, study = axes_report
    clip_rows = study.architecture.rows
    low_panel = clip_rows.with_columns(pl.lit("clip-aug").alias("method"), pl.col("mean") - 0.25,
                                       pl.col("ci_lo") - 0.25, pl.col("ci_hi") - 0.25)
    rows = pl.concat([clip_rows, low_panel])
    two_panels = SimpleNamespace(architecture=SimpleNamespace(rows=rows), random_score=study.random_score, majority_score=None,
                                 task=study.task, metric=study.metric)
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, out: figures.append(fig) or out)
    plots.plot_architectures(two_panels, tmp_path / "a.png")
    axes = figures[0].axes
    assert [ax.get_title().split(",")[1].strip() for ax in axes] == ["clip", "clip-aug"]
    low, high = axes[0].get_ylim()
    assert all(low <= m <= high for m in rows["mean"].to_list()) and axes[1].get_ylim() == (low, high)
    plots._pyplot().close(figures[0])
