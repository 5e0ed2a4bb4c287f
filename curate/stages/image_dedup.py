"""`image_dedup`: near-duplicate images by FAISS inner-product range search, plus exact duplicates by SHA-1.

1. prepare (per shard): SHA-1 of each image's bytes (`_parts/sha1/00000.npy`,
   fixed-width strings, "" for a row without image). Needs no model.
2. near-duplicates from the pool's image embeddings (the clip stage's, or
   DataComp's imported ones; L2-normalised): each image's `neighbours` nearest
   at or above the cosine threshold are its near-duplicate pairs.
   - up to `exact_max` rows: one exact `faiss.IndexFlatIP` searched
     all-against-all in the build (quadratic, but exact);
   - above: an inverted-file search out of core, in two global phases.
     `lists`: spherical k-means with `lists` centroids (0 = 2 x sqrt(rows))
     trained on a sample (FAISS's points-per-centroid cap), then one task per
     shard puts each image into its `probe` nearest lists. `search`: one task
     per group of lists gathers only those images and searches each list
     exactly (flat inner product); pairs from different tasks are merged.
     Two images are compared when they share one of their `probe` lists;
     bench/bench_scale.py measures the recall of above-threshold pairs
     against the exact search (docs/benchmarks.md).
   Rows with equal SHA-1 are joined too; groups are the connected components.
   Without image embeddings only exact duplicates are grouped (the build stats
   say so); run clip first, or import DataComp's, for near-duplicates. `image_dup_group` = smallest global row index in the
   group, `image_dup_keep` = one row per group (highest clip_score, ties by
   smallest uid). Rows without a readable image are their own group and kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl
from tierclip.curate.fields import Checked
from tierclip.curate.stages.base import (
    IMAGES,
    GlobalPhase,
    ShardContext,
    Stage,
    global_dir,
    load_parts,
    option,
    parts_path,
    save_global,
    shard_offsets,
    shard_slice,
)
from tierclip.curate.stages.groups import connected_groups, global_uids_and_scores, keep_one_per_group

PRODUCES = {"image_dup_group": pl.Int64, "image_dup_keep": pl.Boolean, "image_sha1": pl.Utf8}


@dataclass(frozen=True)
class ImageDedupConfig(Checked):
    threshold: float = option(0.95, "cosine similarity at or above which images are near-duplicates.", ge=-1, le=1)
    neighbours: int = option(32, "nearest neighbours searched per image (bounds memory; groups still chain through neighbours).",
                             ge=1)
    exact_max: int = option(50_000, "pools up to this many rows are searched exactly (all against all); larger ones in "
                                    "inverted lists.", ge=0)
    lists: int = option(0, "inverted lists (k-means centroids) for pools above --image-dedup-exact-max (0 = 2 x sqrt(rows)).", ge=0)
    probe: int = option(2, "lists each image is put into; two images are compared when they share one (more: higher recall, "
                           "slower).", ge=1)
    seed: int = option(1234, "seed of the inverted lists' k-means.", ge=0, le=2**31 - 1)


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


SEARCH_ROWS_PER_TASK = 100_000  # (image, list) entries one search task holds: ~0.3 GB of 768-d float32 embeddings


def approximate(pool, cfg: ImageDedupConfig) -> bool:
    from tierclip.curate.stages.embeddings import pool_embeddings

    return pool.info.n_samples > cfg.exact_max and pool_embeddings(pool) is not None


def n_lists(pool, cfg: ImageDedupConfig) -> int:
    return cfg.lists or max(1, round(2 * pool.info.n_samples ** 0.5))


def list_tasks(pool, cfg: ImageDedupConfig, joined: tuple[str, ...]) -> list[str]:
    """Train the list centroids once (on a sample), then one list-assignment task per shard; none for an exact search."""
    from tierclip.curate import atomic
    from tierclip.curate.stages.embeddings import require, train_centroids

    if not approximate(pool, cfg):
        return []
    path = global_dir(pool, "image_dedup") / "list_centroids.npy"
    if not path.is_file():
        atomic.write_npy(path, train_centroids(pool, require(pool), n_lists(pool, cfg), 10, cfg.seed, 64))
    return [f"{s:05d}" for s in pool.shard_ids()]


def assign_lists(pool, cfg: ImageDedupConfig, joined: tuple[str, ...], task: str) -> dict:
    from tierclip.curate import atomic
    from tierclip.curate.stages.embeddings import assign_shard, require

    centroids = np.load(global_dir(pool, "image_dedup") / "list_centroids.npy", allow_pickle=False)
    _, ids = assign_shard(pool, require(pool), int(task), centroids, min(cfg.probe, len(centroids)))
    atomic.write_npy(global_dir(pool, "image_dedup") / "lists" / f"{task}.npy", ids.astype(np.int32))
    return {"rows": len(ids)}


def search_tasks(pool, cfg: ImageDedupConfig, joined: tuple[str, ...]) -> list[str]:
    if not approximate(pool, cfg):
        return []
    groups = max(1, -(-pool.info.n_samples * cfg.probe // SEARCH_ROWS_PER_TASK))
    return [f"{g:03d}-{groups:03d}" for g in range(groups)]


def search_lists(pool, cfg: ImageDedupConfig, joined: tuple[str, ...], task: str) -> dict:
    """Exact k-NN inside every list l with l % groups == group; writes the pairs at or above the threshold."""
    from tierclip.curate import atomic
    from tierclip.curate.stages.embeddings import gather_rows, require

    group, groups = (int(x) for x in task.split("-"))
    offsets = shard_offsets(pool)
    lists = np.concatenate([np.load(global_dir(pool, "image_dedup") / "lists" / f"{s:05d}.npy", allow_pickle=False)
                            for s in pool.shard_ids()])
    row, slot = np.nonzero((lists >= 0) & (lists % groups == group))
    member_list = lists[row, slot]
    unique_rows, position = np.unique(row, return_inverse=True)
    vectors = gather_rows(pool, require(pool), unique_rows.astype(np.int64), offsets)
    order = np.argsort(member_list, kind="stable")
    bounds = np.flatnonzero(np.diff(member_list[order])) + 1
    left, right = [], []
    for members in np.split(order, bounds) if len(order) else []:
        a, b = near_pairs(vectors[position[members]], cfg.threshold, cfg.neighbours)
        left.append(unique_rows[position[members][a]])
        right.append(unique_rows[position[members][b]])
    edges = np.stack([np.concatenate(left), np.concatenate(right)], axis=1).astype(np.int64) if left else np.zeros((0, 2), np.int64)
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    atomic.write_npy(global_dir(pool, "image_dedup") / "edges" / f"{task}.npy", edges)
    return {"rows": int(len(row)), "lists": int(len(bounds) + (len(order) > 0)), "edges": int(len(edges))}


def near_edges(pool, cfg: ImageDedupConfig, n_rows: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Near-duplicate pairs: exact search for a small pool, the `search` phase's files for a large one."""
    from tierclip.curate.stages.embeddings import load_image_embeddings, pool_embeddings

    source = pool_embeddings(pool)
    if source is None:
        skipped = "skipped: no image embeddings (no complete clip stage, none imported): exact duplicates only"
        return np.zeros(0, np.int64), np.zeros(0, np.int64), skipped
    if not approximate(pool, cfg):
        left, right = near_pairs(load_image_embeddings(pool), cfg.threshold, cfg.neighbours)
        return left, right, f"{source.tag} ({source.origin}), exact search"
    files = sorted((global_dir(pool, "image_dedup") / "edges").glob("*.npy"))
    edges = np.concatenate([np.load(f, allow_pickle=False) for f in files]) if files else np.zeros((0, 2), np.int64)
    edges = np.unique(edges, axis=0)  # a pair sharing two lists of different groups is in two files
    return edges[:, 0], edges[:, 1], f"{source.tag} ({source.origin}), {n_lists(pool, cfg)} inverted lists, probe {cfg.probe}"


