"""Training throughput on CPU: `train run` beside the bare training step, and FLIP's speed-up over CLIP.

The bare step is benchlib.bare_step: `train run`'s own step (forward, ClipLoss, backward, gradient clipping, AdamW
with open_clip_train's parameter groups, warmup + cosine lr, logit-scale clamp) on batches already decoded in
memory, with no loader, logging or checkpoints: an upper bound for the run. `train run` is the command itself:
data read from the pool's tar shards by a DataLoader worker. Samples/s exclude the first `--skip` steps on both
sides.

    .venv/bin/python bench/bench_train.py --out /tmp/bench-train [--steps 40] [--batch-size 128] [--repeats 2]

The pool is smaller than the budget (1280 samples, 40 steps of 128 = 4 epochs) and the first 10 steps
(the first epoch: worker start and decoding) are left out of `train_run`, so it measures the loop with
the loader's per-sample cache warm, beside the bare step on the same samples; `train_run_end_to_end`
includes everything (first-epoch decode, checkpoint writes). FLIP's speed-up is `train run --method flip`
over `--method clip` on tc-vit-tiny, and the image tower alone (forward + backward) at mask 0.5 vs none.
(The data-path limits themselves, decode and loader, are bench/bench_speed.py's.)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import benchlib


def train_run_rate(pool: Path, out: Path, model: str, method: str, args, steps: int) -> tuple[float, float]:
    """Samples/s of `train run` (data from tars, one loader worker): over the steps after `--skip`, and end to end."""
    summary = benchlib.train_run(pool, out, args.skip, method=method, scale="cpu-small", model=model,
                                 samples_seen=steps * args.batch_size, batch_size=args.batch_size, loader_workers=1)
    return summary["samples_per_s"], summary["samples_per_s_end_to_end"]


def in_memory_batches(pool: Path, model: str, steps: int, batch: int) -> list[dict]:
    """The pool's samples as `steps` batches, cycling over the pool like the training stream does."""
    import torch

    dataset = benchlib.training_dataset(pool, model)
    distinct = dataset.index.n // batch
    batches = [{k: torch.stack([dataset[p][k] for p in range(s * batch, (s + 1) * batch)]) for k in ("image", "text")}
               for s in range(distinct)]
    return [batches[s % distinct] for s in range(steps)]


def image_tower_rate(model_name: str, batch: int, steps: int, patch_dropout: float) -> float:
    """Images/s of the image tower alone (forward + backward), with or without patch dropout."""
    import torch

    model = benchlib.build_model(model_name, patch_dropout).train()
    images = torch.randn(batch, 3, 32, 32)
    model.encode_image(images).sum().backward()
    started = time.perf_counter()
    for _ in range(steps):
        model.encode_image(images).sum().backward()
    return steps * batch / (time.perf_counter() - started)


def compare_loops(pool: Path, out: Path, model: str, args, steps: int) -> dict:
    batches = in_memory_batches(pool, model, steps, args.batch_size)
    ours, end_to_end, bare = [], [], []
    for _ in range(args.repeats):  # alternate the two sides; keep each side's best (least disturbed) pass
        bare.append(benchlib.bare_step(benchlib.build_model(model), batches, args.skip, lr=2e-3)["samples_per_s"])
        rate, whole = train_run_rate(pool, out / f"run-{model}", model, "clip", args, steps)
        ours.append(rate)
        end_to_end.append(whole)
    return {"bare_step": max(bare), "train_run": max(ours), "ratio": max(ours) / max(bare), "train_run_end_to_end": max(end_to_end)}


def flip_speedup(pool: Path, args, clip_rate: float) -> dict:
    flip = [train_run_rate(pool, args.out / "run-flip", "tc-vit-tiny", "flip", args, args.vit_steps)[0] for _ in range(args.repeats)]
    tower = [image_tower_rate("tc-vit-tiny", args.batch_size, 10, p) for p in (0.0, 0.5)]
    return {"train_run_flip_0.5": max(flip), "train_run_clip": clip_rate, "speedup_train_run": max(flip) / clip_rate,
            "image_tower_unmasked": tower[0], "image_tower_masked_0.5": tower[1], "speedup_image_tower": tower[1] / tower[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="scratch folder (pool and runs)")
    parser.add_argument("--pool-size", type=int, default=1280, help="samples in the synthetic pool (the stream cycles over it)")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per timed run (ResNet)")
    parser.add_argument("--vit-steps", type=int, default=20, help="optimizer steps per timed run (ViT, FLIP)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--skip", type=int, default=10, help="first steps left out (worker start, first-epoch decode)")
    parser.add_argument("--repeats", type=int, default=2, help="alternate the two sides this many times; keep the best")
    args = parser.parse_args()

    pool = benchlib.synth_pool(args.out / "pool", args.pool_size, 32, 1, max_objects=1)
    results = {"tc-rn-tiny": compare_loops(pool, args.out, "tc-rn-tiny", args, args.steps)}
    print(json.dumps(results), flush=True)
    results["tc-vit-tiny"] = compare_loops(pool, args.out, "tc-vit-tiny", args, args.vit_steps)
    print(json.dumps({"tc-vit-tiny": results["tc-vit-tiny"]}), flush=True)
    results["flip"] = flip_speedup(pool, args, results["tc-vit-tiny"]["train_run"])
    print(json.dumps({"flip": results["flip"]}), flush=True)
    (args.out / "bench_train.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
