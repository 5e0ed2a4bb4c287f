"""Training data: the subset's samples, read from the pool's WebDataset shards by position.

How it works
- `build_index` joins each shard's meta with the subset's uids (status
  `success` only) and finds each wanted sample's image and caption members in
  the shard tar (`tarfile` headers only): a table of (tar, offset, size).
  A resharded subset is itself a pool, so it is read the same way.
- The training stream is a sequence of *positions* 0, 1, 2, ... Position p is
  sample `perm_e[p mod n]` of epoch `e = p div n`, where `perm_e` is a
  permutation of the n usable samples seeded by (seed, e). Running past the
  subset resamples it epoch after epoch; the number of epochs (repetitions) is
  samples_seen / n, reported in results.json.
- Optimizer step s consumes positions [s*B, (s+1)*B) of the global batch B,
  split into accumulation micro-batches and, under DDP, into equal rank slices.
  Each sample's random views are seeded by (seed, position), so a batch is a
  pure function of its positions: independent of worker count, of the number
  of processes, and of resuming (the data position is just the step).
- A sample that fails to decode (or has no caption) is counted and replaced by
  the next sample of the same epoch, so batches keep their shape (DDP needs
  equal shapes for all_gather) and training never crashes on bad bytes.

Why not webdataset's streaming pipeline: its shard shuffle plus shuffle buffer
gives neither a uniform permutation of exactly the subset's uids nor an exact
data position to resume from without re-reading the stream; random access
into the same WebDataset tars gives both, and shards stay the standard format.
"""

from __future__ import annotations

import dataclasses
import os
import random
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from tierclip.curate.errors import UserError
from tierclip.curate.pool import IMAGE_EXTS, OK, Pool, split_member_name

MAX_REPLACEMENTS = 64
DETERMINISTIC_VIEWS = ("image", "text")  # the eval-style preprocess and the tokenizer


def is_text_view(name: str) -> bool:
    """Loader views named text* (`text`, `text_eda`, `text_mlm`) are made from the caption, the others from the image."""
    return name.startswith("text")


@dataclass(frozen=True)
class SampleIndex:
    """Where each usable sample's bytes live: parallel arrays, one row per sample."""

    tar_paths: tuple[str, ...]
    uids: np.ndarray          # str
    tar_id: np.ndarray        # int32, index into tar_paths
    image_offset: np.ndarray  # int64
    image_size: np.ndarray    # int64
    text_offset: np.ndarray   # int64, -1 = no caption member
    text_size: np.ndarray     # int64
    counts: dict              # subset, in_pool, not_success, missing_in_shard, usable
    decode: object = None     # curate.images.DecodeOptions of the pool (None = the defaults)
    damaged: tuple[str, ...] = ()  # one line per shard whose tar lacks usable samples its meta lists (cut short, damaged)

    @property
    def n(self) -> int:
        return len(self.uids)


def build_index(pool: Pool, subset_uids: pl.Series | None) -> SampleIndex:
    """Index the pool's usable samples (all of them, or those whose uid is in `subset_uids`)."""
    wanted = None if subset_uids is None else pl.DataFrame({"uid": subset_uids})
    tables, damaged, counts = [], [], {"subset": None if subset_uids is None else len(subset_uids), "in_pool": 0,
                          "not_success": 0, "missing_in_shard": 0}
    for shard in pool.shard_ids():
        meta = pool.meta(shard).select("uid", "key", "status")
        if wanted is not None:
            meta = meta.join(wanted, on="uid", how="semi")
        counts["in_pool"] += meta.height
        usable = meta.filter(pl.col("status") == OK)
        counts["not_success"] += meta.height - usable.height
        if usable.height:
            table, problem = _locate_members(pool.tar_path(shard), dict(zip(usable["key"], usable["uid"], strict=True)))
            counts["missing_in_shard"] += usable.height - len(table)
            tables.append((str(pool.tar_path(shard)), table))
            if usable.height > len(table):
                damaged.append(f"{pool.tar_path(shard)}: {usable.height - len(table)} of its {usable.height} usable samples "
                               f"are not in the tar ({problem or 'their members are missing'})")
    index = dataclasses.replace(_assemble(tables, counts), decode=pool.decode_options, damaged=tuple(damaged))
    if index.n == 0:
        raise UserError(f"{pool.root}: no usable samples to train on ({_describe(counts)})")
    return index


def _describe(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v is not None)


