"""The stage contract: what a scoring stage declares and the context it runs in.

A stage computes columns for one shard at a time and never drops rows:

    compute(meta, images, cfg, ctx) -> pl.DataFrame   # uid + the declared columns, same rows, same order

`meta` is the shard's meta frame with the sidecar columns of the stages it
needs or uses already attached (row-aligned, so attached side by side, not
joined). `images` is an iterator of image bytes (None for a row without an
image), in meta order, or None when the stage does not read images or the
pool has no image shards. `cfg` is the stage's frozen config dataclass and
`ctx` says which pool and shard this is (for side outputs such as embeddings
and for reading a global stage's structure).

Global stages (near-duplicates, clusters) add phases before `compute`:
`prepare` (per shard, e.g. MinHash signatures and LSH band keys; returns named
arrays that the runner saves as `scores/STAGE/_parts/NAME/00000.npy`, or polars
frames saved as `.parquet`), then any `phases` (each a list of independent
tasks, e.g. one LSH band partition, run by the engine like shards; a task
writes its own files under `_global/` and the runner records its stats in
`_global/_tasks/PHASE/TASK.json`, so a killed run redoes only unfinished
tasks), then `build` (once, the reduce step; writes `scores/STAGE/_global/*.npy`).
Their `compute` then slices the global per-row arrays for one shard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tierclip.curate.fields import NoOptions, option
from tierclip.curate.pool import Pool

__all__ = ["EMBEDDINGS", "IMAGES", "GlobalPhase", "NoOptions", "ShardContext", "Stage", "option"]  # option: for stage configs

IMAGES = "images"  # in `needs`: the stage cannot run without image shards; in `uses`: it reads them when present
EMBEDDINGS = "image_embeddings"  # in `needs`: the pool's image embeddings (clip stage, or imported; see stages/embeddings.py)


@dataclass(frozen=True)
class ShardContext:
    pool_root: Path
    shard: int
    joined: tuple[str, ...] = ()  # stages whose sidecar columns are attached to meta

    @property
    def pool(self) -> Pool:
        return Pool(self.pool_root, check_files=False)  # the run checked the pool once when it opened it


@dataclass(frozen=True)
class GlobalPhase:
    """A global step split into independent tasks that the engine runs (local processes or Ray), like shards."""

    name: str
    tasks: Callable[..., list[str]]  # (pool, cfg, joined) -> task names; deterministic (it may write shared inputs once)
    run: Callable[..., dict]  # (pool, cfg, joined, task) -> stats; writes the task's outputs under _global/


@dataclass(frozen=True)
class Stage:
    name: str
    produces: dict[str, Any]  # column name -> polars dtype
    compute: Callable[..., pl.DataFrame]
    config: type  # the frozen dataclass of its options
    needs: tuple[str, ...] = ()  # meta columns, IMAGES, or names of stages that must be complete
    uses: tuple[str, ...] = ()  # IMAGES or stages whose columns are attached when they are complete
    prepare: Callable[..., dict[str, np.ndarray]] | None = None
    phases: tuple[GlobalPhase, ...] = ()  # between prepare and build
    build: Callable[..., dict] | None = None  # (pool, cfg, joined) -> stats dict
    max_workers: int | None = None  # e.g. 1 for a stage that holds one big model and its own loader workers
    doc: str = ""
    scores: tuple[str, ...] = ()  # produced columns that are scores (listed by inspect and the report)
    # (pool, cfg) -> folders the stage writes besides scores/STAGE (clip: its embeddings); `--force` sets them
    # aside with the sidecars and puts them back unless the new run completes.
    side_outputs: Callable[..., list[Path]] | None = None

    @property
    def prefix(self) -> str:
        """`curate score`'s options of this stage are `--PREFIX-FIELD` (docs/cli.md, the naming rule)."""
        return self.name.replace("_", "-")

    @property
    def stage_deps(self) -> tuple[str, ...]:
        return tuple(n for n in self.needs if n not in (IMAGES, EMBEDDINGS) and not _is_meta_column(n))

    @property
    def reads_images(self) -> bool:
        return IMAGES in self.needs or IMAGES in self.uses


