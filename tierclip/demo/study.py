"""The study on a pool, step by step:

    pool, seed set, eval set                    (curate ingest packages | curate synth)
    basic, language and caption-dedup stages    (curate score)
    train a filtering network on the seed set   (train run)
    CLIP-score the pool with it                 (curate score --stages clip)
    quality tiers at equal sizes                (curate tiers --equal-size [--random-control])
    the training grid, in `lanes` processes side by side (train sweep, one per subset and seed):
        headline: tiers x budgets x seeds
        size-matched random control
        data-size axis
        --full: architectures, methods x ConvNet/ViT (with and without augmentation), text depth,
                CLIP+Aug at half the data, tiers at their own sizes
    the scaling report                          (analysis report)

Steps whose output is complete are skipped, and `train sweep` skips finished runs, so an interrupted demo
resumes. Per-step wall times land in OUT/timings.json.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from tierclip.demo.grids import DemoGrid
from tierclip.demo.pools import PoolPaths, make_pool
from tierclip.demo.steps import (
    Sweep,
    augmented_methods,
    command,
    options_spec,
    repeat,
    run_lanes,
    stage_done,
    step,
    trainable_methods,
    write_json,
)


@dataclass(frozen=True)
class Study:
    grid: DemoGrid
    paths: PoolPaths
    tiers: Path
    runs: Path

    @property
    def sweep(self) -> tuple:
        """The options every sweep shares: the pool, the scale, the eval set and the lanes' run options."""
        quiet = ("--quiet",) if self.grid.lanes > 1 else ()  # progress bars of processes side by side would interleave
        return ("--pool", self.paths.pool, "--scale", self.grid.scale, "--eval", self.paths.evalset, *quiet)

    def run_options(self, **extra) -> dict:
        """Each lane's runs: torch threads = cores / lanes; with several lanes no loader worker (on 2 cores it only
        competes with the other lane and adds a process: two 8k-sample runs side by side took 44.4 s and 2.04 GB
        summed PSS without workers, 46.4 s and 2.22 GB with one each); no resume.pt kept once a run is done (the demo
        never continues a finished run; it would hold ~100 MB per run)."""
        workers = {"loader_workers": 0} if self.grid.lanes > 1 else {}
        return {"torch_threads": max(1, (os.cpu_count() or 1) // self.grid.lanes), **workers, "keep_resume": False, **extra}

    def spec(self, name: str, comment: str, **extra) -> Path:
        return options_spec(self.runs.parent / "sweeps" / f"{name}.toml", comment, self.run_options(**extra))

    @cached_property
    def demo_spec(self) -> Path:
        """demo/sweeps/demo.toml, the sweep file every augmented-as-usual sweep reads (written once)."""
        return self.spec("demo", "the demo's run options (tierclip.demo.study.Study.run_options)")


def run_demo(out: Path, grid: DemoGrid) -> Path:
    paths, timings = make_pool(out, grid.pool)
    study = Study(grid, paths, out / "tiers", out / "runs")
    timings.update(score_pool(study, out / "filter"))
    timings.update(equal_size_tiers(study))
    sweeps = headline(study)
    if grid.axis_fraction is not None:
        sweeps += axis_sweeps(study)
    if grid.natural_fractions is not None:
        timings["tiers_natural"], natural = natural_sizes(study)
        sweeps += natural
    timings["sweeps"] = run_lanes("train the grid", sweeps, grid.lanes)
    report = out / "report"
    timings["report"] = step("scaling report", command(
        "analysis", "report", study.runs, "--out", report, "--task", grid.task, "--metric", grid.metric,
        "--headline-size", grid.headline_size, "--n-boot", grid.n_boot))
    write_json(out / "timings.json", timings)
    return report


def score_pool(study: Study, filter_run: Path) -> dict[str, float]:
    pool, grid = study.paths.pool, study.grid
    timings = {"score": step("score: basic, language, caption near-duplicates", command(
        "curate", "score", pool, "--stages", "basic,lang,text_dedup"), done=stage_done(pool, "text_dedup"))}
    timings["filter_net"] = step("train a filtering network (CLIP on the trusted seed set)", command(
        "train", "run", study.paths.seed, "--method", "clip", "--scale", grid.scale, "--lr", grid.filter_lr,
        "--samples-seen", grid.filter_samples, "--eval", study.paths.evalset, "--out", filter_run), done=filter_run / "DONE")
    timings["clip_score"] = step("CLIP-score the pool with the filtering network", command(
        "curate", "score", pool, "--stages", "clip", "--clip-model", grid.model, "--clip-pretrained",
        filter_run / "checkpoint.pt"),
        done=stage_done(pool, "clip"))
    return timings


def equal_size_tiers(study: Study) -> dict[str, float]:
    """One tier set per size: every tier drawn down to that size (quality without quantity); the headline size's set
    also holds the size-matched random draws when the grid asks for a random control."""
    grid, timings = study.grid, {}
    for size in grid.sizes:
        tier_set = study.tiers / f"n{size}"
        control = ["--random-control"] if grid.random_control and size == grid.headline_size else []
        timings[f"tiers_{size}"] = step(f"quality tiers {grid.fractions} with {size} samples each"
                                        + (", and size-matched random draws" if control else ""), command(
            "curate", "tiers", study.paths.pool, "--score", "clip_score", "--fractions", grid.fractions, "--equal-size", size,
            *control, "--out", tier_set), done=tier_set / "tiers.json")
    return timings


def tier_names(grid: DemoGrid) -> list[str]:
    """The tier folders of `curate tiers --fractions` (top<percent>), best first."""
    return [f"top{round(float(fraction) * 100)}" for fraction in grid.fractions.split(",")]


def headline(study: Study) -> list[Sweep]:
    """Every tier at the headline size x budgets x seeds; the random control (a uniform draw of the top tier's size)
    at `control_budgets` with the same seeds; the other sizes at one budget (the data-size axis)."""
    grid, tier_set = study.grid, study.tiers / f"n{study.grid.headline_size}"
    names, spec = tier_names(grid), study.demo_spec
    sweeps = [Sweep(f"headline: CLIP on {', '.join(names)} at {grid.headline_size:,} samples, {len(grid.budgets)} budgets x "
                    f"{len(grid.seeds)} seeds", (spec, *study.sweep, "--method", "clip", *repeat("--samples-seen", grid.budgets),
                                                 "--out", study.runs), tuple(tier_set / name for name in names), grid.seeds,
                    sum(grid.budgets))]
    if grid.random_control:
        control = f"random_{names[0]}"
        sweeps.append(Sweep(f"size-matched random control: CLIP on {control} at "
                            f"{', '.join(f'{b:,}' for b in grid.control_budgets)} samples seen",
                            (spec, *study.sweep, "--method", "clip", *repeat("--samples-seen", grid.control_budgets),
                             "--out", study.runs), (tier_set / control,), grid.seeds, sum(grid.control_budgets)))
    other_sizes = [size for size in grid.sizes if size != grid.headline_size]
    if other_sizes:
        sweeps.append(Sweep(f"data-size axis: CLIP on every tier at {', '.join(f'{s:,}' for s in other_sizes)} samples",
                            (spec, *study.sweep, "--method", "clip", "--samples-seen", grid.size_budget, "--out", study.runs),
                            tuple(study.tiers / f"n{s}" for s in other_sizes), grid.size_seeds, grid.size_budget * len(names)))
    return sweeps


def natural_sizes(study: Study) -> tuple[float, list[Sweep]]:
    """A small clean tier vs the whole pool at their own sizes (the repetition-aware crossover): its tier step's
    wall time and its sweep."""
    grid, natural = study.grid, study.tiers / "natural"
    took = step(f"quality tiers {grid.natural_fractions} at their own sizes", command(
        "curate", "tiers", study.paths.pool, "--score", "clip_score", "--fractions", grid.natural_fractions,
        "--out", natural), done=natural / "tiers.json")
    spec = study.demo_spec
    n_tiers = len(grid.natural_fractions.split(","))
    return took, [Sweep("a small clean tier vs the whole pool at their own sizes (repetition crossover)",
                        (spec, *study.sweep, "--method", "clip", *repeat("--samples-seen", grid.natural_budgets),
                         "--out", study.runs), (natural,), grid.seeds, sum(grid.natural_budgets) * n_tiers)]


def axis_tier(grid: DemoGrid, size: int) -> Path:
    """The subset folder of the axis tier (top<fraction %>) in the tier set of `size` (its name in tiers.json)."""
    return Path(f"n{size}") / f"top{round(float(grid.axis_fraction) * 100)}"


def axis_sweeps(study: Study) -> list[Sweep]:
    """--full: architectures, methods x ConvNet/ViT (with and without augmentation), text depth and CLIP+Aug at
    half the data, on the axis tier at `size_budget`. CLIP runs of `grid.model` come from the headline and size
    sweeps (not trained twice); each axis sweep writes under its own folder of runs/."""
    grid = study.grid
    at_budget = (study.demo_spec, *study.sweep,
                 "--samples-seen", grid.size_budget)
    sweeps = [Sweep(f"architectures at {size:,} samples: {', '.join(grid.arch_models)}",
                    (*at_budget, "--method", "clip", *repeat("--model", grid.arch_models), "--out", study.runs / f"arch-n{size}"),
                    (study.tiers / axis_tier(grid, size),), grid.seeds, grid.size_budget * len(grid.arch_models))
              for size in grid.arch_sizes]
    sweeps += method_sweeps(study, at_budget)
    sweeps.append(Sweep(f"text-encoder depth: {', '.join(grid.text_models)}",
                        (*at_budget, "--method", "clip", *repeat("--model", grid.text_models), "--out", study.runs / "text-depth"),
                        (study.tiers / axis_tier(grid, grid.headline_size),), grid.seeds,
                        grid.size_budget * len(grid.text_models)))
    half = grid.headline_size // 2
    if "clip-aug" in grid.methods and half in grid.sizes:
        sweeps.append(Sweep(f"CLIP+Aug at half the data ({half:,} samples)",
                            (*at_budget, "--method", "clip-aug", "--out", study.runs / "aug-half"),
                            (study.tiers / axis_tier(grid, half),), grid.seeds, grid.size_budget))
    return sweeps


def method_sweeps(study: Study, at_budget: tuple) -> list[Sweep]:
    """Each method model runs the wanted methods it can train (the others printed with the reason) and, with
    `noaug`, every augmented one again with its augmentation off (runs/noaug-MODEL/)."""
    grid, sweeps = study.grid, []
    clip_runs = {grid.model} | set(grid.arch_models) if grid.headline_size in grid.arch_sizes else {grid.model}
    subset = (study.tiers / axis_tier(grid, grid.headline_size),)
    noaug = study.spec("noaug", "every image augmentation off (tierclip.train.augment.AUGMENTATION_OFF)",
                       aug=augmentation_off())
    for model, (methods, left_out) in trainable_methods(grid.methods, list(grid.method_models)).items():
        for method, why in left_out.items():
            print(f"   {method} left out on {model}: {why}", flush=True)
        wanted = methods if model in clip_runs else ("clip", *methods)
        sweeps.append(Sweep(f"methods on {model}: {', '.join(wanted)}",
                            (*at_budget, *repeat("--method", wanted), "--model", model, "--out", study.runs / f"methods-{model}"),
                            subset, grid.seeds, grid.size_budget * len(wanted)))
        augmented = augmented_methods(methods)
        if grid.noaug and augmented:
            sweeps.append(Sweep(f"the same without their augmentation on {model}: {', '.join(augmented)}",
                                (noaug, *at_budget[1:], *repeat("--method", augmented), "--model", model,
                                 "--out", study.runs / f"noaug-{model}"), subset, grid.seeds,
                                grid.size_budget * len(augmented)))
    return sweeps


def augmentation_off() -> dict:
    from tierclip.train.augment import AUGMENTATION_OFF

    return dict(AUGMENTATION_OFF)