def _locate_members(tar_path: Path, key_to_uid: dict[str, str]) -> tuple[list[tuple], str | None]:
    """(uid, image offset, image size, text offset, text size) for each wanted key present with an image, and what
    broke the tar (None when it read to its end)."""
    if not tar_path.is_file():
        raise UserError(f"{tar_path}: missing shard (its meta lists usable samples)")
    found: dict[str, dict] = {}
    problem, end = None, tar_path.stat().st_size
    try:
        with tarfile.open(tar_path, "r") as tar:
            for member in tar:
                key, ext = split_member_name(member.name)
                if member.offset_data + member.size > end:
                    raise tarfile.ReadError(f"member {member.name} is cut mid-way")
                if member.isfile() and key in key_to_uid:
                    found.setdefault(key, {})[ext] = (member.offset_data, member.size)
    except (tarfile.TarError, EOFError) as exc:  # a truncated shard: keep what was read before the damage
        problem = f"the tar breaks after {len(found)} of them: {exc}"
    rows = []
    for key, parts in found.items():
        image = next((parts[e] for e in IMAGE_EXTS if e in parts), None)
        if image is not None:
            text = parts.get("txt", (-1, 0))
            rows.append((key_to_uid[key], *image, *text))
    return rows, problem


def _assemble(tables: list[tuple[str, list[tuple]]], counts: dict) -> SampleIndex:
    paths, tar_ids, rows = [], [], []
    for tar_id, (path, table) in enumerate(tables):
        paths.append(path)
        tar_ids.extend([tar_id] * len(table))
        rows.extend(table)
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 5
    counts = {**counts, "usable": len(rows)}
    return SampleIndex(tuple(paths), np.array(columns[0], dtype=object), np.array(tar_ids, dtype=np.int32),
                       *(np.array(c, dtype=np.int64) for c in columns[1:]), counts=counts)


class PositionDataset:
    """Map-style dataset over stream positions (see the module docstring); item = dict of view tensors.

    Deterministic views (`image`, the eval-style preprocess, and `text`) are cached per sample in each
    loader process, up to `cache_bytes`: with repetitions (several epochs over a small subset) a sample
    is decoded once. Random views (augmentations) are recomputed every time, seeded by position.
    """

    def __init__(self, index: SampleIndex, views: dict[str, Callable], tokenizer, seed: int, cache_bytes: int = 2**30):
        self.index, self.views, self.tokenizer, self.seed = index, views, tokenizer, seed
        self.random_views = [name for name in views if name not in DETERMINISTIC_VIEWS]
        self.cache_bytes = cache_bytes
        self._cache: dict[int, dict] = {}
        self._cache_limit: int | None = None
        self._perm_epoch, self._perm = -1, None
        self._fds: dict[int, int] = {}
        self._pid = None

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.index.n)
            self._perm_epoch = epoch
        return self._perm

    def __getitem__(self, position: int) -> dict:
        epoch, offset = divmod(int(position), self.index.n)
        perm = self.permutation(epoch)
        for tries in range(min(MAX_REPLACEMENTS, self.index.n)):
            item = self._item(int(perm[(offset + tries) % self.index.n]), position)
            if item is not None:
                return item | {"n_corrupt": tries}
        raise UserError(f"{self.index.tar_paths[0]}: {MAX_REPLACEMENTS} unreadable samples in a row; check the pool")

    def _item(self, row: int, position: int) -> dict | None:
        cached = self._cache.get(row)
        if cached is not None and not self.random_views:
            return dict(cached)
        sample = self._load(row)
        if sample is None:
            return None
        image, caption = sample
        fixed = cached or self._fixed_views(row, image, caption)
        if not self.random_views:
            return dict(fixed)
        with _seeded(self.seed, position):  # text views (EDA, MLM masking; train/text_views.py) take the caption
            return fixed | {name: self.views[name](caption if is_text_view(name) else image) for name in self.random_views}

    def _fixed_views(self, row: int, image, caption: str) -> dict:
        fixed = {"text": self.tokenizer([caption])[0]}
        fixed |= {name: fn(image) for name, fn in self.views.items() if name in DETERMINISTIC_VIEWS}
        if self._cache_limit is None:
            item_bytes = sum(t.numel() * t.element_size() for t in fixed.values())
            self._cache_limit = self.cache_bytes // max(1, item_bytes)
        if len(self._cache) < self._cache_limit:
            self._cache[row] = fixed
        return fixed

    def _load(self, row: int):
        """(PIL image, caption) of one indexed sample, or None when its bytes do not decode."""
        from tierclip.curate.images import DecodeOptions, ImageDecodeError, decode_image

        index = self.index
        fd = self._fd(int(index.tar_id[row]))
        data = os.pread(fd, int(index.image_size[row]), int(index.image_offset[row]))
        try:
            image = decode_image(data, index.decode or DecodeOptions())
        except ImageDecodeError:
            return None
        if index.text_offset[row] < 0:
            return None
        caption = os.pread(fd, int(index.text_size[row]), int(index.text_offset[row])).decode("utf-8", errors="replace")
        return image, caption

    def _fd(self, tar_id: int) -> int:
        if self._pid != os.getpid():  # a forked worker opens its own descriptors
            self._fds, self._pid = {}, os.getpid()
        if tar_id not in self._fds:
            self._fds[tar_id] = os.open(self.index.tar_paths[tar_id], os.O_RDONLY)
        return self._fds[tar_id]


