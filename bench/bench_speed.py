"""Scoring and training against the limits of their data path and model, on one pool, model, device and worker count.

    python bench/bench_speed.py --out /tmp/bench-speed          # 10,000 256-px JPEGs in one shard, ViT-B-32 at 224 px
    python bench/bench_speed.py --out /tmp/bench-speed-cpu --pairs 20000 --render-size 256 --model tc-vit-s \\
        --threads 1 --model-batches 8 --train-batch 128 --steps 20 --skip 4 --bare-steps 10 --profile   # a 2-core box
    bash bench/gpu_checks.sh                                     # on a GPU machine: ViT-B-32, bf16, 20,000 pairs

Workload: an img2dataset-style pool of `--image-size`-px JPEGs, `--shard-size` pairs per shard (synthetic scenes
stored as JPEGs and ingested resized: `benchlib.jpeg_pool`), scored and trained with `--model` (randomly initialised:
nothing is downloaded; throughput does not depend on the weights). Printed, in pairs (or samples) per second:

    D   decode limit: `--workers` processes (one torch thread each, as loader workers run) read the shard bytes
        from the tars and decode, preprocess and tokenize them with the clip stage's own item code (PairDecoder)
    M   model limit: the clip stage's forward (embed_batch) at `--batch-size` on pairs already in memory
    S   the clip stage end to end: `curate score POOL --stages clip` (start-up, tar reads, writes included)
    L   the training loader alone: `train run`'s dataset and DataLoader (`--workers` processes), nothing else
    T   `train run` (loader and step), over the logged steps after `--skip`
    B   the bare training step (benchlib.bare_step) on batches already in memory

and the ratios S / min(D, M) and T / min(L, B), with S / shared(D, M) and T / shared(L, B) where
shared(x, y) = 1 / (1/x + 1/y): what two stages can reach when they take turns on the same cores instead of
overlapping (on a CPU-only box, decoding and the model share the cores). S' is the clip stage from its first
shard's end to its last one's (start-up and first shard left out; needs 2 shards or more). Each measurement also
has its CPU seconds per 1,000 pairs (its processes, workers included; S and T as whole commands, start-up
included): on a shared machine CPU time moves far less with the load than wall time, and (D+M)/S, (L+B)/T say
how much CPU the stage and the run spend beyond decoding and the model. `--repeats` alternates the measurements
and keeps each one's best pass (the least disturbed by other work on a shared machine). `--profile` runs S and T
once more under py-spy and prints where each thread's and process's wall time goes. `--baseline TREE` measures the
clip stage of another source tree of tierclip too (S0: what the changes since bought). JSON to OUT/bench_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import benchlib


# -- D: the decode limit -----------------------------------------------------------------------
def decode_limit(cfg, pool_root: Path, limit: int) -> dict:
    """Pairs/s of `cfg.loader_workers` forked processes reading, decoding, preprocessing and tokenizing the pool's
    first `limit` pairs in the stage's chunks, with the stage's item code; the processes start before the clock."""
    import multiprocessing

    from tierclip.curate.pool import Pool
    from tierclip.curate.stages.clip import PairDecoder, draft_size, load_model
    from tierclip.train.data import build_index

    pool, (model, preprocess, tokenizer, _) = Pool(pool_root), load_model(cfg)
    index = build_index(pool, None)
    rows = list(range(min(limit, index.n)))
    chunk, workers = max(1, -(-cfg.batch_size // max(1, cfg.loader_workers))), max(1, cfg.loader_workers)
    jobs = [rows[start:start + chunk] for start in range(0, len(rows), chunk)]
    decoder = PairDecoder(preprocess, tokenizer, pool.decode_options, draft_size(cfg, model))
    with benchlib.Clock() as cpu:  # the CPU of the processes, counted when they end with the pool
        with multiprocessing.get_context("fork").Pool(workers, initializer=_decode_worker_init, initargs=(index, decoder)) as procs:
            procs.map(_noop, range(workers))
            with benchlib.Clock() as clock:
                done = sum(procs.map(_decode_rows, jobs, chunksize=1))
    return {"pairs_per_s": round(done / clock.wall, 1), "pairs": done, "seconds": round(clock.wall, 2), "processes": workers,
            "cpu_s_per_1000": cpu.per_1000(done)}


_WORKER: dict = {}


def _decode_worker_init(index, decoder) -> None:
    import torch

    torch.set_num_threads(1)  # as in a DataLoader worker
    _WORKER.update(index=index, decoder=decoder, fds={})


def _noop(_: int) -> None:
    return None


def _decode_rows(rows: list[int]) -> int:
    import os

    index, fds = _WORKER["index"], _WORKER["fds"]
    jobs = []
    for row in rows:
        tar = int(index.tar_id[row])
        if tar not in fds:
            fds[tar] = os.open(index.tar_paths[tar], os.O_RDONLY)
        fd = fds[tar]
        image = os.pread(fd, int(index.image_size[row]), int(index.image_offset[row]))
        caption = os.pread(fd, int(index.text_size[row]), int(index.text_offset[row])).decode("utf-8", errors="replace")
        jobs.append((image, caption))
    return len(_WORKER["decoder"].__getitems__(jobs))


# -- M: the model limit ------------------------------------------------------------------------
def model_limit(cfg, pool_root: Path, batches: int) -> dict:
    """Pairs/s of the clip stage's forward (embed_batch, inference mode, its autocast) on one in-memory batch."""
    import contextlib

    import torch
    from tierclip.curate.pool import Pool
    from tierclip.curate.stages.clip import PairDecoder, embed_batch, load_model

    model, preprocess, tokenizer, device = load_model(cfg)
    pool = Pool(pool_root)
    samples = [s for _, s in zip(range(cfg.batch_size), pool.samples(0), strict=False)]
    decoder = PairDecoder(preprocess, tokenizer, pool.decode_options)
    pixels, _, tokens = (part.to(device) for part in decoder.batch([(s.image, s.caption or "") for s in samples]))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else contextlib.nullcontext()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with torch.inference_mode(), autocast:
        embed_batch(model, pixels, tokens, device)  # warm-up
        sync()
        with benchlib.Clock() as clock:
            for _ in range(batches):
                embed_batch(model, pixels, tokens, device)
            sync()
    pairs = batches * len(samples)
    return {"pairs_per_s": round(pairs / clock.wall, 1), "pairs": pairs, "seconds": round(clock.wall, 2),
            "cpu_s_per_1000": clock.per_1000(pairs)}


