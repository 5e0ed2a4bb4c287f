"""The demo's first steps: a pool, the seed set the filtering network trains on, and the eval set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tierclip.demo.grids import PackagesPool, SynthPool
from tierclip.demo.steps import command, step


@dataclass(frozen=True)
class PoolPaths:
    pool: Path
    seed: Path      # the trusted seed set: the filtering network's training data
    evalset: Path


def make_packages(out: Path, recipe: PackagesPool) -> tuple[PoolPaths, dict[str, float]]:
    pool = out / "pool"
    took = step("build the real-image pool from packages (+ trusted seed set, held-out eval set)", command(
        "curate", "ingest", "packages", "--out", pool, "--sources", recipe.sources, "--misaligned", recipe.misaligned,
        "--foreign", recipe.foreign, "--holdout", recipe.holdout, "--trusted-n", recipe.trusted_n,
        "--max-pixels", recipe.max_pixels, "--image-size", recipe.image_size), done=pool / "packages.json")
    return PoolPaths(pool, pool / "trusted", pool / "eval"), {"ingest": took}


def make_synth(out: Path, recipe: SynthPool) -> tuple[PoolPaths, dict[str, float]]:
    pool, seed = out / "pool", out / "seed"
    timings = {"synth": step("synthesize a noisy web-like pool and a clean eval set", command(
        "curate", "synth", "--n", recipe.pool_size, "--out", pool, "--seed", 0, "--image-size", recipe.image_size,
        "--eval-n", recipe.eval_n), done=pool / "pool.json")}
    timings["synth_seed"] = step("synthesize a trusted clean seed set (the filtering network's training data)", command(
        "curate", "synth", "--n", recipe.seed_size, "--out", seed, "--seed", 1, "--image-size", recipe.image_size,
        "--profile", "clean", "--eval-n", 0), done=seed / "pool.json")
    return PoolPaths(pool, seed, pool / "eval"), timings


# Pool recipe type -> the steps that build it.
POOL_MAKERS = {PackagesPool: make_packages, SynthPool: make_synth}


def make_pool(out: Path, recipe: PackagesPool | SynthPool) -> tuple[PoolPaths, dict[str, float]]:
    return POOL_MAKERS[type(recipe)](out, recipe)
