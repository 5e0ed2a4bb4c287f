"""Write a synthetic pool: shards made independently (a process pool over shards), then pool.json.

Each shard's random numbers come from `SeedSequence([seed, SHARD_STREAM, shard])`
and the defect labels from one global shuffle, so a pool is the same bytes
whatever the number of workers, and a killed run resumes by skipping the
shards whose meta file exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from tierclip.curate import atomic
from tierclip.curate.errors import UserError
from tierclip.curate.pool import Pool, PoolInfo, Sample, meta_frame, shard_name, write_pool_info, write_shard
from tierclip.curate.synth.captions import describe
from tierclip.curate.synth.config import DEFECTS, LABEL_STREAM, SHARD_STREAM, SynthConfig, same_recipe
from tierclip.curate.synth.defects import Draft, Row, assign_labels, inject, place_originals
from tierclip.curate.synth.draw import encode_png, render
from tierclip.curate.synth.scene import sample_scene
from tierclip.curate.uids import derive_uid

GT_FLAGS = tuple(f"gt_{name}" for name in DEFECTS) + ("gt_clean",)
GT_SCHEMA = {
    **{column: pl.Boolean for column in GT_FLAGS},
    "gt_lang": pl.Utf8,  # language of the caption's template; null for boilerplate and empty captions
    "gt_dup_of": pl.Utf8,  # uid of the original of an exact or near duplicate
    "gt_shapes": pl.List(pl.Utf8),  # the objects really in the image, in drawing order
    "gt_colors": pl.List(pl.Utf8),
    "gt_sizes": pl.List(pl.Utf8),
    "gt_positions": pl.List(pl.Utf8),
    "gt_background": pl.Utf8,
}


@dataclass(frozen=True)
class ShardJob:
    root: Path
    shard: int
    start: int  # pool index of the shard's first row
    labels: tuple[str, ...]
    seed: int
    image_size: int
    max_objects: int


def synthesize(config: SynthConfig, progress: bool = True) -> pl.DataFrame:
    """Write the pool (and its eval set unless eval_n is 0); return counts per gt flag."""
    from tierclip.curate.synth.evalset import write_synth_evalset

    labels = place_originals(assign_labels(config.n, config.rates, _rng(config.seed, LABEL_STREAM)), config.shard_size)
    _prepare_out(config)
    jobs = [job for job in _jobs(config, labels) if not (config.out / "meta" / f"{shard_name(job.shard)}.parquet").is_file()]
    _run(jobs, config.n_workers(), progress)
    write_pool_info(config.out, PoolInfo(config.pool_name, "synth", _created(), config.n, config.n_shards))
    if config.eval_n:
        write_synth_evalset(config.eval_root, config.eval_n, config.seed, config.image_size)
    return gt_counts(config.out)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def _prepare_out(config: SynthConfig) -> None:
    recipe = config.out / "synth.json"
    if config.out.exists() and not config.out.is_dir():
        raise UserError(f"{config.out}: exists and is not a folder")
    if config.out.is_dir() and any(config.out.iterdir()) and not same_recipe(recipe, config):
        raise UserError(f"{config.out}: folder is not empty and was not made by this `curate synth` recipe; "
                        "choose a new --out or delete it")
    atomic.write_json(recipe, config.recipe())


def _jobs(config: SynthConfig, labels: list[str]) -> list[ShardJob]:
    return [
        ShardJob(config.out, shard, start, tuple(labels[start:start + config.shard_size]),
                 config.seed, config.image_size, config.max_objects)
        for shard, start in enumerate(range(0, config.n, config.shard_size))
    ]


def _run(jobs: list[ShardJob], workers: int, progress: bool) -> None:
    from tierclip.curate.progress import progress as progress_bar

    bar = progress_bar(total=sum(len(job.labels) for job in jobs), unit="sample", desc="synth", disable=not progress)
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            make_shard(job)
            bar.update(len(job.labels))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn, not fork: polars' thread pool does not survive a fork.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as executor:
            futures = {executor.submit(make_shard, job): len(job.labels) for job in jobs}
            for future in as_completed(futures):
                future.result()
                bar.update(futures[future])
    bar.close()


def _created() -> str:
    """Now, or SOURCE_DATE_EPOCH when set (then pool.json is byte-identical across runs too)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return moment.isoformat(timespec="seconds")


# -- one shard -------------------------------------------------------------------------
def make_shard(job: ShardJob) -> None:
    rng = _rng(job.seed, SHARD_STREAM, job.shard)
    draft = Draft([_draft_row(i, rng, job) for i in range(len(job.labels))], rng, job.max_objects)
    inject(draft, list(job.labels))
    keys = [f"{job.start + row.position:09d}" for row in draft.rows]
    uids = [derive_uid(key, row.image, row.caption) for key, row in zip(keys, draft.rows, strict=True)]
    samples = [_sample(key, uid, row, job) for key, uid, row in zip(keys, uids, draft.rows, strict=True)]
    rows = [_meta_row(key, uid, row, uids, job) for key, uid, row in zip(keys, uids, draft.rows, strict=True)]
    write_shard(job.root, job.shard, samples, meta_frame(rows, GT_SCHEMA))


def _draft_row(position: int, rng: np.random.Generator, job: ShardJob) -> Row:
    scene = sample_scene(rng, job.max_objects)
    picture = render(scene, job.image_size)
    return Row(position=position, scene=scene, picture=picture, image=encode_png(picture),
               caption=describe(scene, "en", rng), width=job.image_size, height=job.image_size)


def _url(job: ShardJob, row: Row) -> str:
    return f"synth://{job.seed}/{job.start + row.position}"


def _sample(key: str, uid: str, row: Row, job: ShardJob) -> Sample:
    extra = {"key": key, "uid": uid, "url": _url(job, row), "caption": row.caption, "width": row.width,
             "height": row.height, "status": row.status, "error_message": row.error}
    return Sample(key=key, image=row.image, image_ext=row.image_ext, caption=row.caption, extra=extra)


def _meta_row(key: str, uid: str, row: Row, uids: list[str], job: ShardJob) -> dict:
    objects = row.scene.objects
    return {
        "uid": uid, "key": key, "shard": job.shard, "caption": row.caption, "url": _url(job, row),
        "width": row.width, "height": row.height, "status": row.status, "error": row.error,
        **{f"gt_{name}": row.defect == name for name in DEFECTS},
        "gt_clean": row.defect == "clean",
        "gt_lang": row.lang,
        "gt_dup_of": uids[row.dup_of] if row.dup_of is not None else None,
        "gt_shapes": [o.shape for o in objects],
        "gt_colors": [o.color for o in objects],
        "gt_sizes": [o.size for o in objects],
        "gt_positions": [o.position for o in objects],
        "gt_background": row.scene.background.kind,
    }


def gt_counts(pool_root: Path) -> pl.DataFrame:
    """Rows and share of the pool per gt flag."""
    meta = Pool(pool_root).scan_meta().select(GT_FLAGS).collect()
    return pl.DataFrame({
        "gt": list(GT_FLAGS),
        "rows": [int(meta[c].sum()) for c in GT_FLAGS],
        "share": [round(float(meta[c].mean()), 4) for c in GT_FLAGS],
    })
