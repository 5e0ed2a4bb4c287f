"""GPU throughput through the CUDA paths: `train run` (bf16 autocast), torchrun (nccl DDP) and the clip stage (bf16).

On one synthetic pool (`curate synth`, 64-px images that each model's preprocess resizes):

    train_run      `train run --device cuda` on each model: samples/s over the logged steps after `--skip`
                   (data read from the pool's tars by DataLoader workers), and end to end;
    bare_step      the same model's training step (benchlib.bare_step: the run's optimizer, schedule, clipping and
                   clamp) in bf16 autocast on batches already on the GPU: the ceiling the train run is measured against;
    torchrun       `torchrun --nproc_per_node <GPUs> -m tierclip.train.cli run ...`: the nccl process group and DDP;
    clip_stage     `curate score --stages clip --device cuda` with the checkpoint the first model's train run wrote
                   (a data-filtering network trained by tierclip), pairs/s over the whole pool.

    python bench/bench_gpu.py --out /tmp/bench-gpu [--pool-size 50000] [--steps 100] [--batch-size 512]

The data-path limits of the clip stage and of `train run` (decode, model, loader) are bench/bench_speed.py's.
Every part prints one JSON line as it finishes and the whole lands in OUT/bench_gpu.json; a part that
fails is recorded with its error and the others still run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import benchlib


def train_options(model: str, args) -> dict:
    return {"scale": "small", "model": model, "samples_seen": args.steps * args.batch_size, "batch_size": args.batch_size,
            "warmup_steps": 10, "loader_workers": args.workers, "device": args.device}


def torchrun(pool: Path, out: Path, model: str, args) -> dict:
    import shutil

    import torch

    gpus = torch.cuda.device_count() if args.device.startswith("cuda") else 1
    shutil.rmtree(out, ignore_errors=True)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(gpus),
              "-m", "tierclip.train.cli", "run", str(pool), "--out", str(out)]
    wall = benchlib.run_command(launch + benchlib.flags({"log_every": 1, "checkpoint_every": 10**9, **train_options(model, args)}))
    return {**benchlib.run_summary(out, args.skip), "wall_s": round(wall, 1), "processes": gpus}


def bare(model: str, args) -> dict:
    from tierclip.curate.devices import resolve_device

    device = resolve_device(args.device)
    built = benchlib.build_model(model)
    precision = "bf16" if device.startswith("cuda") else "fp32"
    return benchlib.bare_step(built, benchlib.random_batches(built, 30, args.batch_size), 10, device, precision)


def parts(pool: Path, args) -> list[tuple]:
    models = args.models.split(",")
    found = [(f"train_run/{m}", lambda m=m: benchlib.train_run(pool, args.out / f"run-{m}", args.skip, **train_options(m, args)))
             for m in models]
    found += [(f"bare_step/{m}", lambda m=m: bare(m, args)) for m in models]
    first = models[0]
    found += [(f"torchrun/{first}", lambda: torchrun(pool, args.out / "run-ddp", first, args)),
              (f"clip_stage/{first}", lambda: benchlib.clip_stage(
                  pool, model=first, pretrained=args.out / f"run-{first}" / "checkpoint.pt", device=args.device,
                  batch_size=args.batch_size, loader_workers=args.workers))]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="scratch folder (pool, runs, bench_gpu.json)")
    parser.add_argument("--pool-size", type=int, default=50_000, help="pairs in the synthetic pool")
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps per train run")
    parser.add_argument("--batch-size", type=int, default=512, help="global batch (train) and forward batch (clip stage)")
    parser.add_argument("--skip", type=int, default=10, help="first logged steps left out of samples/s (warm-up)")
    parser.add_argument("--workers", type=int, default=12, help="DataLoader workers (train run, clip stage) and synth workers")
    parser.add_argument("--device", default="cuda", help="cuda (the point of this bench); cpu only to smoke-test the script")
    parser.add_argument("--models", default="ViT-B-32,RN50", help="open_clip models to train (the first is DDP'd and scores)")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": benchlib.machine_facts(args.device), "args": {k: str(v) for k, v in vars(args).items()}}
    started = time.perf_counter()
    pool = benchlib.synth_pool(args.out / "pool", args.pool_size, 64, args.workers, profile="web")
    results["synth_s"] = round(time.perf_counter() - started, 1)
    for name, part in parts(pool, args):
        try:
            results[name] = part()
        except Exception as error:  # a bench records a failed part and measures the rest
            results[name] = {"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()[-1500:]}
        print(json.dumps({name: results[name]}), flush=True)
        (args.out / "bench_gpu.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
