"""`cluster`: FAISS k-means on image embeddings, SemDeDup pruning and DataComp's image-based filter flag.

build (once, over the clip stage's image embeddings):
- spherical `faiss.Kmeans` (k clusters, fixed seed) on the L2-normalised
  image embeddings; `cluster_id` = nearest centroid, `cluster_dist` = cosine
  distance (1 - cos) to it; centroids saved as `_global/centroids.npy`.
- SemDeDup (Abbas et al. 2023): within each cluster, visit points from the
  farthest from the centroid to the nearest (SemDeDup's default order) and
  keep a point unless its cosine to an already kept point exceeds 1 - eps.
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

from curate.errors import UserError
from curate.npyio import load_user_npy
from curate.stages.base import EMBEDDINGS, ShardContext, Stage, save_global, shard_offsets, shard_slice

PRODUCES = {"cluster_id": pl.Int32, "cluster_dist": pl.Float32, "semdedup_keep": pl.Boolean, "cluster_near_ref": pl.Boolean}


@dataclass(frozen=True)
class ClusterConfig:
    k: int = 100
    niter: int = 20
    seed: int = 1234
    semdedup_eps: float = 0.05  # drop a point whose cosine to a kept point in its cluster exceeds 1 - eps
    reference: str | None = None  # .npy of reference image embeddings (N, dim), or an eval set folder
    ref_nearest: int = 1  # clusters each reference embedding selects

    def __post_init__(self):
        if self.k < 1 or self.niter < 1 or self.ref_nearest < 1 or not 0 <= self.semdedup_eps <= 2:
            raise UserError("cluster: need --clusters >= 1, --kmeans-iters >= 1, --ref-nearest >= 1 and 0 <= --semdedup-eps <= 2")


def kmeans(vectors: np.ndarray, cfg: ClusterConfig) -> tuple[np.ndarray, np.ndarray]:
    """(centroids, nearest centroid per vector) of spherical k-means; k is capped at the number of vectors."""
    import faiss

    k = min(cfg.k, len(vectors))
    model = faiss.Kmeans(vectors.shape[1], k, niter=cfg.niter, seed=cfg.seed, spherical=True,
                         min_points_per_centroid=1, verbose=False)
    model.train(vectors)
    _, nearest = model.index.search(vectors, 1)
    return model.centroids, nearest[:, 0]


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
    from curate.evalset import read_evalset
    from curate.stages.clip import ClipConfig, clip_config_of, encode
    from curate.stages.embeddings import require

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


def build(pool, cfg: ClusterConfig, joined: tuple[str, ...]) -> dict:
    from curate.stages.clip import load_image_embeddings

    embeddings = load_image_embeddings(pool)
    rows = np.flatnonzero(~np.isnan(embeddings).any(axis=1))
    n = len(embeddings)
    cluster_id, cluster_dist = np.full(n, -1, np.int32), np.full(n, np.nan, np.float32)
    keep, near_ref = np.ones(n, bool), np.full(n, -1 if cfg.reference is None else 0, np.int8)
    centroids = np.zeros((0, embeddings.shape[1]), np.float32)
    if len(rows):
        vectors = embeddings[rows] / np.linalg.norm(embeddings[rows], axis=1, keepdims=True)
        centroids, nearest = kmeans(np.ascontiguousarray(vectors, dtype=np.float32), cfg)
        dist = np.maximum(0.0, 1.0 - (vectors * centroids[nearest]).sum(axis=1)).astype(np.float32)
        cluster_id[rows], cluster_dist[rows] = nearest, dist
        keep[rows] = semdedup_keep(vectors, nearest, dist, cfg.semdedup_eps)
        if cfg.reference is not None:
            near_ref[rows] = np.isin(nearest, near_reference(centroids, load_reference(cfg.reference, pool), cfg.ref_nearest))
    save_global(pool, "cluster", {"offsets": shard_offsets(pool), "centroids": centroids, "cluster_id": cluster_id,
                                  "cluster_dist": cluster_dist, "semdedup_keep": keep, "cluster_near_ref": near_ref})
    return {"rows": n, "with_embedding": len(rows), "k": len(centroids), "semdedup_dropped": int((~keep).sum()),
            "near_ref_rows": int((near_ref == 1).sum())}


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
              uses=("clip",), build=build,
              doc="FAISS k-means cluster id and cosine distance, SemDeDup keep flag, DataComp image-based filter flag")