def _is_meta_column(name: str) -> bool:
    from tierclip.curate.pool import META_COLUMNS

    return name in META_COLUMNS or name.startswith("gt_")


def global_dir(pool: Pool, stage: str) -> Path:
    return pool.stage_files(stage).global_dir


def parts_path(pool: Pool, stage: str, name: str, shard: int) -> Path:
    return pool.stage_files(stage).parts(name, shard)


def phase_stats(pool: Pool, stage: str, phase: str) -> list[dict]:
    """The stats every task of a phase returned, in task-name order."""
    import json

    folder = pool.stage_files(stage).tasks_dir(phase)
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


class ShardArrays:
    """Rows of a per-shard prepared array picked by global row index, read row by row with `os.pread`.

    Not a memory map: kernel read-ahead around random accesses pulls most of
    each file in, and mapped pages count as the process's memory (text_dedup's
    verification showed the whole pool's signatures as RSS).
    """

    def __init__(self, pool: Pool, stage: str, name: str, offsets: np.ndarray | None = None):
        self.offsets = shard_offsets(pool) if offsets is None else offsets
        self.paths = [parts_path(pool, stage, name, s) for s in pool.shard_ids()]
        header = np.load(self.paths[0], mmap_mode="r", allow_pickle=False)
        self.row_shape, self.dtype = header.shape[1:], header.dtype
        self.row_bytes = int(np.prod(self.row_shape)) * self.dtype.itemsize

    def take(self, rows: np.ndarray) -> np.ndarray:
        import os

        out = np.empty((len(rows), *self.row_shape), dtype=self.dtype)
        shard = np.searchsorted(self.offsets, rows, side="right") - 1
        for s in np.unique(shard):
            mine = np.flatnonzero(shard == s)
            wanted, inverse = np.unique(rows[mine] - self.offsets[s], return_inverse=True)
            data_offset = np.load(self.paths[s], mmap_mode="r", allow_pickle=False).offset
            with open(self.paths[s], "rb") as handle:
                fd = handle.fileno()
                raw = b"".join(os.pread(fd, self.row_bytes, data_offset + int(r) * self.row_bytes) for r in wanted)
            out[mine] = np.frombuffer(raw, dtype=self.dtype).reshape(len(wanted), *self.row_shape)[inverse]
        return out


def load_parts(pool: Pool, stage: str, name: str) -> list[np.ndarray]:
    """One prepared array per shard, in shard order."""
    return [np.load(parts_path(pool, stage, name, s), allow_pickle=False) for s in pool.shard_ids()]


def shard_offsets(pool: Pool) -> np.ndarray:
    """Global row index where each shard starts (n_shards + 1 entries)."""
    heights = [pl.scan_parquet(pool.meta_path(s)).select(pl.len()).collect().item() for s in pool.shard_ids()]
    return np.concatenate([[0], np.cumsum(heights)]).astype(np.int64)


def save_global(pool: Pool, stage: str, arrays: dict[str, np.ndarray]) -> None:
    from tierclip.curate import atomic

    for name, array in arrays.items():
        atomic.write_npy(global_dir(pool, stage) / f"{name}.npy", array)


def shard_slice(ctx: ShardContext, stage: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Rows of this shard from the global per-row arrays (memory-mapped, so a worker reads only its slice)."""
    folder = global_dir(ctx.pool, stage)
    offsets = np.load(folder / "offsets.npy", allow_pickle=False)
    start, stop = int(offsets[ctx.shard]), int(offsets[ctx.shard + 1])
    return {n: np.array(np.load(folder / f"{n}.npy", mmap_mode="r", allow_pickle=False)[start:stop]) for n in names}


def images_required(images: Iterator | None, ctx: ShardContext, stage: str) -> Iterator:
    from tierclip.curate.errors import UserError

    if images is None:
        raise UserError(f"{ctx.pool_root}: shard {ctx.shard} has no image tar; the '{stage}' stage needs images")
    return images