def build(pool, cfg: ImageDedupConfig, joined: tuple[str, ...]) -> dict:
    sha1 = np.concatenate(load_parts(pool, "image_dedup", "sha1"))
    near_left, near_right, how = near_edges(pool, cfg, len(sha1))
    same_left, same_right = exact_pairs(sha1)
    group = connected_groups(len(sha1), np.concatenate([near_left, same_left]), np.concatenate([near_right, same_right]))
    uids, scores = global_uids_and_scores(pool, joined)
    keep = keep_one_per_group(group, uids, scores)
    save_global(pool, "image_dedup", {"offsets": shard_offsets(pool), "image_dup_group": group, "image_dup_keep": keep})
    return {"rows": len(sha1), "near_duplicates": how, "near_pairs": int(len(near_left)),
            "exact_duplicate_rows": int(len(same_left) - len(np.unique(same_right))),
            "rows_in_groups": int((np.bincount(group) > 1)[group].sum()) if len(sha1) else 0, "dropped": int((~keep).sum())}


def compute(meta: pl.DataFrame, images: Iterator | None, cfg: ImageDedupConfig, ctx: ShardContext) -> pl.DataFrame:
    part = shard_slice(ctx, "image_dedup", ("image_dup_group", "image_dup_keep"))
    sha1 = np.load(parts_path(ctx.pool, "image_dedup", "sha1", ctx.shard), allow_pickle=False)
    return pl.DataFrame(
        {"uid": meta["uid"], "image_dup_group": part["image_dup_group"], "image_dup_keep": part["image_dup_keep"],
         "image_sha1": [s or None for s in sha1.tolist()]},
        schema={"uid": pl.Utf8, **PRODUCES},
    )


STAGE = Stage(name="image_dedup", produces=PRODUCES, compute=compute, config=ImageDedupConfig,
              needs=("uid",), uses=(IMAGES, "clip"), prepare=prepare,
              phases=(GlobalPhase("lists", list_tasks, assign_lists), GlobalPhase("search", search_tasks, search_lists)), build=build,
              doc="FAISS near-duplicate image groups (cosine threshold) and exact duplicates by SHA-1")
