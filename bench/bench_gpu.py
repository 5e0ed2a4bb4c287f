"""GPU throughput through the CUDA paths: `train run` (bf16 autocast), torchrun (nccl DDP) and the clip stage (bf16).

On one synthetic pool (`curate synth`, 64-px images that each model's preprocess resizes):

    train_run      `train run --device cuda` on open_clip's ViT-B-32 and RN50: samples/s over the logged steps
                   after `--skip` (data read from the pool's tars by DataLoader workers), and end to end;
    bare_step      the same model's forward + ClipLoss + backward + AdamW step in bf16 autocast on batches
                   already on the GPU (no loader): the compute-bound ceiling the train run is measured against;
    torchrun       `torchrun --nproc_per_node <GPUs> -m tierclip.train.cli run ...`: the nccl process group and DDP;
    clip_stage     `curate score --stages clip --device cuda` with the ViT-B-32 checkpoint the train run wrote
                   (a data-filtering network trained by tierclip), pairs/s over the whole pool.

    python bench/bench_gpu.py --out /tmp/bench-gpu [--pool-size 50000] [--steps 100] [--batch-size 512]

Every part prints one JSON line as it finishes and the whole lands in OUT/bench_gpu.json; a part that
fails is recorded with its error and the others still run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from pathlib import Path

CLI_ENV = {"HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "NO_ALBUMENTATIONS_UPDATE": "1"}


def run_cli(args: list[str]) -> float:
    """Run a console command; its wall seconds. Raises with the command's last output when it fails."""
    import os

    started = time.perf_counter()
    done = subprocess.run(args, env={**os.environ, **CLI_ENV}, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args[:6])} ... exited {done.returncode}: {done.stderr[-2000:]}")
    return time.perf_counter() - started


def synth_pool(root: Path, n: int, workers: int) -> Path:
    if not (root / "pool.json").exists():
        run_cli([sys.executable, "-m", "tierclip.curate.cli", "synth", "--n", str(n), "--out", str(root), "--image-size", "64",
                 "--eval-n", "0", "--workers", str(workers)])
    return root


def train_args(pool: Path, out: Path, model: str, steps: int, batch: int, workers: int, device: str) -> list[str]:
    return [str(pool), "--out", str(out), "--scale", "small", "--model", model, "--samples-seen", str(steps * batch),
            "--batch-size", str(batch), "--warmup-steps", "10", "--log-every", "1", "--checkpoint-every", str(10**9),
            "--loader-workers", str(workers), "--device", device]


def run_summary(out: Path, batch: int, skip: int) -> dict:
    """Samples/s after `skip` logged steps (from metrics.jsonl), end to end, and what results.json says of the run."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    timed = rows[skip:]
    results = json.loads((out / "results.json").read_text())
    return {"samples_per_s": round(len(timed) * batch / sum(batch / r["samples_per_s"] for r in timed), 1),
            "samples_per_s_end_to_end": round(results["samples_seen"] / results["wall_time_s"], 1),
            "first_loss": rows[0]["loss"], "last_loss": rows[-1]["loss"], "steps": len(rows),
            "device": results.get("device"), "world_size": results.get("world_size")}


def train_run(pool: Path, out: Path, model: str, steps: int, batch: int, workers: int, skip: int, device: str) -> dict:
    wall = run_cli([sys.executable, "-m", "tierclip.train.cli", "run"] + train_args(pool, out, model, steps, batch, workers, device))
    return {**run_summary(out, batch, skip), "wall_s": round(wall, 1)}


def torchrun(pool: Path, out: Path, model: str, steps: int, batch: int, workers: int, skip: int, device: str) -> dict:
    import torch

    gpus = torch.cuda.device_count() if device == "cuda" else 1
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(gpus),
              "-m", "tierclip.train.cli", "run"]
    wall = run_cli(launch + train_args(pool, out, model, steps, batch, workers, device))
    return {**run_summary(out, batch, skip), "wall_s": round(wall, 1), "processes": gpus}


def bare_step(model_name: str, steps: int, batch: int, skip: int, device: str) -> dict:
    """Samples/s of forward + ClipLoss + backward + AdamW in bf16 autocast on random batches already on the GPU."""
    import torch
    from open_clip.loss import ClipLoss
    from tierclip.train.models import create_model

    torch.manual_seed(0)
    model, _, _ = create_model(model_name)
    model = model.to(device).train()
    size = model.visual.image_size
    size = size if isinstance(size, int) else size[0]
    images = torch.randn(batch, 3, size, size, device=device)
    texts = torch.randint(1, model.vocab_size, (batch, model.context_length), device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6)
    loss_fn = ClipLoss()
    sync = torch.cuda.synchronize if device == "cuda" else lambda: None
    for step in range(steps):
        if step == skip:
            sync()
            started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            image_features, text_features, logit_scale = model(images, texts)[:3]
            loss = loss_fn(image_features, text_features, logit_scale)
        loss.backward()
        optimizer.step()
    sync()
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    return {"samples_per_s": round((steps - skip) * batch / (time.perf_counter() - started), 1),
            "peak_gpu_memory_gib": round(peak, 2)}


def clip_stage(pool: Path, checkpoint: Path, model: str, batch: int, workers: int, n: int, device: str) -> dict:
    args = [sys.executable, "-m", "tierclip.curate.cli", "score", str(pool), "--stages", "clip", "--clip-model", model,
            "--clip-pretrained", str(checkpoint), "--clip-device", device, "--clip-batch-size", str(batch),
            "--clip-loader-workers", str(workers), "--workers", "1", "--force"]
    wall = run_cli(args)
    import polars as pl

    scores = pl.read_parquet(pool / "scores" / "clip" / "*.parquet")["clip_score"]
    return {"pairs": n, "wall_s": round(wall, 1), "pairs_per_s": round(n / wall, 1),
            "scored": int(scores.is_not_null().sum()), "score_mean": round(float(scores.mean()), 4)}


def machine_facts(device: str) -> dict:
    import platform

    import open_clip
    import torch

    name = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or platform.machine()
    return {"device": name, "gpus": torch.cuda.device_count(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "open_clip": open_clip.__version__}


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
    results: dict = {"machine": machine_facts(args.device), "args": {k: str(v) for k, v in vars(args).items()}}
    models = args.models.split(",")
    started = time.perf_counter()
    pool = synth_pool(args.out / "pool", args.pool_size, args.workers)
    results["synth_s"] = round(time.perf_counter() - started, 1)
    parts = [(f"train_run/{m}", lambda m=m: train_run(pool, args.out / f"run-{m}", m, args.steps, args.batch_size,
                                                      args.workers, args.skip, args.device)) for m in models]
    parts += [(f"bare_step/{m}", lambda m=m: bare_step(m, 30, args.batch_size, 10, args.device)) for m in models]
    parts += [(f"torchrun/{models[0]}", lambda: torchrun(pool, args.out / "run-ddp", models[0], args.steps,
                                                         args.batch_size, args.workers, args.skip, args.device)),
              (f"clip_stage/{models[0]}", lambda: clip_stage(pool, args.out / f"run-{models[0]}" / "checkpoint.pt",
                                                             models[0], args.batch_size, args.workers, args.pool_size, args.device))]
    for name, part in parts:
        try:
            results[name] = part()
        except Exception as error:  # a bench records a failed part and measures the rest
            results[name] = {"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()[-1500:]}
        print(json.dumps({name: results[name]}), flush=True)
        (args.out / "bench_gpu.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
