"""The study on a pool, step by step:

    pool, seed set, eval set                    (curate ingest packages | curate synth)
    basic, language and caption-dedup stages    (curate score)
    train a filtering network on the seed set   (train run)
    CLIP-score the pool with it                 (curate score --stages clip)
    quality tiers at equal sizes                (curate tiers --equal-size [--random-control])
    headline: tiers x budgets x seeds           (train sweep)
    size-matched random control                 (train sweep)
    data-size axis                              (train sweep)
    --full: architectures, methods x ConvNet/ViT (with and without augmentation), text depth,
            CLIP+Aug at half the data, tiers at their own sizes                              (train sweep)
    the scaling report                          (analysis report)

Steps whose output is complete are skipped, and `train sweep` skips finished runs, so an interrupted demo
resumes. Per-step wall times land in OUT/timings.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tierclip.demo.grids import DemoGrid
from tierclip.demo.pools import PoolPaths, make_pool
from tierclip.demo.steps import augmented_methods, command, repeat, stage_done, step, trainable_methods, write_json


@dataclass(frozen=True)
class Study:
    grid: DemoGrid
    paths: PoolPaths
    tiers: Path
    runs: Path

    @property
    def sweep(self) -> list:
        """The options every sweep shares."""
        return ["--pool", self.paths.pool, "--scale", self.grid.scale, "--eval", self.paths.evalset]


def run_demo(out: Path, grid: DemoGrid) -> Path:
    paths, timings = make_pool(out, grid.pool)
    study = Study(grid, paths, out / "tiers", out / "runs")
    timings.update(score_pool(study, out / "filter"))
    timings.update(equal_size_tiers(study))
    timings.update(headline(study))
    if grid.axis_fraction is not None:
        timings.update(run_axes(study))
    if grid.natural_fractions is not None:
        timings.update(natural_sizes(study))
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


def headline(study: Study) -> dict[str, float]:
    """Every tier at the headline size x budgets x seeds; the random control (a uniform draw of the top tier's size)
    at `control_budgets` with the same seeds; the other sizes at one budget (the data-size axis)."""
    grid, tier_set = study.grid, study.tiers / f"n{study.grid.headline_size}"
    names = tier_names(grid)
    timings = {"sweep_headline": step(f"headline: CLIP on {', '.join(names)} at {grid.headline_size:,} samples, "
                                      f"{len(grid.budgets)} budgets x {len(grid.seeds)} seeds", command(
        "train", "sweep", *study.sweep, *repeat("--subset", [tier_set / name for name in names]), "--method", "clip",
        *repeat("--samples-seen", grid.budgets), *repeat("--seed", grid.seeds), "--out", study.runs))}
    if grid.random_control:
        control = f"random_{names[0]}"
        timings["sweep_control"] = step(f"size-matched random control: CLIP on {control} at "
                                        f"{', '.join(f'{b:,}' for b in grid.control_budgets)} samples seen", command(
            "train", "sweep", *study.sweep, "--subset", tier_set / control, "--method", "clip",
            *repeat("--samples-seen", grid.control_budgets), *repeat("--seed", grid.seeds), "--out", study.runs))
    other_sizes = [size for size in grid.sizes if size != grid.headline_size]
    if other_sizes:
        subsets = repeat("--subset", [study.tiers / f"n{s}" for s in other_sizes])
        timings["sweep_sizes"] = step(f"data-size axis: CLIP on every tier at {', '.join(f'{s:,}' for s in other_sizes)} samples",
                                      command("train", "sweep", *study.sweep, *subsets, "--method", "clip", "--samples-seen",
                                              grid.size_budget, *repeat("--seed", grid.size_seeds), "--out", study.runs))
    return timings


def natural_sizes(study: Study) -> dict[str, float]:
    """A small clean tier vs the whole pool at their own sizes (the repetition-aware crossover)."""
    grid, natural = study.grid, study.tiers / "natural"
    timings = {"tiers_natural": step(f"quality tiers {grid.natural_fractions} at their own sizes", command(
        "curate", "tiers", study.paths.pool, "--score", "clip_score", "--fractions", grid.natural_fractions,
        "--out", natural), done=natural / "tiers.json")}
    timings["sweep_natural"] = step("a small clean tier vs the whole pool at their own sizes (repetition crossover)", command(
        "train", "sweep", *study.sweep, "--subset", natural, "--method", "clip", *repeat("--samples-seen", grid.natural_budgets),
        *repeat("--seed", grid.seeds), "--out", study.runs))
    return timings


def axis_tier(grid: DemoGrid, size: int) -> Path:
    """The subset folder of the axis tier (top<fraction %>) in the tier set of `size` (its name in tiers.json)."""
    return Path(f"n{size}") / f"top{round(float(grid.axis_fraction) * 100)}"


def run_axes(study: Study) -> dict[str, float]:
    """--full: architectures, methods x ConvNet/ViT (with and without augmentation), text depth and CLIP+Aug at
    half the data, on the axis tier at `size_budget`. CLIP runs of `grid.model` come from the headline and size
    sweeps (not trained twice); each axis sweep writes under its own folder of runs/."""
    grid, timings = study.grid, {}
    at_budget = [*study.sweep, "--samples-seen", grid.size_budget, *repeat("--seed", grid.seeds)]
    for size in grid.arch_sizes:
        timings[f"sweep_arch_{size}"] = step(f"architectures at {size:,} samples: {', '.join(grid.arch_models)}", command(
            "train", "sweep", *at_budget, "--subset", study.tiers / axis_tier(grid, size), "--method", "clip",
            *repeat("--model", grid.arch_models), "--out", study.runs / f"arch-n{size}"))
    timings.update(method_axis(study, at_budget))
    timings["sweep_text_depth"] = step(f"text-encoder depth: {', '.join(grid.text_models)}", command(
        "train", "sweep", *at_budget, "--subset", study.tiers / axis_tier(grid, grid.headline_size), "--method", "clip",
        *repeat("--model", grid.text_models), "--out", study.runs / "text-depth"))
    half = grid.headline_size // 2
    if "clip-aug" in grid.methods and half in grid.sizes:
        timings["sweep_aug_half"] = step(f"CLIP+Aug at half the data ({half:,} samples)", command(
            "train", "sweep", *at_budget, "--subset", study.tiers / axis_tier(grid, half), "--method", "clip-aug",
            "--out", study.runs / "aug-half"))
    return timings


def method_axis(study: Study, at_budget: list) -> dict[str, float]:
    """Each method model runs the wanted methods it can train (the others printed with the reason) and, with
    `noaug`, every augmented one again with its augmentation off (runs/noaug-MODEL/)."""
    grid, timings = study.grid, {}
    clip_runs = {grid.model} | set(grid.arch_models) if grid.headline_size in grid.arch_sizes else {grid.model}
    subset = study.tiers / axis_tier(grid, grid.headline_size)
    for model, (methods, left_out) in trainable_methods(grid.methods, list(grid.method_models)).items():
        for method, why in left_out.items():
            print(f"   {method} left out on {model}: {why}", flush=True)
        wanted = methods if model in clip_runs else ("clip", *methods)
        timings[f"sweep_methods_{model}"] = step(f"methods on {model}: {', '.join(wanted)}", command(
            "train", "sweep", *at_budget, "--subset", subset, *repeat("--method", wanted), "--model", model,
            "--out", study.runs / f"methods-{model}"))
        augmented = augmented_methods(methods)
        if grid.noaug and augmented:
            spec = noaug_spec(study.runs.parent / "sweeps" / "noaug.toml")
            timings[f"sweep_noaug_{model}"] = step(f"the same without their augmentation on {model}: {', '.join(augmented)}",
                                                   command("train", "sweep", spec, *at_budget, "--subset", subset,
                                                           *repeat("--method", augmented), "--model", model,
                                                           "--out", study.runs / f"noaug-{model}"))
    return timings


def noaug_spec(path: Path) -> Path:
    """A sweep file whose only content is `[options] aug` = every image augmentation off (train.augment)."""
    from tierclip.train.augment import AUGMENTATION_OFF

    values = ", ".join(f"{key} = {list(value) if isinstance(value, tuple) else value}" for key, value in AUGMENTATION_OFF.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# every image augmentation off (tierclip.train.augment.AUGMENTATION_OFF)\n[options]\naug = {{ {values} }}\n")
    return path
