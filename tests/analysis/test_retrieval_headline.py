"""A retrieval metric as the headline (both directions in the summary), and the majority-class baseline beside 1/k
chance for zero-shot tasks whose eval set gives it (eval.jsonl's `majority_score`, optional)."""

import pytest
from tierclip.analysis import plots
from tierclip.analysis.report import ReportConfig, report
from tierclip.analysis.study import StudyConfig
from tierclip.analysis.tables import companion_metric, metric_title

from tests.analysis.fake_runs import write_run

TIERS = {"top30": 0.10, "top100": 0.05}


def retrieval_runs(root, majority=True):
    for tier, base in TIERS.items():
        for size in (500, 1000, 2000, 4000):
            for seed in (0, 1, 2):
                noise = (seed - 1) * 0.002
                rows = ({"task": "heldout", "metric": "image_retrieval_recall@1", "value": base + noise, "random_score": 0.004},
                        {"task": "heldout", "metric": "text_retrieval_recall@1", "value": base / 2 + noise, "random_score": 0.004},
                        {"task": "kind", "metric": "top1", "value": 0.3 + base + noise, "random_score": 0.1,
                         **({"majority_score": 0.25} if majority else {})})
                write_run(root, tier=tier, method="clip", subset_size=size, samples_seen=20000, seed=seed, shape_top1=0.2,
                          extra_rows=rows, manifest={"fraction": 1.0 if tier == "top100" else 0.3})


def test_metric_names():
    assert companion_metric("image_retrieval_recall@1") == "text_retrieval_recall@1"
    assert companion_metric("i2t_recall_merged@5") == "t2i_recall_merged@5" and companion_metric("top1") is None
    assert metric_title("heldout", "text_retrieval_recall@1") == "heldout: image→text recall@1"
    assert metric_title("heldout", "t2i_recall_merged@1") == "heldout: text→image recall@1 (identical captions merged)"
    assert metric_title("kind", "top1") == "zero-shot kind top1"


def test_retrieval_headline_reports_both_directions(tmp_path):
    retrieval_runs(tmp_path / "runs")
    paths, study = report([tmp_path / "runs"], ReportConfig(tmp_path / "rep", "png", StudyConfig(task="heldout", n_boot=5)))
    assert (study.metric, study.companion_metric) == ("image_retrieval_recall@1", "text_retrieval_recall@1")
    t2i = next(line for line in study.conclusions if line.startswith("heldout: text→image recall@1"))
    i2t = next(line for line in study.conclusions if line.startswith("heldout: image→text recall@1"))
    assert "top30 0.100 vs top100 0.050: +5.0 points" in t2i and "top30 0.050 vs top100 0.025: +2.5 points" in i2t
    assert "seeds 0, 1, 2" in t2i
    summary = (tmp_path / "rep" / "summary.md").read_text()
    assert "Metric: heldout: text→image recall@1; random chance 0.004;" in summary and "zero-shot heldout" not in summary
    assert "| text_retrieval_recall@1 | clip | 20,000 | 4,000 | top30 | 0.050 |" in summary  # the headline table, both
    quality = next(f for f in study.findings if f.key == "quality")
    assert "the paper's retrieval effect (0.005)" in quality.seeds


def test_majority_baseline_beside_chance(tmp_path):
    retrieval_runs(tmp_path / "runs")
    _, study = report([tmp_path / "runs"], ReportConfig(tmp_path / "rep", "png", StudyConfig(task="kind", n_boot=5)))
    assert study.random_score == pytest.approx(0.1) and study.majority_score == pytest.approx(0.25)
    assert "random chance 0.100; majority class 0.250" in (tmp_path / "rep" / "summary.md").read_text()
    labels = []
    original = plots._save
    plots._save = lambda fig, out: labels.extend(t.get_text() for ax in fig.axes if ax.get_legend()
                                                 for t in ax.get_legend().get_texts()) or out
    try:
        plots.plot_acc_vs_samples(study, tmp_path / "x.png")
    finally:
        plots._save = original
    assert "random chance (0.1)" in labels and "majority class (0.25)" in labels


def test_no_majority_field_no_majority_line(tmp_path):
    retrieval_runs(tmp_path / "runs", majority=False)
    _, study = report([tmp_path / "runs"], ReportConfig(tmp_path / "rep", "png", StudyConfig(task="kind", n_boot=5)))
    assert study.majority_score is None and "majority class" not in (tmp_path / "rep" / "summary.md").read_text()