# -- the JPEG draft trade-off ---------------------------------------------------------------------
def draft_tradeoff(cfg, pool_root: Path, args) -> dict:
    """D with `--clip-jpeg-draft` beside D without, and how far the stage's embeddings and scores move with it on the
    first `--draft-pairs` pairs (image-embedding cosine to the full decode's, clip_score differences)."""
    import dataclasses

    import numpy as np
    from tierclip.curate.pool import Pool
    from tierclip.curate.stages.clip import draft_size, encode, load_model

    drafted = dataclasses.replace(cfg, jpeg_draft=True)
    pool = Pool(pool_root)
    samples = [s for _, s in zip(range(args.draft_pairs), pool.samples(0), strict=False)]
    blobs, captions = [s.image for s in samples], [s.caption or "" for s in samples]
    (full, text), (reduced, _) = (encode(c, blobs, captions, pool.decode_options) for c in (cfg, drafted))
    cosine, delta = (full * reduced).sum(axis=1), np.abs((full * text).sum(axis=1) - (reduced * text).sum(axis=1))
    return {"draft_to": draft_size(drafted, load_model(cfg)[0]), "stored_side": stored_side(blobs[0]),
            "D_draft": decode_limit(drafted, pool_root, args.decode_pairs), "pairs": len(samples),
            "image_cosine_min": round(float(cosine.min()), 6), "image_cosine_mean": round(float(cosine.mean()), 6),
            "clip_score_abs_diff_max": round(float(delta.max()), 6), "clip_score_abs_diff_mean": round(float(delta.mean()), 6)}


