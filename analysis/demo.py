"""`just demo`: the whole study on the built-in synthetic pool, end to end, by the public commands.

    synthesize a noisy pool + a clean seed set  (curate synth)
    basic, language and caption-dedup stages    (curate score)
    train a filtering network on the seed set   (train run)
    CLIP-score the pool with it                 (curate score --stages clip)
    quality tiers at several sizes              (curate tiers --equal-size)
    sweep tiers x sizes x methods               (train sweep)
    the scaling report                          (analysis report)

Each step is the console command a user would type (printed before it runs), so the demo doubles as
the recipe for a real pool. Steps whose output is already complete are skipped, so an interrupted demo
resumes. This module imports nothing from curate/train: it only runs their commands.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DemoGrid:
    """How big the study is; `--full` picks the denser grid."""

    pool_size: int
    seed_size: int
    image_size: int
    filter_samples: int
    sizes: tuple[int, ...]
    fractions: str
    methods: tuple[str, ...]
    method_sizes: tuple[int, ...]   # sizes at which the extra methods are compared with CLIP
    seeds: tuple[int, ...]
    samples_seen: int
    n_boot: int
    scale: str = "cpu-small"
    eval_n: int = 800


GRIDS = {
    "default": DemoGrid(pool_size=10_000, seed_size=2_000, image_size=32, filter_samples=36_000,
                        sizes=(350, 700, 1_400, 2_800), fractions="0.3,1.0", methods=("clip", "clip-aug"),
                        method_sizes=(2_800,), seeds=(0,), samples_seen=12_000, n_boot=100),
    "full": DemoGrid(pool_size=20_000, seed_size=3_000, image_size=32, filter_samples=90_000,
                     sizes=(500, 1_000, 2_000, 3_600), fractions="0.2,0.4,1.0", methods=("clip", "clip-aug", "slip"),
                     method_sizes=(2_000, 3_600), seeds=(0, 1), samples_seen=30_000, n_boot=200),
}


def command(tool: str, *args: object) -> list[str]:
    """`curate ...` as `python -m curate.cli ...` with this interpreter (works without the venv on PATH)."""
    return [sys.executable, "-m", f"{tool}.cli", *(str(a) for a in args)]


def step(title: str, argv: list[str], done: Path | None = None) -> float:
    """Run one command unless `done` exists; return its wall time."""
    shown = " ".join(shlex.quote(a) for a in ([Path(argv[2]).name.split(".")[0]] + argv[3:]))
    if done is not None and done.exists():
        print(f"== {title}: already done ({done})", flush=True)
        return 0.0
    print(f"== {title}\n   $ {shown}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(argv, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if result.returncode != 0:
        raise SystemExit(f"demo: step '{title}' failed (exit {result.returncode}); fix it and re-run: finished steps are kept")
    took = time.perf_counter() - start
    print(f"   ({took:.0f} s)", flush=True)
    return took


def run_demo(out: Path, grid: DemoGrid) -> Path:
    pool, seed_pool, evalset = out / "pool", out / "seed", out / "pool" / "eval"
    filter_run, tiers, runs, report = out / "filter", out / "tiers", out / "runs", out / "report"
    timings = {}
    timings["synth"] = step("synthesize a noisy web-like pool and a clean eval set", command(
        "curate", "synth", "--n", grid.pool_size, "--out", pool, "--seed", 0, "--image-size", grid.image_size,
        "--eval-n", grid.eval_n), done=pool / "pool.json")
    timings["synth_seed"] = step("synthesize a trusted clean seed set (the filtering network's training data)", command(
        "curate", "synth", "--n", grid.seed_size, "--out", seed_pool, "--seed", 1, "--image-size", grid.image_size,
        "--profile", "clean", "--eval-n", 0), done=seed_pool / "pool.json")
    timings["score"] = step("score: basic, language, caption near-duplicates", command(
        "curate", "score", pool, "--stages", "basic,lang,text_dedup"), done=_stage_done(pool, "text_dedup"))
    timings["filter_net"] = step("train a filtering network (CLIP on the clean seed set)", command(
        "train", "run", "--pool", seed_pool, "--method", "clip", "--scale", grid.scale, "--lr", "5e-3",
        "--samples-seen", grid.filter_samples, "--eval", evalset, "--out", filter_run), done=filter_run / "DONE")
    timings["clip_score"] = step("CLIP-score the pool with the filtering network", command(
        "curate", "score", pool, "--stages", "clip", "--model", "tc-rn-tiny", "--pretrained", filter_run / "checkpoint.pt"),
        done=_stage_done(pool, "clip"))
    tier_sets = []
    for size in grid.sizes:
        tier_set = tiers / f"n{size}"
        tier_sets.append(tier_set)
        timings[f"tiers_{size}"] = step(f"quality tiers {grid.fractions} with {size} samples each", command(
            "curate", "tiers", pool, "--score", "clip_score", "--fractions", grid.fractions, "--equal-size", size,
            "--out", tier_set), done=tier_set / "tiers.json")
    timings["sweep"] = step("train CLIP on every tier x size", command(
        "train", "sweep", "--pool", pool, "--scale", grid.scale, *_repeat("--subset", tier_sets), "--method", "clip",
        *_repeat("--seed", grid.seeds), "--samples-seen", grid.samples_seen, "--eval", evalset, "--out", runs))
    extra_methods = [m for m in grid.methods if m != "clip"]
    if extra_methods:
        timings["sweep_methods"] = step(f"train {', '.join(extra_methods)} at equal compute", command(
            "train", "sweep", "--pool", pool, "--scale", grid.scale, *_repeat("--subset", [tiers / f"n{s}" for s in grid.method_sizes]),
            *_repeat("--method", extra_methods), *_repeat("--seed", grid.seeds), "--samples-seen", grid.samples_seen,
            "--eval", evalset, "--out", runs))
    timings["report"] = step("scaling report", command(
        "analysis", "report", runs, "--out", report, "--task", "shape", "--metric", "top1", "--n-boot", grid.n_boot))
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    return report


def _stage_done(pool: Path, stage: str) -> Path:
    """The last shard's completion marker stands for the stage (the runner writes markers per shard)."""
    info = json.loads((pool / "pool.json").read_text()) if (pool / "pool.json").exists() else {"n_shards": 1}
    return pool / "scores" / stage / "_done" / f"{info['n_shards'] - 1:05d}"


def _repeat(flag: str, values) -> list[str]:
    return [part for value in values for part in (flag, str(value))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="just demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("demo"), help="folder for everything the demo writes (default: demo/)")
    parser.add_argument("--full", action="store_true",
                        help="a denser grid: a 20,000-pair pool, 4 sizes, 3 tiers, SLIP too, 2 seeds (over an hour on 2 cores)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    report = run_demo(args.out, GRIDS["full" if args.full else "default"])
    print(f"\nDone in {time.perf_counter() - start:.0f} s. Report: {report / 'index.html'} (summary: {report / 'summary.md'})")


if __name__ == "__main__":
    main()
