"""Zero-shot and retrieval metrics on given embeddings, with their exact chance levels.

Pure functions (tensors in, floats out) so they can be checked by hand on tiny
constructed cases; `train/evaluate.py` computes the embeddings and calls them.

Retrieval follows clip_benchmark's `zeroshot_retrieval.py`: a (texts × images)
score matrix, a boolean matrix of positive pairs, and recall@k per query = 1 if
at least one positive is among its top-k candidates, averaged over queries.
clip_benchmark names them `image_retrieval_recall@k` (text → image) and
`text_retrieval_recall@k` (image → text); we write `t2i_recall@k` and
`i2t_recall@k`. We build the positive matrix from rows of (image file, caption):
identical images (same file) and identical captions (same string) are merged,
so a caption shared by many images has all of them as positives (one caption
per image is clip_benchmark's one-positive case, an image with several captions
its multi-caption case).
"""

from __future__ import annotations

import math


def topk_accuracy(logits, labels, k: int) -> float:
    """Share of rows whose true label is among the k highest logits (as open_clip's zero-shot `accuracy`)."""
    top = logits.topk(k, dim=1).indices
    return (top == labels.view(-1, 1)).any(dim=1).double().mean().item() if len(labels) else math.nan


def zeroshot_chance(n_classes: int, k: int) -> float:
    """Top-k accuracy of a uniformly random ranking of the classes."""
    return min(1.0, k / n_classes)


def recall_at_k(scores, positives, k: int) -> float:
    """Share of queries (rows) with at least one positive among their k best-scored candidates (columns)."""
    top = scores.topk(k, dim=1).indices
    return positives.gather(1, top).any(dim=1).double().mean().item()


def recall_chance(positives, k: int) -> float:
    """Expected recall@k of a uniformly random ranking: mean over queries of 1 - C(N-m, k) / C(N, k).

    N candidates, m positives for the query; with one positive per query this is k/N.
    """
    n_candidates = positives.shape[1]
    per_query = [_hit_probability(n_candidates, int(m), k) for m in positives.sum(dim=1).tolist()]
    return sum(per_query) / len(per_query)


def _hit_probability(n: int, m: int, k: int) -> float:
    # P(no positive in a random k-subset) = prod_{j<k} (n-m-j)/(n-j); a float product avoids huge binomials.
    miss = 1.0
    for j in range(k):
        miss *= max(0, n - m - j) / (n - j)
    return 1.0 - miss


def positive_pairs(image_ids: list[int], text_ids: list[int], n_images: int, n_texts: int):
    """Boolean (texts × images) matrix: True where some row pairs that text with that image."""
    import torch

    pairs = torch.zeros((n_texts, n_images), dtype=torch.bool)
    pairs[torch.tensor(text_ids, dtype=torch.long), torch.tensor(image_ids, dtype=torch.long)] = True
    return pairs
