"""`image_dedup`: near-duplicate images by FAISS inner-product range search, plus exact duplicates by SHA-1.

1. prepare (per shard): SHA-1 of each image's bytes (`_parts/sha1/00000.npy`,
   fixed-width strings, "" for a row without image). Needs no model.
2. build (once): the clip stage's image embeddings (L2-normalised) go into a
   `faiss.IndexFlatIP`; each image's nearest neighbours at or above the
   cosine threshold are its near-duplicate pairs; rows with equal SHA-1 are joined too; groups are the
   connected components. Without a complete clip stage only exact duplicates
   are grouped (the build stats say so); run clip first for near-duplicates. `image_dup_group` = smallest global row index in the
   group, `image_dup_keep` = one row per group (highest clip_score, ties by
   smallest uid). Rows without a readable image are their own group and kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from curate.errors import UserError
from curate.stages.base import IMAGES, ShardContext, Stage, load_parts, parts_path, save_global, shard_offsets, shard_slice
from curate.stages.groups import connected_groups, global_uids_and_scores, keep_one_per_group

PRODUCES = {"image_dup_group": pl.Int64, "image_dup_keep": pl.Boolean, "image_sha1": pl.Utf8}


@dataclass(frozen=True)
class ImageDedupConfig:
    threshold: float = 0.95  # cosine similarity of image embeddings at or above which two images are near-duplicates
    neighbours: int = 32  # nearest neighbours searched per image (bounds memory)

    def __post_init__(self):
        if not -1 <= self.threshold <= 1 or self.neighbours < 1:
            raise UserError(f"image_dedup: need a cosine --image-dup-threshold in [-1, 1] (not {self.threshold}) "
                            "and --image-dup-neighbours >= 1")


def prepare(meta: pl.DataFrame, images: Iterator | None, cfg: ImageDedupConfig, ctx: ShardContext) -> dict[str, np.ndarray]:
    """SHA-1 per image; "" for every row of a metadata-only pool (near-duplicates then come from imported embeddings)."""
    blobs = images if images is not None else (None for _ in range(meta.height))
    digests = [hashlib.sha1(blob).hexdigest() if blob is not None else "" for blob in blobs]
    return {"sha1": np.asarray(digests, dtype="U40").reshape(len(digests))}


def near_pairs(embeddings: np.ndarray, threshold: float, neighbours: int, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (row, other) whose cosine is at or above the threshold, among each row's `neighbours` nearest.

    A k-nearest-neighbour search instead of `range_search`: memory stays
    rows x neighbours even when embeddings collapse (a weak model can put most
    of a pool above the threshold, and a range search then returns ~rows^2
    pairs). Groups still chain through neighbours of neighbours.
    """
    import faiss

    rows = np.flatnonzero(~np.isnan(embeddings).any(axis=1))
    if len(rows) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    vectors = np.ascontiguousarray(embeddings[rows], dtype=np.float32)
    faiss.normalize_L2(vectors)  # undo float16 rounding of the stored unit vectors
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    k = min(neighbours + 1, len(rows))  # + 1: a row finds itself
    left, right = [], []
    for start in range(0, len(rows), batch):
        sims, found = index.search(vectors[start:start + batch], k)
        query = np.repeat(np.arange(start, start + len(found)), k).reshape(found.shape)
        close = (sims >= threshold) & (found >= 0) & (found != query)
        left.append(rows[query[close]])
        right.append(rows[found[close]])
    return np.concatenate(left), np.concatenate(right)


def exact_pairs(sha1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.flatnonzero(sha1 != "")
    _, first, inverse = np.unique(sha1[rows], return_index=True, return_inverse=True)
    return rows, rows[first[inverse]]


def build(pool, cfg: ImageDedupConfig, joined: tuple[str, ...]) -> dict:
    from curate.stages.clip import load_image_embeddings
    from curate.stages.embeddings import pool_embeddings

    sha1 = np.concatenate(load_parts(pool, "image_dedup", "sha1"))
    source = pool_embeddings(pool)
    embeddings = load_image_embeddings(pool) if source is not None else np.full((len(sha1), 1), np.nan, np.float32)
    near_left, near_right = near_pairs(embeddings, cfg.threshold, cfg.neighbours)
    same_left, same_right = exact_pairs(sha1)
    group = connected_groups(len(sha1), np.concatenate([near_left, same_left]), np.concatenate([near_right, same_right]))
    uids, scores = global_uids_and_scores(pool, joined)
    keep = keep_one_per_group(group, uids, scores)
    save_global(pool, "image_dedup", {"offsets": shard_offsets(pool), "image_dup_group": group, "image_dup_keep": keep})
    return {"rows": len(sha1), "with_embedding": int((~np.isnan(embeddings).any(axis=1)).sum()),
            "near_duplicates": f"{source.tag} ({source.origin})" if source is not None
            else "skipped: no image embeddings (no complete clip stage, none imported): exact duplicates only",
            "exact_duplicate_rows": int(len(same_left) - len(np.unique(same_right))),
            "rows_in_groups": int((np.bincount(group) > 1)[group].sum()), "dropped": int((~keep).sum())}


def compute(meta: pl.DataFrame, images: Iterator | None, cfg: ImageDedupConfig, ctx: ShardContext) -> pl.DataFrame:
    part = shard_slice(ctx, "image_dedup", ("image_dup_group", "image_dup_keep"))
    sha1 = np.load(parts_path(ctx.pool, "image_dedup", "sha1", ctx.shard), allow_pickle=False)
    return pl.DataFrame(
        {"uid": meta["uid"], "image_dup_group": part["image_dup_group"], "image_dup_keep": part["image_dup_keep"],
         "image_sha1": [s or None for s in sha1.tolist()]},
        schema={"uid": pl.Utf8, **PRODUCES},
    )


STAGE = Stage(name="image_dedup", produces=PRODUCES, compute=compute, config=ImageDedupConfig,
              needs=("uid",), uses=(IMAGES, "clip"), prepare=prepare, build=build,
              doc="FAISS near-duplicate image groups (cosine threshold) and exact duplicates by SHA-1")