def stored_side(blob: bytes) -> int:
    """The longer side of a stored image (its header only)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(blob)) as image:
        return max(image.size)


# -- L: the training loader alone ------------------------------------------------------------------
def loader_limit(pool_root: Path, args, keep: int = 4) -> tuple[dict, list[dict]]:
    """Samples/s of `train run`'s DataLoader alone over `--steps` batches (after `--skip`), and its first `keep` batches."""
    from tierclip.train.data import StreamPlan, make_loader

    dataset = benchlib.training_dataset(pool_root, args.model)
    loader = make_loader(dataset, StreamPlan(args.train_batch), 0, args.steps, args.workers, 0, args.device.startswith("cuda"))
    kept, clock = [], benchlib.Clock()
    with benchlib.Clock() as cpu:  # every step, and the workers (counted when they end with the pass)
        for step, batch in enumerate(loader):
            if step == args.skip:
                clock.start()
            if len(kept) < keep:
                kept.append({"image": batch["image"], "text": batch["text"]})
        clock.stop()
    rate = (args.steps - args.skip) * args.train_batch / clock.wall
    return {"samples_per_s": round(rate, 2), "steps": args.steps, "skip": args.skip,
            "cpu_s_per_1000": cpu.per_1000(args.steps * args.train_batch)}, kept


# -- the table -----------------------------------------------------------------------------------
def shared(a: float, b: float) -> float:
    """The rate of two stages that take turns on the same cores: 1 / (1/a + 1/b)."""
    return 1 / (1 / a + 1 / b)


def ratios(best: dict) -> dict:
    d, m, s = (best[k]["pairs_per_s"] for k in ("D", "M", "S"))
    loader, bare, t = (best[k]["samples_per_s"] for k in ("L", "B", "T"))
    found = {"S/min(D,M)": s / min(d, m), "T/min(L,B)": t / min(loader, bare),
             "S/shared(D,M)": s / shared(d, m), "T/shared(L,B)": t / shared(loader, bare)}
    cpu = {k: best[k]["cpu_s_per_1000"] for k in "DMLB"} | best["cpu_s_per_1000_without_start_up"]
    if cpu["S"]:
        found["CPU (D+M)/S"] = (cpu["D"] + cpu["M"]) / cpu["S"]
    if cpu["T"]:
        found["CPU (L+B)/T"] = (cpu["L"] + cpu["B"]) / cpu["T"]
    steady = best["S"].get("after_first_shard_pairs_per_s")
    if steady:
        found |= {"S'/min(D,M)": steady / min(d, m), "S'/shared(D,M)": steady / shared(d, m)}
    if "S0" in best:
        found["S/S0"] = s / best["S0"]["pairs_per_s"]
    return {name: round(value, 3) for name, value in found.items()}


def table(best: dict, found: dict) -> str:
    lines = ["| measurement | pairs or samples/s | CPU s per 1,000 (start-up taken out) |", "|---|---:|---:|"]
    names = {"D": "D decode limit", "M": "M model limit", "S": "S clip stage (`curate score`), end to end",
             "L": "L training loader alone", "T": "T `train run` (logged steps after the skip)", "B": "B bare training step"}
    if "S0" in best:
        names["S0"] = "S0 clip stage, the --baseline checkout's code"
    steady = best["cpu_s_per_1000_without_start_up"]
    for key, label in names.items():
        value = best[key].get("pairs_per_s", best[key].get("samples_per_s"))
        cpu = f"{best[key]['cpu_s_per_1000']:,.2f}" + (f" ({steady[key]:,.2f})" if steady.get(key) else "")
        lines.append(f"| {label} | {value:,.1f} | {cpu} |")
    if best["S"].get("after_first_shard_pairs_per_s"):
        lines.append(f"| S' clip stage after its first shard | {best['S']['after_first_shard_pairs_per_s']:,.1f} | |")
    lines += [f"| {name} | {value:.2f} | |" for name, value in found.items()]
    return "\n".join(lines)


def clip_fields(checkpoint: Path, args) -> dict:
    """The clip stage's config fields this bench scores with (S, its profile, its start-up)."""
    return {"model": args.model, "pretrained": checkpoint, "device": args.device, "batch_size": args.batch_size,
            "loader_workers": args.workers, "torch_threads": args.threads}


