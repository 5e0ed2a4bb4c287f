"""The pool's image embeddings: the clip stage's, or ones imported at ingest (DataComp's `.npz` features).

Both live in the pool format's `embeddings/MODEL_TAG/NNNNN.npy` (float16,
shape (rows, 2, dim): [:, 0] image, [:, 1] text, L2-normalised; NaN rows where
there is no embedding). Imported embeddings carry a record,
`embeddings/MODEL_TAG/embeddings.json` (model, pretrained, source, keys), so the
stages that need image embeddings (image_dedup's near-duplicates, cluster,
SemDeDup, DataComp's image-based filter) run on a metadata-only pool.

Which one a stage uses: the clip stage's when the clip stage is complete
(the user computed it on purpose), else the imported one, else none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tierclip.curate.errors import UserError

RECORD = "embeddings.json"


@dataclass(frozen=True)
class EmbeddingSource:
    tag: str  # folder under embeddings/
    model: str  # open_clip model name
    pretrained: str  # open_clip pretrained tag or checkpoint path
    origin: str  # "clip stage" or e.g. "datacomp l14_img"


def imported(pool) -> EmbeddingSource | None:
    """The embeddings imported at ingest (the first folder, by name, with a record and every shard present)."""
    root = pool.root / "embeddings"
    if not root.is_dir():
        return None
    for folder in sorted(root.iterdir()):
        if folder.name.startswith("."):  # set aside by a `--force` run (curate.scoring.runner)
            continue
        record = folder / RECORD
        if record.is_file() and all(pool.embeddings_path(folder.name, s).is_file() for s in pool.shard_ids()):
            info = json.loads(record.read_text())
            return EmbeddingSource(folder.name, info["model"], info["pretrained"], f"{info['source']} {info['image_key']}")
    return None


def pool_embeddings(pool) -> EmbeddingSource | None:
    """The image embeddings stages use: the complete clip stage's, else the imported ones, else None."""
    if "clip" in pool.stages():
        from tierclip.curate.stages.clip import clip_config_of, embeddings_tag

        cfg = clip_config_of(pool)
        return EmbeddingSource(embeddings_tag(cfg), cfg.model, cfg.pretrained, "clip stage")
    return imported(pool)


def require(pool) -> EmbeddingSource:
    source = pool_embeddings(pool)
    if source is None:
        raise UserError(f"{pool.root}: no image embeddings; run `curate score {pool.root} --stages clip` "
                        "or ingest DataComp's .npz features with `curate ingest datacomp`")
    return source


BLOCK_ROWS = 16_384  # rows read at once (~50 MB of 768-d float16 image + text)


def iter_blocks(pool, source: EmbeddingSource, shard: int, block: int = BLOCK_ROWS):
    """(first row, float32 image embeddings) of one shard, block by block, with plain reads.

    Not a memory map: pages a map touches count as the process's memory until
    it is unmapped, and kernel read-ahead around random accesses pulls in most
    of the file, so a map of a 3 GB embeddings pool showed as 3.7 GB of RSS.
    """
    path = pool.embeddings_path(source.tag, shard)
    header = np.load(path, mmap_mode="r", allow_pickle=False)  # shape, dtype and data offset only
    rows, width, dtype, offset = header.shape[0], header.shape[1:], header.dtype, header.offset
    del header
    row_items = int(np.prod(width))
    with open(path, "rb") as handle:
        for start in range(0, rows, block):
            count = min(block, rows - start)
            handle.seek(offset + start * row_items * dtype.itemsize)
            raw = np.fromfile(handle, dtype=dtype, count=count * row_items).reshape(count, *width)
            yield start, raw[:, 0].astype(np.float32)


def shard_image_embeddings(pool, source: EmbeddingSource, shard: int) -> np.ndarray:
    """One shard's image embeddings as float32 (NaN rows = no embedding)."""
    parts = [block for _, block in iter_blocks(pool, source, shard)]
    return np.concatenate(parts) if parts else np.zeros((0, embedding_dim(pool, source)), np.float32)


def iter_image_embeddings(pool, source: EmbeddingSource):
    """(shard, float32 image embeddings) shard by shard, so no caller needs the whole pool's embeddings at once."""
    for shard in pool.shard_ids():
        yield shard, shard_image_embeddings(pool, source, shard)


def embedding_dim(pool, source: EmbeddingSource) -> int:
    return int(np.load(pool.embeddings_path(source.tag, 0), mmap_mode="r", allow_pickle=False).shape[2])


def write_record(folder: Path, info: dict) -> None:
    from tierclip.curate import atomic

    atomic.write_json(folder / RECORD, info)


# -- streaming helpers for the stages that partition embeddings (cluster, image_dedup at scale) --------------
SPARSE_SHARE = 0.1  # below this share of a shard's rows, gather reads only the wanted rows (one pread each)


