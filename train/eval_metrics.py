"""Zero-shot and retrieval metrics on given embeddings, with their exact chance levels.

Pure functions (tensors in, floats out) so they can be checked by hand on tiny
constructed cases; `train/evaluate.py` computes the embeddings and calls them.

Retrieval follows clip_benchmark's `zeroshot_retrieval.py`: a (texts × images) score
matrix, a boolean matrix of positive pairs, and recall@k per query = 1 if at least
one positive is among its top-k candidates, averaged over queries. An eval set's rows
are (image file, caption); rows with the same file are one image. Two conventions
for the texts, reported under different names (`retrieval_metrics`):
- clip_benchmark's (`image_retrieval_recall@k` text → image, `text_retrieval_recall@k`
  image → text, its names): one query per caption row, its own row's image the only
  positive, even when another row has the same caption string. Comparable with
  published clip_benchmark numbers.
- ours, merged (`t2i_recall_merged@k`, `i2t_recall_merged@k`): identical caption
  strings are one query whose positives are all their images, so ties between
  identical captions do not decide (the synthetic eval set repeats captions).
With distinct captions the two are equal.
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


def majority_share(labels: list[int], k: int) -> float:
    """Top-k accuracy of always answering the k most frequent classes: the majority-class baseline."""
    from collections import Counter

    return sum(count for _, count in Counter(labels).most_common(k)) / len(labels)


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


# Metric name prefixes per convention: (text → image, image → text).
RETRIEVAL_NAMES = {"clip_benchmark": ("image_retrieval_recall", "text_retrieval_recall"),
                   "merged": ("t2i_recall_merged", "i2t_recall_merged")}


def retrieval_metrics(scores, text_ids: list[int], image_ids: list[int], ks) -> list[tuple[str, float, float, int]]:
    """(metric, recall, chance, n queries) for both conventions, both directions, every k below the candidates.

    `scores` is (distinct captions × distinct images); row i of the eval set has caption `text_ids[i]` and
    image `image_ids[i]`. A recall@k with k at least the number of candidates is 1 by construction: left out.
    """
    import torch

    n_texts, n_images = scores.shape
    merged = positive_pairs(image_ids, text_ids, n_images, n_texts).to(scores.device)
    per_row = torch.zeros((len(text_ids), n_images), dtype=torch.bool, device=scores.device)
    per_row[torch.arange(len(text_ids)), torch.tensor(image_ids, dtype=torch.long)] = True
    row_scores = scores[torch.tensor(text_ids, dtype=torch.long, device=scores.device)]
    out = []
    for convention, query_scores, positives in (("clip_benchmark", row_scores, per_row), ("merged", scores, merged)):
        for name, q_scores, q_positives in zip(RETRIEVAL_NAMES[convention], (query_scores, query_scores.T),
                                               (positives, positives.T), strict=True):
            for k in (k for k in ks if k < q_scores.shape[1]):
                out.append((f"{name}@{k}", recall_at_k(q_scores, q_positives, k), recall_chance(q_positives.cpu(), k),
                            q_scores.shape[0]))
    return out
