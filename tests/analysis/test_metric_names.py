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