def gather_rows(pool, source: EmbeddingSource, rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """L2-normalised float32 image embeddings of the given global rows (in the given order).

    Per shard, a few wanted rows are read one by one (a task of a partitioned phase, SemDeDup's cluster
    group or a list group, wants a thin slice of every shard: reading whole shards would make each task
    read the whole pool); many are read block by block.
    """
    from tierclip.curate.stages.base import pread_rows

    dim = embedding_dim(pool, source)
    out = np.empty((len(rows), dim), dtype=np.float32)
    order = np.argsort(rows, kind="stable")
    wanted = rows[order]
    for shard in pool.shard_ids():
        lo, hi = np.searchsorted(wanted, [offsets[shard], offsets[shard + 1]])
        if lo == hi:
            continue
        local = wanted[lo:hi] - offsets[shard]
        if len(local) < SPARSE_SHARE * (offsets[shard + 1] - offsets[shard]):
            out[order[lo:hi]] = pread_rows(pool.embeddings_path(source.tag, shard), local)[:, 0]
            continue
        for start, block in iter_blocks(pool, source, shard):
            a, b = np.searchsorted(local, [start, start + len(block)])
            out[order[lo + a:lo + b]] = block[local[a:b] - start]
    return normalised(out)


def valid_rows(pool, source: EmbeddingSource, offsets: np.ndarray) -> np.ndarray:
    """Global rows that have an image embedding (no NaN), block by block."""
    found = [np.flatnonzero(~np.isnan(block).any(axis=1)) + offsets[s] + start
             for s in pool.shard_ids() for start, block in iter_blocks(pool, source, s)]
    return np.concatenate(found) if found else np.zeros(0, np.int64)


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Unit rows (undoes float16 rounding of the stored unit vectors); NaN rows stay NaN."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.ascontiguousarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


def train_centroids(pool, source: EmbeddingSource, k: int, niter: int, seed: int, max_points_per_centroid: int = 256) -> np.ndarray:
    """Spherical faiss k-means trained on a sample of at most k x max_points_per_centroid embeddings (FAISS's own cap),
    read block by block from the shards: the whole pool's embeddings are never in memory at once."""
    from tierclip.curate.stages.base import shard_offsets

    offsets = shard_offsets(pool)
    rows = valid_rows(pool, source, offsets)
    if not len(rows):
        return np.zeros((0, embedding_dim(pool, source)), np.float32)
    k = min(k, len(rows))
    sample_size = min(len(rows), k * max_points_per_centroid)
    sample = np.sort(np.random.default_rng(seed).choice(rows, size=sample_size, replace=False))
    return fit_kmeans(gather_rows(pool, source, sample, offsets), k, niter, seed, max_points_per_centroid)


def fit_kmeans(vectors: np.ndarray, k: int, niter: int, seed: int, max_points_per_centroid: int = 256) -> np.ndarray:
    """Centroids of spherical faiss k-means over unit vectors (k capped at their number)."""
    import faiss

    model = faiss.Kmeans(vectors.shape[1], min(k, len(vectors)), niter=niter, seed=seed, spherical=True, min_points_per_centroid=1,
                         max_points_per_centroid=max_points_per_centroid, verbose=False, gpu=use_gpu())
    model.train(vectors)
    return model.centroids


def use_gpu() -> bool:
    """True with faiss-gpu and a CUDA device: k-means and centroid search then run on the GPUs.

    Not exercised here (faiss-cpu, no GPU on the development box); results may differ from the CPU's in
    the last float bits, so compare runs on the same kind of machine.
    """
    import faiss

    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def nearest_centroids(vectors: np.ndarray, centroids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(cosine, centroid id) of each unit vector's n nearest centroids; NaN rows get id -1."""
    import faiss

    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    if use_gpu():
        index = faiss.index_cpu_to_all_gpus(index)
    sims, ids = np.full((len(vectors), n), np.nan, np.float32), np.full((len(vectors), n), -1, np.int64)
    ok = ~np.isnan(vectors).any(axis=1)
    if ok.any():
        sims[ok], ids[ok] = index.search(np.ascontiguousarray(vectors[ok]), n)
    return sims, ids


def assign_shard(pool, source: EmbeddingSource, shard: int, centroids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(cosine, centroid id) of the n nearest centroids of every image of one shard, block by block."""
    found = [nearest_centroids(normalised(block), centroids, n) for _, block in iter_blocks(pool, source, shard)]
    if not found:
        return np.zeros((0, n), np.float32), np.zeros((0, n), np.int64)
    return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])


def load_image_embeddings(pool, shard: int | None = None) -> np.ndarray:
    """The pool's L2-normalised image embeddings as float32 (one shard, or all in pool order); NaN rows = no image.

    The clip stage's when it is complete, else the ones imported at ingest.
    """
    source = require(pool)
    shards = pool.shard_ids() if shard is None else [shard]
    return np.concatenate([shard_image_embeddings(pool, source, s) for s in shards])
