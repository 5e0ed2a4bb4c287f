"""Metadata-only pools with hand-written sidecars, for the selection tests (no images, no stages run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from tierclip.curate.pool import OK, Pool, PoolInfo, meta_frame, write_meta, write_pool_info


def uid_of(i: int) -> str:
    return f"{i * 2654435761 % (1 << 64):016x}{i:016x}"


def meta_pool(root: str | Path, rows: list[dict], n_shards: int = 2, name: str = "metapool") -> Pool:
    """Write rows (dicts; uid, key, shard, status filled in when absent) as a pool of n_shards meta files."""
    root = Path(root)
    extra = {c: (pl.Boolean if isinstance(v, bool) else pl.Utf8) for row in rows for c, v in row.items() if c not in META_DEFAULTS}
    per_shard = -(-len(rows) // n_shards)
    for shard in range(n_shards):
        chunk = rows[shard * per_shard: (shard + 1) * per_shard]
        full = [{**META_DEFAULTS, "uid": uid_of(shard * per_shard + i), "key": f"{shard:05d}{i:04d}", "shard": shard, **row}
                for i, row in enumerate(chunk)]
        write_meta(root, shard, meta_frame(full, extra))
    write_pool_info(root, PoolInfo(name, "test", "2026-01-01T00:00:00+00:00", len(rows), n_shards))
    return Pool(root)


META_DEFAULTS = {"uid": None, "key": None, "shard": None, "caption": "a photo of a dog", "url": None,
                 "width": 256, "height": 256, "status": OK, "error": None}


def add_sidecar(pool: Pool, stage: str, columns: dict[str, list], dtypes: dict | None = None) -> None:
    """Write a stage's sidecar: the given columns (one value per pool row, in pool order) beside uid."""
    start = 0
    for shard in pool.shard_ids():
        uids = pool.meta(shard)["uid"]
        frame = pl.DataFrame({"uid": uids, **{c: values[start: start + len(uids)] for c, values in columns.items()}},
                             schema_overrides=dtypes or {})
        pool.write_scores(stage, shard, frame)
        start += len(uids)


def all_uids(pool: Pool) -> list[str]:
    return pool.scan_meta().select("uid").collect()["uid"].to_list()


def datacomp_pool(root: str | Path, n: int = 1000, seed: int = 0, decimals: int = 2) -> tuple[Pool, np.ndarray]:
    """A DataComp-style metadata-only pool: `datacomp` sidecar with rounded (tied) float32 scores."""
    rng = np.random.default_rng(seed)
    pool = meta_pool(root, [{} for _ in range(n)], n_shards=3, name="dcpool")
    b32 = np.round(rng.normal(0.3, 0.05, n), decimals).astype(np.float32)
    l14 = np.round(rng.normal(0.25, 0.05, n), decimals).astype(np.float32)
    add_sidecar(pool, "datacomp", {"clip_b32_similarity_score": b32, "clip_l14_similarity_score": l14})
    return pool, l14
