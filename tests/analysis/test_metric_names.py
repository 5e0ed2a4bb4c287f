"""analysis reads the retrieval metric names train writes: clip_benchmark's are preferred over ours (merged)."""

import polars as pl
from tierclip.analysis.tables import choose_task_metric
from tierclip.train.eval_metrics import RETRIEVAL_NAMES


def test_retrieval_task_reports_clip_benchmarks_image_retrieval_recall_at_1():
    names = [f"{prefix}@{k}" for pair in RETRIEVAL_NAMES.values() for prefix in pair for k in (1, 5, 10)]
    table = pl.DataFrame({"task": ["retrieval"] * len(names), "metric": sorted(names),
                          "value": [0.5] * len(names)})
    assert choose_task_metric(table, task="retrieval") == ("retrieval", "image_retrieval_recall@1")
    assert choose_task_metric(table, task="retrieval", metric="t2i_recall_merged@5") == ("retrieval", "t2i_recall_merged@5")


def test_runs_with_a_token_wise_score_are_scored_by_it_and_say_so():
    """FILIP's runs report `tokenwise_<metric>` beside the pooled one: the points use it (pooled stays in the table)."""
    from tierclip.analysis.tables import metric_points

    rows = [("filip-run", "filip", "i2t_recall_merged@1", 0.001), ("filip-run", "filip", "tokenwise_i2t_recall_merged@1", 0.07),
            ("clip-run", "clip", "i2t_recall_merged@1", 0.03), ("clip-run", "clip", "other@1", 0.5),
            ("other-task-run", "filip", "tokenwise_i2t_recall_merged@1", 0.9)]
    table = pl.DataFrame({"run": [r[0] for r in rows], "method": [r[1] for r in rows], "tier": [None] * 5,
                          "task": ["heldout"] * 4 + ["zeroshot"], "metric": [r[2] for r in rows],
                          "value": [r[3] for r in rows], "random_score": [0.001] * 5, "samples_seen": [100] * 5,
                          "model": ["m"] * 5, "unique_samples": [50] * 5, "seed": [0] * 5})
    points = metric_points(table, "heldout", "i2t_recall_merged@1")
    assert dict(zip(points["run"], points["value"], strict=True)) == {"filip-run": 0.07, "clip-run": 0.03}
    assert dict(zip(points["run"], points["scoring"], strict=True)) == {"filip-run": "token-wise", "clip-run": "pooled"}