def train_options(args) -> dict:
    return {"scale": "small", "model": args.model, "batch_size": args.train_batch, "samples_seen": args.steps * args.train_batch,
            "warmup_steps": 2, "loader_workers": args.workers, "torch_threads": args.threads, "device": args.device}


def profiles(pool: Path, checkpoint: Path, args) -> dict:
    """S and T (and S0) once more under py-spy: seconds per role and activity (main thread, loader workers, other
    threads)."""
    import shutil

    found = {}
    shutil.rmtree(args.out / "run-profiled", ignore_errors=True)
    stage = benchlib.clip_stage_command(pool, **clip_fields(checkpoint, args))
    commands = {"S": (stage, None), "T": (benchlib.command("train", "run", pool, out=args.out / "run-profiled", log_every=1,
                                                           checkpoint_every=10**9, **train_options(args)), None)}
    if args.baseline:
        commands["S0"] = (stage, args.baseline)
    for name, (command, checkout) in commands.items():
        raw = args.out / f"profile-{name}.txt"
        wall = benchlib.profile_command(command, raw, checkout=checkout)
        seconds = {k: round(v, 1) for k, v in benchlib.profile_seconds(raw).items() if "helper threads" not in k}
        found[name] = {"wall_s": round(wall, 1), "seconds": seconds}
        print(json.dumps({f"profile {name}": found[name]}), flush=True)
    return found


def stage_config(checkpoint: Path, args):
    from tierclip.curate.stages.clip import ClipConfig

    return ClipConfig(model=args.model, pretrained=str(checkpoint), batch_size=args.batch_size, loader_workers=args.workers,
                      device=args.device, torch_threads=args.threads)


def start_up(checkpoint: Path, args) -> dict:
    """CPU seconds of S and T on an 8-pair pool (one step for T): what the two commands spend whatever the work
    (interpreter, imports, model load, loader workers' start), to take out of their CPU per pair."""
    small = benchlib.jpeg_pool(args.out / "pool-start-up", 8, args.image_size, 8, 1, args.render_size or None)
    stage = benchlib.clip_stage(small, **clip_fields(checkpoint, args))
    run = benchlib.train_run(small, args.out / "run-start-up", 0, **{**train_options(args), "samples_seen": args.train_batch})
    return {"S": stage["cpu_s_per_1000"] * stage["pairs"] / 1000, "S_pairs": stage["pairs"],
            "T": run["cpu_s_per_1000"] * run["samples_seen"] / 1000, "T_samples": run["samples_seen"]}


def without_start_up(best: dict, fixed: dict) -> dict:
    """CPU seconds per 1,000 pairs of S and T with the start-up's CPU and work taken out (None where the start-up
    is not smaller than the whole: too little work to tell them apart)."""
    found = {}
    for key, count, small in (("S", "pairs", "S_pairs"), ("T", "samples_seen", "T_samples")):
        total, items = best[key]["cpu_s_per_1000"] * best[key][count] / 1000, best[key][count]
        found[key] = round((total - fixed[key]) * 1000 / (items - fixed[small]), 2) if total > fixed[key] and items > fixed[small] else None
    return found


