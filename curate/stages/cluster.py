"""`cluster`: FAISS k-means on image embeddings, SemDeDup pruning and DataComp's image-based filter flag.

Over the pool's image embeddings (the clip stage's, or DataComp's imported
ones; see `curate.stages.embeddings`), streamed shard by shard:
- phase `assign`: spherical `faiss.Kmeans` (k clusters, fixed seed) trained
  once on a sample of at most k x `max_points_per_centroid` embeddings (FAISS's
  cap, 256 by default; `_global/centroids.npy`), then one task per shard:
  `cluster_id` = nearest centroid, `cluster_dist` = cosine distance (1 - cos).
- phase `semdedup` (Abbas et al. 2023), one task per group of clusters: within
  each cluster, visit points from the farthest from the centroid to the
  nearest (SemDeDup's default order) and keep a point unless its cosine to an
  already kept point exceeds 1 - eps. Only that group's embeddings are read.
- DataComp's image-based filter: each reference embedding (a .npy file, or an
  eval set folder embedded with the pool's clip model) picks its nearest
  `ref_nearest` centroids; `cluster_near_ref` is true for rows in those clusters
  (null when no reference is given).
Rows without an embedding: cluster_id/cluster_dist null, semdedup_keep true, cluster_near_ref false.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from tierclip.curate.errors import UserError
from tierclip.curate.fields import Checked
from tierclip.curate.npyio import load_user_npy
from tierclip.curate.stages.base import EMBEDDINGS, GlobalPhase, ShardContext, Stage, option, save_global, shard_offsets, shard_slice

PRODUCES = {"cluster_id": pl.Int32, "cluster_dist": pl.Float32, "semdedup_keep": pl.Boolean, "cluster_near_ref": pl.Boolean}


@dataclass(frozen=True)
class ClusterConfig(Checked):
    k: int = option(100, "k of k-means (capped at the number of images).", ge=1)
    niter: int = option(20, "k-means iterations.", ge=1)
    seed: int = option(1234, "k-means seed.", ge=0, le=2**31 - 1)
    semdedup_eps: float = option(0.05, "SemDeDup drops a point whose cosine to a kept one in its cluster exceeds 1 - eps.",
                                 ge=0, le=2)
    reference: str | None = option(None, "reference image embeddings (.npy, shape N x dim) or an eval set folder (embedded "
                                   "with the pool's embedding model) for DataComp's image-based filter flag.", path=True)
    ref_nearest: int = option(1, "clusters each reference embedding selects (cluster_near_ref).", ge=1)
    max_points_per_centroid: int = option(256, "k-means trains on a sample of at most k x this many embeddings "
                                          "(FAISS's cap), then assigns every image shard by shard.", ge=1)


def greedy_keep(vectors: np.ndarray, max_sim: float, block: int = 1024) -> np.ndarray:
    """Keep each vector (in the given order) unless its cosine to an already kept one exceeds max_sim.

    Written by hand because no library does order-dependent greedy pruning;
    blocks keep it to matrix products plus a short loop per block.
    """
    keep = np.zeros(len(vectors), dtype=bool)
    for start in range(0, len(vectors), block):
        chunk = vectors[start:start + block]
        kept_before = vectors[:start][keep[:start]]
        near_kept = (chunk @ kept_before.T).max(axis=1) > max_sim if len(kept_before) else np.zeros(len(chunk), bool)
        sims = chunk @ chunk.T
        local = np.zeros(len(chunk), dtype=bool)
        for j in range(len(chunk)):
            local[j] = not near_kept[j] and not (sims[j, :j][local[:j]] > max_sim).any()
        keep[start:start + len(chunk)] = local
    return keep


def semdedup_keep(vectors: np.ndarray, cluster: np.ndarray, dist: np.ndarray, eps: float) -> np.ndarray:
    keep = np.ones(len(vectors), dtype=bool)
    order = np.lexsort((np.arange(len(vectors)), -dist, cluster))  # by cluster, farthest first, ties by row
    bounds = np.flatnonzero(np.diff(cluster[order])) + 1
    for members in np.split(order, bounds):
        keep[members] = greedy_keep(vectors[members], 1.0 - eps)
    return keep


def load_reference(path: str, pool) -> np.ndarray:
    source = Path(path)
    if source.is_dir():
        return _embed_evalset(source, pool)
    array = load_user_npy(source, "reference embeddings (--reference-embeddings: a .npy file or an eval set folder)")
    array = array[:, 0] if array.ndim == 3 else array  # an embeddings/ file: take the image part
    if array.ndim != 2:
        raise UserError(f"{source}: reference embeddings must have shape (N, dim), not {array.shape}")
    return array.astype(np.float32)


def _embed_evalset(folder: Path, pool) -> np.ndarray:
    from tierclip.curate.evalset import read_evalset
    from tierclip.curate.stages.clip import ClipConfig, clip_config_of, encode
    from tierclip.curate.stages.embeddings import require

    source = require(pool)  # the eval set is embedded with the model that made the pool's embeddings
    model = clip_config_of(pool) if source.origin == "clip stage" else ClipConfig(model=source.model, pretrained=source.pretrained)
    evalset = read_evalset(folder)
    blobs = [evalset.image_path(f).read_bytes() for f in evalset.samples["file"].to_list()]
    image_emb, _ = encode(model, blobs, None)
    return image_emb[~np.isnan(image_emb).any(axis=1)]


def near_reference(centroids: np.ndarray, reference: np.ndarray, nearest: int) -> np.ndarray:
    """Ids of the clusters nearest (by cosine) to any reference embedding."""
    if reference.shape[1] != centroids.shape[1]:
        raise UserError(f"reference embeddings have dim {reference.shape[1]} but the pool's image embeddings have {centroids.shape[1]}")
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    top = np.argsort(-(reference @ centroids.T), axis=1, kind="stable")[:, :nearest]
    return np.unique(top)


SEMDEDUP_ROWS_PER_TASK = 100_000  # embeddings one semdedup task holds (~0.3 GB of 768-d float32; clusters grouped up to about this)


def _folder(pool) -> Path:
    from tierclip.curate.stages.base import global_dir

    return global_dir(pool, "cluster")


def assign_tasks(pool, cfg: ClusterConfig, joined: tuple[str, ...]) -> list[str]:
    """Train the centroids once (on a sample), then one assignment task per shard."""
    from tierclip.curate import atomic
    from tierclip.curate.stages.embeddings import require, train_centroids

    path = _folder(pool) / "centroids.npy"
    if not path.is_file():
        atomic.write_npy(path, train_centroids(pool, require(pool), cfg.k, cfg.niter, cfg.seed, cfg.max_points_per_centroid))
    return [f"{s:05d}" for s in pool.shard_ids()]


def assign_shard(pool, cfg: ClusterConfig, joined: tuple[str, ...], task: str) -> dict:
    from tierclip.curate import atomic
    from tierclip.curate.stages.embeddings import assign_shard as nearest
    from tierclip.curate.stages.embeddings import require

    centroids = np.load(_folder(pool) / "centroids.npy", allow_pickle=False)
    if len(centroids):
        sims, ids = nearest(pool, require(pool), int(task), centroids, 1)
    else:
        rows = pl.scan_parquet(pool.meta_path(int(task))).select(pl.len()).collect().item()
        sims, ids = np.full((rows, 1), np.nan, np.float32), np.full((rows, 1), -1, np.int64)
    atomic.write_npy(_folder(pool) / "assign_id" / f"{task}.npy", ids[:, 0].astype(np.int32))
    atomic.write_npy(_folder(pool) / "assign_dist" / f"{task}.npy", np.maximum(0.0, 1.0 - sims[:, 0]).astype(np.float32))
    return {"rows": len(ids), "with_embedding": int((ids[:, 0] >= 0).sum())}


def _assigned(pool, name: str) -> np.ndarray:
    return np.concatenate([np.load(_folder(pool) / name / f"{s:05d}.npy", allow_pickle=False) for s in pool.shard_ids()])


def semdedup_tasks(pool, cfg: ClusterConfig, joined: tuple[str, ...]) -> list[str]:
    groups = max(1, -(-pool.info.n_samples // SEMDEDUP_ROWS_PER_TASK))
    return [f"{g:03d}-{groups:03d}" for g in range(groups)]


def semdedup_group(pool, cfg: ClusterConfig, joined: tuple[str, ...], task: str) -> dict:
    """SemDeDup over the clusters c with c % groups == group; writes the global rows it drops."""
    from tierclip.curate import atomic
    from tierclip.curate.stages.base import shard_offsets
    from tierclip.curate.stages.embeddings import gather_rows, require

    group, groups = (int(x) for x in task.split("-"))
    cluster, dist = _assigned(pool, "assign_id"), _assigned(pool, "assign_dist")
    rows = np.flatnonzero((cluster >= 0) & (cluster % groups == group))
    if not len(rows):
        keep = np.ones(0, bool)
    else:
        keep = semdedup_keep(gather_rows(pool, require(pool), rows, shard_offsets(pool)),
                             cluster[rows], dist[rows], cfg.semdedup_eps)
    atomic.write_npy(_folder(pool) / "semdedup_dropped" / f"{task}.npy", rows[~keep].astype(np.int64))
    return {"rows": len(rows), "dropped": int((~keep).sum())}


def build(pool, cfg: ClusterConfig, joined: tuple[str, ...]) -> dict:
    from tierclip.curate.stages.embeddings import require

    source = require(pool)
    centroids = np.load(_folder(pool) / "centroids.npy", allow_pickle=False)
    cluster_id, cluster_dist = _assigned(pool, "assign_id"), _assigned(pool, "assign_dist")
    n, rows = len(cluster_id), np.flatnonzero(cluster_id >= 0)
    keep = np.ones(n, bool)
    for path in sorted((_folder(pool) / "semdedup_dropped").glob("*.npy")):
        keep[np.load(path, allow_pickle=False)] = False
    near_ref = np.full(n, -1 if cfg.reference is None else 0, np.int8)
    if cfg.reference is not None and len(rows):
        near_ref[rows] = np.isin(cluster_id[rows], near_reference(centroids, load_reference(cfg.reference, pool), cfg.ref_nearest))
    save_global(pool, "cluster", {"offsets": shard_offsets(pool), "cluster_id": cluster_id,
                                  "cluster_dist": cluster_dist, "semdedup_keep": keep, "cluster_near_ref": near_ref})
    return {"rows": n, "with_embedding": len(rows), "k": len(centroids), "embeddings": f"{source.tag} ({source.origin})",
            "semdedup_dropped": int((~keep).sum()), "near_ref_rows": int((near_ref == 1).sum())}


def compute(meta: pl.DataFrame, images: Iterator | None, cfg: ClusterConfig, ctx: ShardContext) -> pl.DataFrame:
    part = shard_slice(ctx, "cluster", ("cluster_id", "cluster_dist", "semdedup_keep", "cluster_near_ref"))
    return pl.DataFrame({"uid": meta["uid"], **part}).select(
        "uid",
        pl.when(pl.col("cluster_id") >= 0).then(pl.col("cluster_id")).cast(pl.Int32).alias("cluster_id"),
        pl.col("cluster_dist").fill_nan(None).cast(pl.Float32),
        pl.col("semdedup_keep").cast(pl.Boolean),
        pl.when(pl.col("cluster_near_ref") >= 0).then(pl.col("cluster_near_ref") == 1).alias("cluster_near_ref"),
    )


STAGE = Stage(name="cluster", produces=PRODUCES, compute=compute, config=ClusterConfig, needs=("uid", EMBEDDINGS),
              uses=("clip",), phases=(GlobalPhase("assign", assign_tasks, assign_shard),
                                      GlobalPhase("semdedup", semdedup_tasks, semdedup_group)), build=build,
              doc="FAISS k-means cluster id and cosine distance, SemDeDup keep flag, DataComp image-based filter flag")
