"""Fake run folders in the format `train run` writes (config.json, eval.jsonl, results.json, DONE),
with accuracies drawn from known curves plus noise, for the analysis tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tierclip.analysis.fit import repetition_error

# Per-tier repetition-law parameters: cleaner tiers learn faster but lose utility sooner when repeated.
TIER_LAWS = {
    "top10": {"a": 0.05, "b": -0.5, "d": 0.1, "tau": 2.0},
    "top30": {"a": 0.07, "b": -0.42, "d": 0.1, "tau": 3.0},
    "full": {"a": 0.10, "b": -0.35, "d": 0.1, "tau": 4.0},
}
GT_SHARES = {
    "top10": {"gt_clean": 0.95, "gt_misaligned": 0.03, "gt_boilerplate": 0.02},
    "top30": {"gt_clean": 0.80, "gt_misaligned": 0.15, "gt_boilerplate": 0.05},
    "full": {"gt_clean": 0.40, "gt_misaligned": 0.40, "gt_boilerplate": 0.10, "gt_attribute_swap": 0.10},
}
METHOD_GAIN = {"clip": 0.0, "slip": 0.02, "flip": -0.01, "clip-aug": 0.01}
GFLOPS_PER_SAMPLE = {"clip": 0.05, "slip": 0.12, "flip": 0.03, "clip-aug": 0.05, "declip": 0.15}
RANDOM_SHAPE = 0.125
# What train run records about a model (train.models.describe_model), for a few fake models.
MODELS = {
    "tiny-rn": {"model_family": "convnet", "params": 8_000_000, "image_params": 1_500_000, "text_params": 6_500_000,
                "image_width": 16, "image_depth": 4, "text_width": 128, "text_depth": 3, "text_context": 16,
                "vocab_size": 49408, "image_size": 32},
}


def fake_model(name: str, family: str, image_params: int, text_depth: int = 3, image_width: int = 16) -> dict:
    """Register a fake model's metadata (text params grow with depth: 0.2 M per layer over a 6.3 M embedding)."""
    text_params = 6_300_000 + 200_000 * text_depth
    MODELS[name] = {"model_family": family, "params": image_params + text_params, "image_params": image_params,
                    "text_params": text_params, "image_width": image_width, "image_depth": 4, "text_width": 128,
                    "text_depth": text_depth, "text_context": 16, "vocab_size": 49408, "image_size": 32}
    return MODELS[name]


def true_accuracy(tier: str, method: str, subset_size: int, samples_seen: int) -> float:
    err = repetition_error(samples_seen, subset_size, **TIER_LAWS[tier])[0]
    return float(np.clip(1.0 - err + METHOD_GAIN[method], 0.0, 1.0))


def write_run(root: Path, *, tier: str, method: str, subset_size: int, samples_seen: int, seed: int,
              shape_top1: float, name: str | None = None, done: bool = True, model: str = "tiny-rn",
              gflops_per_sample: float | None = None, samples_per_s: float | None = None, aug: dict | None = None,
              extra_rows: tuple[dict, ...] = (), manifest: dict | None = None) -> Path:
    """One finished run; `aug` is stored as `train run --aug` stores it (config.json run.method_cfg.aug), `extra_rows`
    are more eval.jsonl rows, `manifest` more subset-manifest keys (fraction, tier_kind, ...)."""
    name = name or f"{tier}-n{subset_size}-s{samples_seen}-{method}-{model}-seed{seed}"
    run = root / name
    run.mkdir(parents=True)
    manifest = {"tier": tier, "tier_set": "tiers", "rule": f"clip_score top fraction ({tier})", "n": subset_size,
                "gt_shares": GT_SHARES.get(tier, {}), **(manifest or {})}
    run_config = {"method": method, "method_cfg": {"name": method, "aug": dict(aug or {})}, "seed": seed}
    (run / "config.json").write_text(json.dumps({"method": method, "subset_manifest": manifest, "seed": seed, "run": run_config}))
    rows = [{"task": "shape", "metric": "top1", "value": shape_top1, "random_score": RANDOM_SHAPE},
            {"task": "color", "metric": "top1", "value": min(1.0, shape_top1 + 0.3), "random_score": RANDOM_SHAPE},
            *extra_rows]
    (run / "eval.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    per_sample = gflops_per_sample if gflops_per_sample is not None else GFLOPS_PER_SAMPLE[method]
    results = {"run": name, "method": method, "model": model, **MODELS[model], "samples_per_s": samples_per_s,
               "pool": "synthetic", "subset": f"{tier}-{subset_size}",
               "tier": tier, "subset_size": subset_size, "unique_samples": min(subset_size, samples_seen),
               "samples_seen": samples_seen, "repetitions": samples_seen / subset_size, "gflops_per_sample": per_sample,
               "gflops": per_sample * samples_seen, "wall_time_s": 12.5, "device": "cpu", "seed": seed,
               "metrics": {f"{r['task']}/{r['metric']}": r["value"] for r in rows}}
    (run / "results.json").write_text(json.dumps(results))
    if done:
        (run / "DONE").write_text("")
    return run


def write_grid(root: Path, tiers=("top10", "top30", "full"), sizes=(1000, 3000, 10000), methods=("clip", "slip"),
               budgets=(30000,), seeds=(0, 1), noise=0.005, rng_seed=0) -> list[Path]:
    """tiers x sizes x methods x budgets x seeds runs, accuracies from TIER_LAWS plus Gaussian noise."""
    rng = np.random.default_rng(rng_seed)
    runs = []
    for tier in tiers:
        for size in sizes:
            for method in methods:
                for budget in budgets:
                    for seed in seeds:
                        acc = true_accuracy(tier, method, size, budget) + rng.normal(0, noise)
                        runs.append(write_run(root, tier=tier, method=method, subset_size=size, samples_seen=budget,
                                              seed=seed, shape_top1=float(np.clip(acc, 0, 1))))
    return runs
