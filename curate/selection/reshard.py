"""`curate reshard`: write a subset as its own pool of WebDataset shards.

The output is a pool (validated by `curate validate`): tars with the same
member layout as the source (written by `curate.pool.write_shard`, so
bytes are deterministic), meta rows in source order with `shard` renumbered,
the complete sidecars and embeddings cut to the same rows, `pool.json` last,
and a copy of the subset's manifest as `subset_manifest.json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from tierclip.curate import atomic
from tierclip.curate.errors import UserError
from tierclip.curate.pool import Pool, PoolInfo, Sample, check_not_pool_files, write_meta, write_pool_info, write_shard
from tierclip.curate.subset import check_subset_pool, read_subset


@dataclass(frozen=True)
class ReshardConfig:
    shard_size: int = 10_000
    name: str | None = None

    def __post_init__(self):
        if self.shard_size < 1:
            raise UserError(f"--shard-size: need a positive number of samples, got {self.shard_size}")


@dataclass
class _Buffer:
    """Selected rows waiting to be written: meta, samples (None for metadata-only), sidecars, embeddings."""

    meta: list[pl.DataFrame]
    samples: list[Sample | None]
    scores: dict[str, list[pl.DataFrame]]
    embeddings: dict[str, list[np.ndarray]]

    @property
    def rows(self) -> int:
        return sum(frame.height for frame in self.meta)


def _complete_embeddings(pool: Pool) -> list[str]:
    root = pool.root / "embeddings"
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir()
                  if d.is_dir() and all(pool.embeddings_path(d.name, s).is_file() for s in pool.shard_ids()))


def reshard(subset_path: str | Path, pool: Pool, out: str | Path, config: ReshardConfig) -> Pool:
    from tierclip.curate.progress import progress

    out = Path(out)
    if (out / "pool.json").exists():
        raise UserError(f"{out}: already holds a pool; choose another --out or remove it")
    check_not_pool_files(out)
    subset = read_subset(subset_path)
    if subset.n == 0:
        raise UserError(f"{subset.path / 'uids.parquet'}: empty subset (0 uids); nothing to reshard")
    check_subset_pool(subset, pool)
    wanted = subset.uids["uid"]
    stages, models = pool.stages(), _complete_embeddings(pool)
    buffer = _Buffer([], [], {s: [] for s in stages}, {m: [] for m in models})
    written = found = 0
    for shard in progress(pool.shard_ids(), desc="reshard", unit="shard"):
        found += _take_shard(pool, shard, wanted, buffer)
        while buffer.rows >= config.shard_size:
            _flush(out, written, buffer, config.shard_size)
            written += 1
    if buffer.rows:
        _flush(out, written, buffer, buffer.rows)
        written += 1
    if found != subset.n:
        raise UserError(f"{subset.path}: {subset.n - found} of {subset.n} uids are not in pool {pool.name} ({pool.root})")
    atomic.write_json(out / "subset_manifest.json", subset.manifest)
    for model in models:  # imported embeddings keep their model record (curate.stages.embeddings)
        record = pool.root / "embeddings" / model / "embeddings.json"
        if record.is_file() and written:
            atomic.write_bytes(out / "embeddings" / model / record.name, record.read_bytes())
    name = config.name or f"{pool.name}-{subset.name}"
    write_pool_info(out, PoolInfo(name, f"reshard of subset {subset.path} of pool {pool.root}",
                                  datetime.now(UTC).isoformat(timespec="seconds"), found, written))
    return Pool(out)


def _take_shard(pool: Pool, shard: int, wanted: pl.Series, buffer: _Buffer) -> int:
    meta = pool.meta(shard).with_row_index("_row")
    chosen = meta.filter(pl.col("uid").is_in(wanted.implode()))
    if chosen.height == 0:
        return 0
    rows = chosen["_row"].to_numpy()
    buffer.meta.append(chosen.drop("_row"))
    if pool.tar_path(shard).is_file():
        keys = set(chosen["key"].to_list())
        buffer.samples.extend(s for s in pool.samples(shard) if s.key in keys)
    else:
        buffer.samples.extend([None] * chosen.height)
    for stage in buffer.scores:
        buffer.scores[stage].append(pool.read_scores(stage, shard)[rows])
    for model in buffer.embeddings:
        buffer.embeddings[model].append(np.load(pool.embeddings_path(model, shard), mmap_mode="r")[rows])
    return chosen.height


def _unfinished_pool(root: Path) -> Pool:
    """The output pool's paths and sidecar writer before its pool.json exists (pool.json is written last)."""
    target = Pool.__new__(Pool)
    target.root = root
    return target


def _flush(out: Path, shard: int, buffer: _Buffer, n: int) -> None:
    """Write the first n buffered rows as output shard `shard` and keep the rest."""
    meta = pl.concat(buffer.meta)
    head, rest = meta.head(n).with_columns(pl.lit(shard, dtype=pl.Int32).alias("shard")), meta.slice(n)
    buffer.meta[:] = [rest] if rest.height else []
    samples, buffer.samples[:] = buffer.samples[:n], buffer.samples[n:]
    if all(s is not None for s in samples):
        write_shard(out, shard, samples, head)
    elif any(s is not None for s in samples):
        raise UserError(f"{out}: source pool mixes shards with and without images; cannot reshard")
    else:
        write_meta(out, shard, head)
    target = _unfinished_pool(out)
    for stage, frames in buffer.scores.items():
        frame = pl.concat(frames)
        frames[:] = [frame.slice(n)] if frame.height > n else []
        target.write_scores(stage, shard, frame.head(n))
    for model, arrays in buffer.embeddings.items():
        array = np.concatenate(arrays)
        arrays[:] = [array[n:]] if len(array) > n else []
        atomic.write_npy(target.embeddings_path(model, shard), np.ascontiguousarray(array[:n]))