class _seeded:
    """Seed python, numpy and torch (CPU) RNGs from (seed, position) for one sample's random views, then restore them.

    `torch.default_generator` directly: `torch.manual_seed` also queues CUDA/XPU seeding and costs milliseconds.
    """

    def __init__(self, seed: int, position: int):
        self.value = int(np.random.default_rng([seed, position, 7]).integers(2**31))

    def __enter__(self):
        import torch

        self.saved = (random.getstate(), np.random.get_state(), torch.default_generator.get_state())
        random.seed(self.value)
        np.random.seed(self.value)
        torch.default_generator.manual_seed(self.value)

    def __exit__(self, *exc):
        import torch

        random.setstate(self.saved[0])
        np.random.set_state(self.saved[1])
        torch.default_generator.set_state(self.saved[2])


@dataclass(frozen=True)
class StreamPlan:
    """Which positions each optimizer step, accumulation step and rank reads."""

    global_batch: int
    accum_steps: int = 1
    rank: int = 0
    world_size: int = 1

    def __post_init__(self):
        parts = self.accum_steps * self.world_size
        if self.global_batch % parts:
            raise UserError(f"--batch-size {self.global_batch}: must divide evenly into {self.accum_steps} accumulation "
                            f"steps x {self.world_size} processes")

    @property
    def micro_batch(self) -> int:
        return self.global_batch // (self.accum_steps * self.world_size)

    def positions(self, step: int, accum: int) -> list[int]:
        start = step * self.global_batch + accum * (self.global_batch // self.accum_steps) + self.rank * self.micro_batch
        return list(range(start, start + self.micro_batch))


class StepBatches:
    """Batch sampler: this rank's micro-batches of positions for steps [start_step, end_step)."""

    def __init__(self, plan: StreamPlan, start_step: int, end_step: int):
        self.plan, self.start_step, self.end_step = plan, start_step, end_step

    def __iter__(self):
        for step in range(self.start_step, self.end_step):
            for accum in range(self.plan.accum_steps):
                yield self.plan.positions(step, accum)

    def __len__(self) -> int:
        return (self.end_step - self.start_step) * self.plan.accum_steps


def make_loader(dataset: PositionDataset, plan: StreamPlan, start_step: int, end_step: int, workers: int,
                seed: int, pin_memory: bool = False):
    """A DataLoader yielding this rank's micro-batches in step order (dicts of stacked tensors)."""
    import torch
    from tierclip.curate.procs import loader_worker_init
    from torch.utils.data import DataLoader

    return DataLoader(
        dataset, batch_sampler=StepBatches(plan, start_step, end_step), num_workers=workers,
        worker_init_fn=loader_worker_init,  # workers die with the training process (curate/procs.py)
        prefetch_factor=4 if workers else None, pin_memory=pin_memory,
        # Worker seeds come from this generator, never from the global RNG, so creating the loader
        # does not shift the training RNG stream (exact resume).
        generator=torch.Generator().manual_seed(seed),
    )


def repetitions(samples_seen: int, usable: int) -> float:
    """Epochs over the subset: how many times each sample was seen on average."""
    return samples_seen / usable


def unique_seen(samples_seen: int, usable: int) -> int:
    """Distinct samples met: a full first epoch covers them all (replacements of corrupt ones aside)."""
    return min(samples_seen, usable)
