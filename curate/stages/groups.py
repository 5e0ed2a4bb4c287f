"""Duplicate groups shared by text_dedup and image_dedup: connected components and one keeper per group."""

from __future__ import annotations

import numpy as np
import polars as pl


def connected_groups(n_rows: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Group id per row = the smallest global row index in its connected component (stable across runs)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n_rows, n_rows))
    _, labels = connected_components(graph, directed=False)
    smallest = np.full(labels.max() + 1 if n_rows else 0, n_rows, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(n_rows, dtype=np.int64))
    return smallest[labels]


def keep_one_per_group(group: np.ndarray, uid: list[str] | pl.Series, score: np.ndarray | None = None) -> np.ndarray:
    """True for one row per group: the highest score (nulls last) when scores are given, ties and no score -> smallest uid."""
    score_values = score if score is not None else np.full(len(group), np.nan, dtype=np.float32)
    frame = pl.DataFrame({"row": np.arange(len(group)), "group": group, "uid": uid, "score": score_values})
    frame = frame.with_columns(pl.col("score").fill_nan(None))
    chosen = (
        frame.sort(["group", "score", "uid"], descending=[False, True, False], nulls_last=True)
        .unique("group", keep="first")["row"].to_numpy()
    )
    keep = np.zeros(len(group), dtype=bool)
    keep[chosen] = True
    return keep


def global_uids_and_scores(pool, joined: tuple[str, ...]) -> tuple[pl.Series, np.ndarray | None]:
    """All uids in pool order (a polars Series: ~40 bytes a row, not a Python list), and clip_score when clip is complete."""
    uids = pool.scan_meta().select("uid").collect()["uid"]
    if "clip" not in joined:
        return uids, None
    scores = pool.scan_scores("clip").select("clip_score").collect()["clip_score"].cast(pl.Float32).fill_null(np.nan)
    return uids, scores.to_numpy()