def measure_all(pool: Path, checkpoint: Path, args) -> dict:
    """Each measurement `--repeats` times, alternating; the best pass of each (the least CPU for the start-up)."""
    cfg = stage_config(checkpoint, args)
    passes: dict[str, list[dict]] = {k: [] for k in ["D", "M", "S", "L", "B", "T", "0"] + (["S0"] if args.baseline else [])}
    for _ in range(args.repeats):
        passes["0"].append(start_up(checkpoint, args))
        passes["D"].append(decode_limit(cfg, pool, args.decode_pairs))
        passes["M"].append(model_limit(cfg, pool, args.model_batches))
        passes["S"].append(benchlib.clip_stage(pool, **clip_fields(checkpoint, args)))
        loader, batches = loader_limit(pool, args)
        passes["L"].append(loader)
        steps = [batches[i % len(batches)] for i in range(args.bare_steps)]
        passes["B"].append(benchlib.bare_step(benchlib.build_model(args.model), steps, 1, args.device, args.precision,
                                              warmup_steps=2, weight_decay=0.2))  # as `--scale small`
        passes["T"].append(benchlib.train_run(pool, args.out / "run", args.skip, **train_options(args)))
        if args.baseline:
            passes["S0"].append(benchlib.clip_stage(pool, checkout=args.baseline, **clip_fields(checkpoint, args)))
        print(json.dumps({k: v[-1] for k, v in passes.items()}), flush=True)
    best = {k: max(v, key=lambda r: r.get("pairs_per_s", r.get("samples_per_s"))) for k, v in passes.items() if k != "0"}
    fixed = {k: min(p[k] for p in passes["0"]) for k in ("S", "T")} | {k: passes["0"][0][k] for k in ("S_pairs", "T_samples")}
    return best | {"start_up_cpu_s": fixed, "cpu_s_per_1000_without_start_up": without_start_up(best, fixed)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="scratch folder (pool, checkpoint, run, bench_speed.json)")
    parser.add_argument("--pairs", type=int, default=10_000, help="pairs in the pool")
    parser.add_argument("--shard-size", type=int, default=10_000, help="pairs per shard (DataComp ships 10,000)")
    parser.add_argument("--image-size", type=int, default=256, help="side of the stored JPEGs")
    parser.add_argument("--render-size", type=int, default=0, help="side the scenes are rendered at before ingest resizes "
                        "them (0: 1.5 x --image-size; --image-size: no resize, a faster build)")
    parser.add_argument("--model", default="ViT-B-32", help="open_clip model (or a project config such as tc-vit-s)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", default="fp32", choices=benchlib.PRECISIONS, help="bare step: fp32, or bf16 (CUDA autocast)")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes: D's, and the loader workers of S, L and T")
    parser.add_argument("--threads", type=int, default=0, help="torch threads of the model (0: torch's default)")
    parser.add_argument("--batch-size", type=int, default=256, help="clip stage batch")
    parser.add_argument("--model-batches", type=int, default=2, help="M: batches timed")
    parser.add_argument("--decode-pairs", type=int, default=4096, help="D: pairs decoded")
    parser.add_argument("--train-batch", type=int, default=64, help="training batch (L, T, B)")
    parser.add_argument("--steps", type=int, default=12, help="training steps (L, T)")
    parser.add_argument("--bare-steps", type=int, default=6, help="bare step: steps (the first one is not timed)")
    parser.add_argument("--skip", type=int, default=2, help="first steps left out of L's and T's rates")
    parser.add_argument("--draft-pairs", type=int, default=0, help="pairs for the --clip-jpeg-draft trade-off (0: not measured)")
    parser.add_argument("--profile", action="store_true", help="run S and T once more under py-spy: where their time goes")
    parser.add_argument("--baseline", type=Path, help="another tierclip source tree (e.g. `git archive` of an older commit): "
                        "its clip stage is measured too (S0, and S/S0: what the changes since bought)")
    parser.add_argument("--repeats", type=int, default=1, help="passes over all measurements; the best of each is kept")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.threads:  # M and B run in this process: with the model's threads of S and T
        import torch

        torch.set_num_threads(args.threads)
    pool = benchlib.jpeg_pool(args.out / "pool", args.pairs, args.image_size, args.shard_size, max(1, args.workers),
                              args.render_size or None)
    checkpoint = benchlib.save_random_checkpoint(args.out / f"checkpoint-{args.model}", args.model)
    machine = benchlib.machine_facts(args.device)
    best = measure_all(pool, checkpoint, args)
    found = ratios(best)
    result = {"machine": machine, "load_average_after": round(os.getloadavg()[0], 2),
              "args": {k: str(v) for k, v in vars(args).items()}, "best": best, "ratios": found}
    if args.profile:
        result["profile"] = profiles(pool, checkpoint, args)
    if args.draft_pairs:
        result["draft"] = draft_tradeoff(stage_config(checkpoint, args), pool, args)
        print(json.dumps({"draft": result["draft"]}), flush=True)
    (args.out / "bench_speed.json").write_text(json.dumps(result, indent=2))
    print(table(best, found))


if __name__ == "__main__":
    main()
