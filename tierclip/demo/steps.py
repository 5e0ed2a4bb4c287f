"""How the demo runs a step: the console command, printed, skipped when its output is complete."""

from __future__ import annotations

import json
import multiprocessing
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


def command(tool: str, *args: object) -> list[str]:
    """`curate ...` as `python -m tierclip.curate.cli ...` with this interpreter (works without the venv on PATH)."""
    return [sys.executable, "-m", f"tierclip.{tool}.cli", *(str(a) for a in args)]


def step(title: str, argv: list[str], done: Path | None = None) -> float:
    """Run one command unless `done` exists; return its wall time."""
    if done is not None and done.exists():
        print(f"== {title}: already done ({done})", flush=True)
        return 0.0
    print(f"== {title}\n   $ {shown(argv)}", flush=True)
    start = time.perf_counter()
    code = _run(argv)
    if code != 0:
        raise SystemExit(f"demo: step '{title}' failed (exit {code}); fix it and re-run: finished steps are kept")
    took = time.perf_counter() - start
    print(f"   ({took:.0f} s)", flush=True)
    return took


@dataclass(frozen=True)
class Sweep:
    """One `train sweep` of the study: `args` hold everything but its subsets and seeds; one (subset, seed) of it
    trains `samples` samples in all (its budgets times its models and methods)."""

    title: str
    args: tuple
    subsets: tuple[Path, ...]
    seeds: tuple[int, ...]
    samples: int


def lane_plan(sweeps: list[Sweep], lanes: int) -> list[list[list[str]]]:
    """Every sweep split into one `train sweep` per (subset, seed), dealt largest first onto the lane with the fewest
    samples so far; each lane is a list of commands that run one after another. Runs never depend on each other and
    every run folder is locked, so lanes only need disjoint run lists (a static split of a fixed list, not a
    scheduler: no queue, no retries; a failed command stops the demo, which resumes from the finished runs)."""
    parts = sorted(((sweep.samples, sweep, subset, seed) for sweep in sweeps for subset in sweep.subsets for seed in sweep.seeds),
                   key=lambda part: -part[0])
    plan, load = [[] for _ in range(lanes)], [0] * lanes
    for samples, sweep, subset, seed in parts:
        lane = load.index(min(load))
        plan[lane].append(command("train", "sweep", *sweep.args, "--subset", subset, "--seed", seed))
        load[lane] += samples
    return [commands for commands in plan if commands]


def run_lanes(title: str, sweeps: list[Sweep], lanes: int) -> float:
    """Run the sweeps' commands in `lanes` processes side by side (see `lane_plan`); return the wall time. The
    runs are tiny models on a few cores: two processes of one torch thread each trained the real demo's grid ~1.4x
    as fast as one process of two threads (docs/benchmarks.md), and torchrun/DDP would split each batch instead."""
    plan = lane_plan(sweeps, lanes)
    print(f"== {title}", flush=True)
    for sweep in sweeps:
        print(f"   - {sweep.title}", flush=True)
    print(f"   {sum(map(len, plan))} sweeps in {len(plan)} lane(s) side by side:", flush=True)
    for n, commands in enumerate(plan):
        for argv in commands:
            print(f"   [{n}] $ {shown(argv)}", flush=True)
    start = time.perf_counter()
    with ThreadPoolExecutor(len(plan)) as pool:
        failed = [code for codes in pool.map(_run_in_turn, plan) for code in codes if code]
    if failed:
        raise SystemExit(f"demo: step '{title}' failed (exit {failed[0]}); fix it and re-run: finished runs are kept")
    took = time.perf_counter() - start
    print(f"   ({took:.0f} s)", flush=True)
    return took


def _run_in_turn(commands: list[list[str]]) -> list[int]:
    """Run one lane's commands one after another; stop the lane at the first failure."""
    codes = []
    for argv in commands:
        codes.append(_run(argv))
        if codes[-1]:
            break
    return codes


def _run(argv: list[str]) -> int:
    """Run one console command with unbuffered output (its lines appear as they are printed); its exit code."""
    return subprocess.run(argv, env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode


def shown(argv: list[str]) -> str:
    """The console command a `command(...)` list stands for, quoted for a shell."""
    return " ".join(shlex.quote(a) for a in ([argv[2].removeprefix("tierclip.").split(".")[0]] + argv[3:]))


def options_spec(path: Path, comment: str, options: dict) -> Path:
    """A sweep file whose only content is `[options]` (values: numbers, booleans, or a table of numbers/lists)."""
    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{key} = {value(item)}" for key, item in v.items()) + " }"
        return json.dumps(list(v) if isinstance(v, tuple) else v)

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {comment}\n[options]\n" + "".join(f"{key} = {value(v)}\n" for key, v in options.items()))
    return path


def stage_done(pool: Path, stage: str) -> Path:
    """The last shard's completion marker stands for the stage (the runner writes markers per shard)."""
    from tierclip.curate.pool import Pool
    from tierclip.curate.sidecars import StageFiles

    if not (pool / "pool.json").exists():
        return StageFiles.of(pool, stage).done(0)
    opened = Pool(pool, check_files=False)
    return opened.done_path(stage, opened.info.n_shards - 1)


def repeat(flag: str, values) -> list[str]:
    return [part for value in values for part in (flag, str(value))]


def trainable_methods(wanted: tuple[str, ...], models: list[str]) -> dict[str, tuple[tuple[str, ...], dict[str, str]]]:
    """Per model: the wanted methods that train.methods knows and that can train it (FILIP and DeFILIP need a
    ViT tower), and why each other one is left out. Asked of a spawned child process: the answer reads open_clip's
    model configs, and importing open_clip (and torch with it, ~0.5 GB) would stay in the demo's own process for
    the whole run, beside its training lanes."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(_trainable_methods, wanted, models).result()


def _trainable_methods(wanted: tuple[str, ...], models: list[str]) -> dict[str, tuple[tuple[str, ...], dict[str, str]]]:
    from tierclip.train.methods import refusal

    reasons = {model: {method: refusal(method, model) for method in wanted} for model in models}
    return {model: (tuple(m for m in wanted if why[m] is None), {m: reason for m, reason in why.items() if reason})
            for model, why in reasons.items()}


def augmented_methods(methods: tuple[str, ...]) -> tuple[str, ...]:
    """The methods among `methods` whose image views carry random augmentation (CLIP+Aug, SLIP, DeCLIP, DeFILIP)."""
    from tierclip.train.augment import augmented_views
    from tierclip.train.methods import METHODS

    return tuple(m for m in methods if m in METHODS and augmented_views(METHODS[m].views))


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")
