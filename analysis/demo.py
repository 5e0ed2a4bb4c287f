"""`just demo`: the whole study on the built-in synthetic pool, end to end, by the public commands.

    synthesize a noisy pool + a clean seed set  (curate synth)
    basic, language and caption-dedup stages    (curate score)
    train a filtering network on the seed set   (train run)
    CLIP-score the pool with it                 (curate score --stages clip)
    quality tiers at several sizes              (curate tiers --equal-size)
    headline: tiers x budgets x seeds           (train sweep)
    data-size axis: tiers x other sizes         (train sweep)
    --full: architectures, methods x ConvNet/ViT, text depth, CLIP+Aug at half the data   (train sweep)
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
    """How big the study is; `--full` picks the denser grid with the model and method axes.

    The headline (filtered vs unfiltered tiers at equal samples seen) trains every tier of the
    `headline_size` tier set at each of `budgets` with every seed, so compute fits and intervals exist; the
    other `sizes` add the data-size axis at `size_budget`. The axes of `--full` train on one tier
    (`axis_fraction`) at `size_budget`: `arch_models` at `arch_sizes`, `method_models` x `methods`,
    `text_models`, and CLIP+Aug at half the headline size (CLIP+Aug vs CLIP at twice the data);
    `natural_fractions` tiers at their own sizes for the repetition-aware crossover.
    """

    pool_size: int
    seed_size: int
    image_size: int
    filter_samples: int
    sizes: tuple[int, ...]
    fractions: str
    headline_size: int
    budgets: tuple[int, ...]
    seeds: tuple[int, ...]
    size_budget: int
    size_seeds: tuple[int, ...]
    n_boot: int
    scale: str = "cpu-small"
    model: str = "tc-rn-tiny"  # the tier study's model (the scale's)
    eval_n: int = 800
    axis_fraction: str | None = None   # the tier the model/method axes train on, e.g. "0.4" -> top40
    arch_models: tuple[str, ...] = ()  # besides `model`, at `arch_sizes` (which must be among `sizes`)
    arch_sizes: tuple[int, ...] = ()
    method_models: tuple[str, ...] = ()  # one ConvNet and one ViT for the method x architecture table
    methods: tuple[str, ...] = ()        # besides clip; run on each method model that the method can train
    text_models: tuple[str, ...] = ()    # text-depth variants of `model`
    natural_fractions: str | None = None  # tiers at their own sizes (no --equal-size): Goyal et al.'s crossover
    natural_budgets: tuple[int, ...] = ()


# The --full grid's methods besides CLIP; each method model runs those it can train (FILIP-family: ViT towers only).
FULL_METHODS = ("clip-aug", "slip", "declip", "filip", "defilip")

GRIDS = {
    "default": DemoGrid(pool_size=10_000, seed_size=2_000, image_size=32, filter_samples=36_000,
                        sizes=(350, 700, 1_400, 2_800), fractions="0.3,1.0", headline_size=1_400,
                        budgets=(3_000, 6_000, 12_000), seeds=(0, 1), size_budget=6_000, size_seeds=(0,), n_boot=100),
    "full": DemoGrid(pool_size=20_000, seed_size=3_000, image_size=32, filter_samples=60_000,
                     sizes=(500, 1_000, 2_000, 3_600), fractions="0.2,0.4,1.0", headline_size=2_000,
                     budgets=(5_000, 10_000, 20_000), seeds=(0, 1), size_budget=10_000, size_seeds=(0, 1), n_boot=200,
                     axis_fraction="0.4", arch_models=("tc-rn-xs", "tc-rn-s", "tc-vit-xs", "tc-vit-tiny"),
                     arch_sizes=(500, 2_000), method_models=("tc-rn-tiny", "tc-vit-tiny"), methods=FULL_METHODS,
                     text_models=("tc-rn-tiny-text1", "tc-rn-tiny-text2", "tc-rn-tiny-text4", "tc-rn-tiny-text8"),
                     natural_fractions="0.2,1.0", natural_budgets=(10_000, 20_000)),
}


def trainable_methods(wanted: tuple[str, ...], models: list[str]) -> dict[str, tuple[tuple[str, ...], dict[str, str]]]:
    """Per model: the wanted methods that this checkout's train.methods knows and that can train it (FILIP and
    DeFILIP need a ViT tower), and why each other one is left out. Asked of one child interpreter, like every
    other step, so this module still imports nothing from train."""
    query = ("import json, sys; from tierclip.train.methods import refusal; wanted = json.loads(sys.argv[1]); "
             "print(json.dumps({model: {m: refusal(m, model) for m in wanted} for model in json.loads(sys.argv[2])}))")
    done = subprocess.run([sys.executable, "-c", query, json.dumps(list(wanted)), json.dumps(list(models))], check=True,
                          capture_output=True, text=True)
    refusals = json.loads(done.stdout.strip().splitlines()[-1])
    return {model: (tuple(m for m in wanted if why[m] is None), {m: reason for m, reason in why.items() if reason})
            for model, why in refusals.items()}


def command(tool: str, *args: object) -> list[str]:
    """`curate ...` as `python -m tierclip.curate.cli ...` with this interpreter (works without the venv on PATH)."""
    return [sys.executable, "-m", f"tierclip.{tool}.cli", *(str(a) for a in args)]


def step(title: str, argv: list[str], done: Path | None = None) -> float:
    """Run one command unless `done` exists; return its wall time."""
    shown = " ".join(shlex.quote(a) for a in ([argv[2].removeprefix("tierclip.").split(".")[0]] + argv[3:]))
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
        "train", "run", seed_pool, "--method", "clip", "--scale", grid.scale, "--lr", "5e-3",
        "--samples-seen", grid.filter_samples, "--eval", evalset, "--out", filter_run), done=filter_run / "DONE")
    timings["clip_score"] = step("CLIP-score the pool with the filtering network", command(
        "curate", "score", pool, "--stages", "clip", "--clip-model", "tc-rn-tiny", "--clip-pretrained", filter_run / "checkpoint.pt"),
        done=_stage_done(pool, "clip"))
    tier_sets = []
    for size in grid.sizes:
        tier_set = tiers / f"n{size}"
        tier_sets.append(tier_set)
        timings[f"tiers_{size}"] = step(f"quality tiers {grid.fractions} with {size} samples each", command(
            "curate", "tiers", pool, "--score", "clip_score", "--fractions", grid.fractions, "--equal-size", size,
            "--out", tier_set), done=tier_set / "tiers.json")
    sweep = ["--pool", pool, "--scale", grid.scale, "--eval", evalset]
    timings["sweep_headline"] = step(f"headline: CLIP on every tier at {grid.headline_size:,} samples, "
                                     f"{len(grid.budgets)} budgets x {len(grid.seeds)} seeds", command(
        "train", "sweep", *sweep, "--subset", tiers / f"n{grid.headline_size}", "--method", "clip",
        *_repeat("--samples-seen", grid.budgets), *_repeat("--seed", grid.seeds), "--out", runs))
    other_sizes = [size for size in grid.sizes if size != grid.headline_size]
    timings["sweep_sizes"] = step(f"data-size axis: CLIP on every tier at {', '.join(f'{s:,}' for s in other_sizes)} samples", command(
        "train", "sweep", *sweep, *_repeat("--subset", [tiers / f"n{s}" for s in other_sizes]), "--method", "clip",
        "--samples-seen", grid.size_budget, *_repeat("--seed", grid.size_seeds), "--out", runs))
    if grid.axis_fraction is not None:
        timings.update(run_axes(grid, sweep, tiers, runs))
    if grid.natural_fractions is not None:
        timings["tiers_natural"] = step(f"quality tiers {grid.natural_fractions} at their own sizes", command(
            "curate", "tiers", pool, "--score", "clip_score", "--fractions", grid.natural_fractions,
            "--out", tiers / "natural"), done=tiers / "natural" / "tiers.json")
        timings["sweep_natural"] = step("a small clean tier vs the whole pool at their own sizes (repetition crossover)", command(
            "train", "sweep", *sweep, "--subset", tiers / "natural", "--method", "clip",
            *_repeat("--samples-seen", grid.natural_budgets), *_repeat("--seed", grid.seeds), "--out", runs))
    timings["report"] = step("scaling report", command(
        "analysis", "report", runs, "--out", report, "--task", "shape", "--metric", "top1", "--n-boot", grid.n_boot))
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    return report


def axis_tier(grid: DemoGrid, size: int) -> Path:
    """The subset folder of the axis tier (top<fraction %>) in the tier set of `size` (its name in tiers.json)."""
    return Path(f"n{size}") / f"top{round(float(grid.axis_fraction) * 100)}"


def run_axes(grid: DemoGrid, sweep: list, tiers: Path, runs: Path) -> dict[str, float]:
    """--full: the architecture, method x architecture and text-depth axes, and CLIP+Aug at half the data, on
    the axis tier at `size_budget`. CLIP runs of `grid.model` come from the headline and size sweeps (not
    trained twice); each axis sweep writes under its own folder of runs/ (one tier name, several sizes)."""
    timings, seeds = {}, [part for seed in grid.seeds for part in ("--seed", seed)]
    at_budget = [*sweep, "--samples-seen", grid.size_budget, *seeds]
    for size in grid.arch_sizes:
        timings[f"sweep_arch_{size}"] = step(f"architectures at {size:,} samples: {', '.join(grid.arch_models)}", command(
            "train", "sweep", *at_budget, "--subset", tiers / axis_tier(grid, size), "--method", "clip",
            *_repeat("--model", grid.arch_models), "--out", runs / f"arch-n{size}"))
    clip_runs = {grid.model} | set(grid.arch_models) if grid.headline_size in grid.arch_sizes else {grid.model}
    trainable = trainable_methods(grid.methods, list(dict.fromkeys([*grid.method_models, grid.model])))
    for model in grid.method_models:
        methods, left_out = trainable[model]
        for method, why in left_out.items():
            print(f"   {method} left out on {model}: {why}", flush=True)
        wanted = methods if model in clip_runs else ("clip", *methods)
        timings[f"sweep_methods_{model}"] = step(f"methods on {model}: {', '.join(wanted)}", command(
            "train", "sweep", *at_budget, "--subset", tiers / axis_tier(grid, grid.headline_size), *_repeat("--method", wanted),
            "--model", model, "--out", runs / f"methods-{model}"))
    timings["sweep_text_depth"] = step(f"text-encoder depth: {', '.join(grid.text_models)}", command(
        "train", "sweep", *at_budget, "--subset", tiers / axis_tier(grid, grid.headline_size), "--method", "clip",
        *_repeat("--model", grid.text_models), "--out", runs / "text-depth"))
    half = grid.headline_size // 2
    if "clip-aug" in trainable[grid.model][0] and half in grid.sizes:
        timings["sweep_aug_half"] = step(f"CLIP+Aug at half the data ({half:,} samples)", command(
            "train", "sweep", *at_budget, "--subset", tiers / axis_tier(grid, half), "--method", "clip-aug",
            "--out", runs / "aug-half"))
    return timings


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
                        help="the denser grid with the model, method and text-depth axes: a 20,000-pair pool, 3 tiers, "
                             "4 sizes, 2 seeds everywhere (about an hour on 2 cores; docs/analysis.md)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    report = run_demo(args.out, GRIDS["full" if args.full else "default"])
    print(f"\nDone in {time.perf_counter() - start:.0f} s. Report: {report / 'index.html'} (summary: {report / 'summary.md'})")


if __name__ == "__main__":
    main()
