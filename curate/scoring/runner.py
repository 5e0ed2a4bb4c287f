"""The stage runner behind `curate score`: order stages, check what they need, run them shard by shard.

One run at a time per pool (`POOL/.score.lock`, see curate/procs.py). For each stage, in dependency order:
1. check its options against `scores/STAGE/_config.json` (a stage computed
   with other options is an error unless `force`, which recomputes it);
2. global stages only: `prepare` every shard without `_parts/_done/NNNNN`,
   then each global phase's tasks without `_global/_tasks/PHASE/TASK.json`
   (through the engine, like shards), then `build` once unless `_global/_done` exists;
3. `compute` every shard without a completion marker, check the output
   (uid + exactly the declared columns and dtypes, same rows, same order)
   and write it with `Pool.write_scores` (sidecar, stats JSON, marker).
Completed shards are skipped, so a killed run picks up where it stopped and
ends with the same bytes as an uninterrupted one. `force` moves the old outputs
to `scores/.previous-STAGE` and deletes them only once the new ones are
complete; a failed (or killed, on the next run) forced run puts them back.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tierclip.curate import atomic
from tierclip.curate.errors import UserError
from tierclip.curate.pool import Pool
from tierclip.curate.procs import RunLock
from tierclip.curate.sidecars import SIDE_OUTPUTS, hidden
from tierclip.curate.stages import STAGES
from tierclip.curate.stages.base import EMBEDDINGS, IMAGES, ShardContext, Stage, parts_path

SCORE_LOCK = ".score.lock"  # beside scores/, so sidecar folders stay byte-identical between runs


class StageOutputError(RuntimeError):
    """A stage returned something other than its declared columns for the same rows (a bug in the stage)."""


@dataclass(frozen=True)
class ShardTask:
    pool_root: str
    stage: str
    cfg: Any
    shard: int
    phase: str  # "prepare" or "compute"
    joined: tuple[str, ...]
    with_images: bool


@dataclass(frozen=True)
class PhaseTask:
    pool_root: str
    stage: str
    cfg: Any
    phase: str
    task: str
    joined: tuple[str, ...]


@dataclass(frozen=True)
class StageReport:
    stage: str
    shards_done: int
    shards_skipped: int
    build: dict | None


# -- planning ----------------------------------------------------------------------
def plan(pool: Pool, requested: list[str]) -> list[str]:
    """Requested stages in dependency order; every dependency is requested or already complete."""
    unknown = [name for name in requested if name not in STAGES]
    if unknown:
        raise UserError(f"unknown stage '{unknown[0]}' (known stages: {', '.join(STAGES)})")
    order: list[str] = []

    def visit(name: str) -> None:
        stage = STAGES[name]
        for dep in (*stage.stage_deps, *stage.uses):
            if dep in requested and dep not in order:
                visit(dep)
        if name not in order:
            order.append(name)

    for name in requested:
        visit(name)
    complete = set(pool.stages())
    for name in order:
        check_needs(pool, STAGES[name], set(order[: order.index(name)]) | complete)
    return order


def check_needs(pool: Pool, stage: Stage, available_stages: set[str]) -> None:
    for dep in stage.stage_deps:
        if dep not in STAGES:
            raise RuntimeError(f"stage '{stage.name}' needs unknown stage '{dep}'")
        if dep not in available_stages:
            raise UserError(f"{pool.scores_dir(dep)}: the '{stage.name}' stage needs the '{dep}' sidecar, which is missing or "
                            f"incomplete; run `curate score {pool.root} --stages {dep},{stage.name}`")
    if EMBEDDINGS in stage.needs and "clip" not in available_stages:
        from tierclip.curate.stages.embeddings import imported

        if imported(pool) is None:
            raise UserError(f"{pool.scores_dir('clip')}: the '{stage.name}' stage needs the 'clip' sidecar (or image embeddings "
                            f"imported by `curate ingest datacomp`), which is missing or incomplete; "
                            f"run `curate score {pool.root} --stages clip,{stage.name}`")
    columns = pl.read_parquet_schema(pool.meta_path(0)).keys() if pool.info.n_shards else ()
    for column in (n for n in stage.needs if n not in (IMAGES, EMBEDDINGS) and n not in STAGES):
        if column not in columns:
            raise UserError(f"{pool.meta_path(0)}: the '{stage.name}' stage needs meta column '{column}'")
    if IMAGES in stage.needs and not pool.has_images():
        raise UserError(f"{pool.root}: the '{stage.name}' stage needs images but the pool has no image shards (metadata only)")


# -- running -----------------------------------------------------------------------
def score_pool(root: str | Path, stages: list[str], configs: dict[str, Any] | None = None, engine: str = "local",
               workers: int = 2, address: str | None = None, force: bool = False, progress: bool = True) -> list[StageReport]:
    """Run `stages` over the pool at `root`; `configs` maps a stage name to its config (defaults otherwise)."""
    from tierclip.curate.scoring.engines import ENGINES

    pool = Pool(root)
    pool.require_rows("score")
    if engine not in ENGINES:
        raise UserError(f"unknown engine '{engine}' (known engines: {', '.join(ENGINES)})")
    if workers < 0:
        raise UserError(f"--workers {workers}: must be 0 or more")
    plan(pool, stages)  # unknown stages and missing inputs: refused before anything is written
    with RunLock(pool.root / SCORE_LOCK, "`curate score`"):  # a second run (or orphans of a killed one) would race
        for name in STAGES:
            restore_set_aside(pool, name)  # a killed --force run: its old outputs come back
        order = plan(pool, stages)
        runner = ENGINES[engine](workers=workers, address=address)
        try:
            return [run_stage(pool, STAGES[name], (configs or {}).get(name) or STAGES[name].config(), runner, force, progress)
                    for name in order]
        finally:
            runner.close()


def run_stage(pool: Pool, stage: Stage, cfg: Any, engine, force: bool = False, progress: bool = True) -> StageReport:
    """Run one stage. With `force`, the old outputs are set aside and put back unless the new ones complete."""
    restore_set_aside(pool, stage.name)
    previous = set_aside(pool, stage, cfg) if force else None
    try:
        report = _run_stage(pool, stage, cfg, engine, progress)
    except BaseException:
        if previous is not None:
            restore_set_aside(pool, stage.name)
        raise
    if previous is not None:
        discard_set_aside(pool, stage.name)
    return report


def set_aside_dir(pool: Pool, stage: str, kind: str = "previous") -> Path:
    return pool.stage_files(stage).set_aside(kind)


def set_aside(pool: Pool, stage: Stage, cfg: Any) -> Path | None:
    """`--force`: move scores/STAGE to scores/.previous-STAGE and each side-output folder (clip's embeddings) to a
    dot folder beside it (readers ignore dot folders) until the new run completes. The list of side outputs is
    written before any is moved, so a run killed half-way is put back exactly."""
    current, previous = pool.scores_dir(stage.name), set_aside_dir(pool, stage.name)
    if not current.exists():
        return None
    current.rename(previous)
    side = [f for f in (stage.side_outputs(pool, cfg) if stage.side_outputs else []) if f.exists()]
    atomic.write_json(previous / SIDE_OUTPUTS, [str(f.relative_to(pool.root)) for f in side])
    for folder in side:
        folder.rename(hidden(folder))
    return previous


def _side_outputs(pool: Pool, set_aside_folder: Path) -> list[Path]:
    listed = set_aside_folder / SIDE_OUTPUTS
    return [pool.root / rel for rel in json.loads(listed.read_text())] if listed.is_file() else []


def restore_set_aside(pool: Pool, stage: str) -> None:
    """Put back outputs a forced run set aside and did not finish replacing (it failed or was killed); finish
    discarding those of a forced run killed after it completed."""
    leftover = set_aside_dir(pool, stage, "discard")
    if leftover.exists():
        _remove_set_aside(pool, leftover)
    previous = set_aside_dir(pool, stage)
    if not previous.exists():
        return
    for folder in _side_outputs(pool, previous):
        if hidden(folder).exists():  # moved aside (a folder not yet moved when the run died is still in place)
            if folder.exists():
                shutil.rmtree(folder)
            hidden(folder).rename(folder)
    (previous / SIDE_OUTPUTS).unlink(missing_ok=True)
    if pool.scores_dir(stage).exists():
        shutil.rmtree(pool.scores_dir(stage))
    previous.rename(pool.scores_dir(stage))


def discard_set_aside(pool: Pool, stage: str) -> None:
    """The new outputs are complete: drop the old ones. Renamed first, so a kill during the deletion can never
    make the next run put the old outputs back over the new ones."""
    discard = set_aside_dir(pool, stage, "discard")
    set_aside_dir(pool, stage).rename(discard)
    _remove_set_aside(pool, discard)


def _remove_set_aside(pool: Pool, discard: Path) -> None:
    for folder in _side_outputs(pool, discard):
        shutil.rmtree(hidden(folder), ignore_errors=True)
    shutil.rmtree(discard)


def _run_stage(pool: Pool, stage: Stage, cfg: Any, engine, progress: bool = True) -> StageReport:
    for leftover in pool.scores_dir(stage.name).rglob(".tmp-*"):  # half-written files of a killed run
        leftover.unlink()
    record_config(pool, stage, cfg)
    redo_damaged(pool, stage.name)
    complete = set(pool.stages())
    joined = tuple(dep for dep in (*stage.stage_deps, *stage.uses) if dep in STAGES and dep in complete)
    images = stage.reads_images and pool.has_images()

    def tasks(phase: str, todo: list[int], with_images: bool) -> list[ShardTask]:
        return [ShardTask(str(pool.root), stage.name, cfg, s, phase, joined, with_images) for s in todo]

    build_stats = None
    if stage.prepare is not None:
        todo = [s for s in pool.shard_ids() if not parts_done_path(pool, stage.name, s).exists()]
        _drain(engine.map(run_shard, tasks("prepare", todo, images), stage.max_workers), f"{stage.name} prepare", len(todo), progress)
        images = False  # the prepare phase read them
    if not pool.stage_files(stage.name).global_done.exists():
        for phase in stage.phases:
            todo = [t for t in phase.tasks(pool, cfg, joined) if not phase_done_path(pool, stage.name, phase.name, t).exists()]
            work = [PhaseTask(str(pool.root), stage.name, cfg, phase.name, t, joined) for t in todo]
            _drain(engine.map(run_phase_task, work), f"{stage.name} {phase.name}", len(todo), progress)
    if stage.build is not None:
        build_stats = run_build(pool, stage, cfg, joined)
    todo = [s for s in pool.shard_ids() if not pool.is_done(stage.name, s)]
    _drain(engine.map(run_shard, tasks("compute", todo, images), stage.max_workers), stage.name, len(todo), progress)
    return StageReport(stage.name, len(todo), pool.info.n_shards - len(todo), build_stats)


def _drain(results: Iterator, desc: str, total: int, progress: bool) -> None:
    from tierclip.curate.progress import progress as progress_bar

    with progress_bar(total=total, desc=desc, unit="shard", disable=not progress or total == 0) as bar:
        for rows in results:
            bar.update(1)
            bar.set_postfix(rows=rows, refresh=False)


def redo_damaged(pool: Pool, stage: str) -> None:
    """A completed shard whose sidecar is not whole (cut, overwritten, wrong row count) loses its marker and is
    computed again; each is named on stderr."""
    import sys

    files = pool.stage_files(stage)
    for shard in (s for s in pool.shard_ids() if files.is_done(s)):
        problem = files.problem(shard, pool.meta_rows(shard))
        if problem:
            print(f"{problem}; computing it again", file=sys.stderr)
            files.done(shard).unlink()


def run_build(pool: Pool, stage: Stage, cfg: Any, joined: tuple[str, ...]) -> dict:
    marker = pool.stage_files(stage.name).global_done
    if marker.exists():
        return json.loads(marker.read_text())
    stats = stage.build(pool, cfg, joined)
    atomic.write_json(marker, stats)
    return stats


def phase_done_path(pool: Pool, stage: str, phase: str, task: str) -> Path:
    return pool.stage_files(stage).task_done(phase, task)


def parts_done_path(pool: Pool, stage: str, shard: int) -> Path:
    return pool.stage_files(stage).parts_done(shard)


def record_config(pool: Pool, stage: Stage, cfg: Any) -> None:
    """Write the stage's options on first run; refuse to mix shards computed with other options."""
    if not isinstance(cfg, stage.config):
        raise TypeError(f"stage '{stage.name}' takes a {stage.config.__name__}, not {type(cfg).__name__}")
    path = pool.stage_files(stage.name).config
    record = {"stage": stage.name, "options": dataclasses.asdict(cfg)}
    if not path.is_file():
        atomic.write_json(path, record)
        return
    old = json.loads(path.read_text())
    runtime = getattr(stage.config, "RUNTIME_FIELDS", ())
    differ = sorted(k for k in record["options"] if k not in runtime and old["options"].get(k) != record["options"][k])
    if differ:
        raise UserError(f"{path}: '{stage.name}' was computed with other options ({', '.join(differ)}); "
                        f"pass --force to recompute it with the new ones")


# -- one shard (runs in a worker process) --------------------------------------------------
def run_shard(task: ShardTask) -> int:
    stage, pool = STAGES[task.stage], Pool(task.pool_root, check_files=False)  # checked once by score_pool
    ctx = ShardContext(pool.root, task.shard, task.joined)
    meta = attach_sidecars(pool, task.shard, pool.meta(task.shard), task.joined)
    images = iter_images(pool, task.shard, meta["key"].to_list()) if task.with_images else None
    if task.phase == "prepare":
        write_parts(pool, stage, task.shard, stage.prepare(meta, images, task.cfg, ctx), meta.height)
    else:
        frame = checked_output(stage, meta, stage.compute(meta, images, task.cfg, ctx))
        pool.write_scores(stage.name, task.shard, frame, shard_stats(frame))
    return meta.height


def run_phase_task(task: PhaseTask) -> int:
    """One task of a global phase (runs in a worker process); its stats JSON is its completion marker."""
    stage, pool = STAGES[task.stage], Pool(task.pool_root)
    phase = next(p for p in stage.phases if p.name == task.phase)
    stats = phase.run(pool, task.cfg, task.joined, task.task)
    atomic.write_json(phase_done_path(pool, stage.name, phase.name, task.task), stats)
    return int(stats.get("rows", 0))


def attach_sidecars(pool: Pool, shard: int, meta: pl.DataFrame, stages: tuple[str, ...]) -> pl.DataFrame:
    """Meta with the columns of complete sidecars alongside (they are row-aligned; the uids are checked)."""
    for name in stages:
        sidecar = pool.read_scores(name, shard)
        if sidecar.height != meta.height or not sidecar["uid"].equals(meta["uid"]):
            raise UserError(f"{pool.scores_path(name, shard)}: rows do not match {pool.meta_path(shard)}; "
                            f"recompute with `curate score {pool.root} --stages {name} --force`")
        meta = pl.concat([meta, sidecar.drop("uid")], how="horizontal")
    return meta


def iter_images(pool: Pool, shard: int, keys: list[str]) -> Iterator[bytes | None]:
    """Image bytes (None where a sample has none) in meta order; a tar that disagrees with meta is an error."""
    row = -1
    for row, sample in enumerate(pool.samples(shard)):
        if row >= len(keys) or sample.key != keys[row]:
            raise UserError(f"{pool.tar_path(shard)}: sample {row} has key {sample.key!r} but {pool.meta_path(shard)} "
                            f"row {row} has {keys[row] if row < len(keys) else 'no row'}")
        yield sample.image
    if row + 1 != len(keys):
        raise UserError(f"{pool.tar_path(shard)}: {row + 1} samples but {pool.meta_path(shard)} has {len(keys)} rows")


def write_parts(pool: Pool, stage: Stage, shard: int, arrays: dict[str, np.ndarray], rows: int) -> None:
    for name, array in arrays.items():
        if isinstance(array, pl.DataFrame):  # a long table (e.g. LSH band keys), not row-aligned
            atomic.write_parquet(pool.stage_files(stage.name).parts(name, shard, ".parquet"), array)
            continue
        if len(array) != rows:
            raise StageOutputError(f"stage '{stage.name}' prepared {len(array)} rows of '{name}' for {rows} meta rows")
        atomic.write_npy(parts_path(pool, stage.name, name, shard), array)
    atomic.write_bytes(parts_done_path(pool, stage.name, shard), b"")


def checked_output(stage: Stage, meta: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """The frame in declared column order, after checking columns, dtypes, row count and uid order."""
    expected = ["uid", *stage.produces]
    if sorted(frame.columns) != sorted(expected):
        raise StageOutputError(f"stage '{stage.name}' returned columns {frame.columns}, declared {expected}")
    wrong = {c: str(frame.schema[c]) for c, t in stage.produces.items() if frame.schema[c] != t}
    if wrong:
        raise StageOutputError(f"stage '{stage.name}' returned dtypes {wrong}, declared {stage.produces}")
    if frame.height != meta.height or not frame["uid"].equals(meta["uid"]):
        raise StageOutputError(f"stage '{stage.name}' returned {frame.height} rows for {meta.height} meta rows, or reordered them")
    return frame.select(expected)


def shard_stats(frame: pl.DataFrame) -> dict:
    """Counters for one shard: rows, nulls per column, trues per boolean column."""
    columns = [c for c in frame.columns if c != "uid"]
    return {
        "rows": frame.height,
        "nulls": {c: frame[c].null_count() for c in columns},
        "true": {c: int(frame[c].sum()) for c in columns if frame.schema[c] == pl.Boolean},
    }
