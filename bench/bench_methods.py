"""Every training method on the same clean synthetic pool at equal samples seen: zero-shot top-1, cost, speed.

    nice .venv/bin/python bench/bench_methods.py --out /tmp/bench-methods [--samples-seen 8000] [--seeds 0,1,2]
    nice .venv/bin/python bench/bench_methods.py --out /tmp/bench-methods --speed   # training-step speed only
    nice .venv/bin/python bench/bench_methods.py --out /tmp/bench-methods --flops   # GFLOPs per sample only

Builds (once) a clean-profile synthetic pool (`curate synth --profile clean`: every sample is a correct pair, so
the pool is its own clean tier) with its eval set, then runs `train run` for each seed, model and method:
tc-rn-tiny with clip, slip, declip; tc-vit-tiny with those plus flip, filip and defilip (FILIP and FLIP need a
ViT tower). Same budget for all (cpu-small's batch 128 and lr, `--samples-seen`, warmup 10% of the steps),
one torch thread and one loader worker per run. Finished runs (DONE) are skipped, so an interrupted
benchmark continues where it stopped; the table covers what is finished.

Reported per model and method: zero-shot top-1 on the eval set's shape and colour tasks (mean ± sd over seeds),
GFLOPs per sample from results.json (the method's whole compute, load-independent) and its ratio to CLIP on the
same model, and training samples/s (median of the logged windows after the first 10 steps, mean over seeds)
relative to CLIP: measured while other work shares the CPU, so only the ratio means much.
`--flops` counts each method's GFLOPs per sample (train/flops.py, what results.json reports) on the tiny configs
at batch 128 and on ViT-B-32 / RN50 at DataComp's global batch of 4,096 (FILIP's token interaction grows with it).
`--speed` measures the training step alone, back to back: each method's forward, backward and AdamW step on
the same in-memory batch (real caption views, random images), alternating the methods `--repeats` times and
keeping each one's best pass, so that a change of load between methods matters less than in the runs.
DeCLIP's nearest-neighbour queue is sized to the run (`--queue-size`, default half the samples seen) as the
DeCLIP paper's 65,536 would never fill in a run this short.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

import benchlib

GRID = {"tc-rn-tiny": ("clip", "slip", "declip"), "tc-vit-tiny": ("clip", "flip", "slip", "declip", "filip", "defilip")}
TASKS = ("shape/top1", "color/top1")


def run_args(pool: Path, out: Path, model: str, method: str, seed: int, args) -> list[str]:
    steps = -(-args.samples_seen // args.batch_size)
    queue = {"declip_queue_size": args.queue_size or args.samples_seen // 2} if has_queue(method) else {}
    return benchlib.command("train", "run", pool, out=out, method=method, model=model, scale="cpu-small",
                            samples_seen=args.samples_seen, batch_size=args.batch_size, warmup_steps=max(1, steps // 10), seed=seed,
                            torch_threads=1, loader_workers=1, log_every=5, checkpoint_every=10**6, eval=pool / "eval", **queue)


def has_queue(method: str) -> bool:
    from tierclip.train.methods import method_option_keys

    return "declip_queue_size" in method_option_keys(method)


def train_all(pool: Path, runs: Path, args) -> None:
    """Model by model (the cheap ConvNet first), seed by seed: an interrupted benchmark has whole seeds."""
    for model, methods in GRID.items():
        for seed in args.seeds:
            for method in methods:
                out = runs / f"{model}-{method}-s{seed}"
                if (out / "DONE").exists():
                    continue
                shutil.rmtree(out, ignore_errors=True)
                command = run_args(pool, out, model, method, seed, args)
                print("==", " ".join(command[1:]), file=sys.stderr, flush=True)
                benchlib.run_command(command)


def run_summary(run: Path) -> dict:
    results = json.loads((run / "results.json").read_text())
    rows = benchlib.read_metrics(run)
    rates = [row["samples_per_s"] for row in rows if row["step"] > 10] or [rows[-1]["samples_per_s"]]
    return {**{task: results["metrics"][task] for task in TASKS}, "gflops_per_sample": results["gflops_per_sample"],
            "samples_per_s": statistics.median(rates)}


def mean_sd(values: list[float], scale: float = 100.0) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{statistics.mean(values) * scale:.1f} ± {sd:.1f}"


def table(runs: Path, seeds: list[int]) -> str:
    lines = ["| model | method | seeds | shape top-1 % | colour top-1 % | GFLOPs/sample | × CLIP compute | samples/s | × CLIP speed |",
             "|---|---|---|---|---|---|---|---|---|"]
    for model, methods in GRID.items():
        summaries = {m: [run_summary(runs / f"{model}-{m}-s{s}") for s in seeds if (runs / f"{model}-{m}-s{s}" / "DONE").exists()]
                     for m in methods}
        clip = summaries.get("clip") or []
        for method, done in summaries.items():
            if not done:
                lines.append(f"| {model} | {method} | 0 | not run yet | | | | | |")
                continue
            gflops = statistics.mean(r["gflops_per_sample"] for r in done)
            rate = statistics.mean(r["samples_per_s"] for r in done)
            clip_gflops = statistics.mean(r["gflops_per_sample"] for r in clip) if clip else None
            clip_rate = statistics.mean(r["samples_per_s"] for r in clip) if clip else None
            lines.append(f"| {model} | {method} | {len(done)} | {mean_sd([r['shape/top1'] for r in done])} | "
                         f"{mean_sd([r['color/top1'] for r in done])} | {gflops:.3f} | "
                         f"{gflops / clip_gflops:.2f} | {rate:.0f} | {rate / clip_rate:.2f} |" if clip else
                         f"| {model} | {method} | {len(done)} | {mean_sd([r['shape/top1'] for r in done])} | "
                         f"{mean_sd([r['color/top1'] for r in done])} | {gflops:.3f} | – | {rate:.0f} | – |")
    return "\n".join(lines)


def step_rates(model_name: str, methods: tuple[str, ...], batch: int, steps: int, repeats: int, queue: int) -> dict:
    """Samples/s of one training step (forward, backward, AdamW) per method, best of `repeats` alternating passes."""
    import random
    import time

    import torch
    from tierclip.train.methods import MethodConfig, build_method, model_overrides
    from tierclip.train.methods.towers import vocab_size
    from tierclip.train.models import create_model, get_tokenizer
    from tierclip.train.text_views import EdaView, MlmView, TextContext

    tokenizer = get_tokenizer(model_name)
    words = "red green blue yellow circle square star triangle".split()
    rng = random.Random(0)
    captions = [f"a photo of a {rng.choice(words[:4])} {rng.choice(words[4:])}" for _ in range(batch)]
    setups = {}
    for method in methods:
        cfg = MethodConfig(name=method, declip_queue_size=queue)
        torch.manual_seed(0)
        model = create_model(model_name, overrides=model_overrides(method, cfg, model_name))[0]
        module = build_method(method, model, cfg)
        text = TextContext(tokenizer, vocab_size(model))
        views = {"text": tokenizer(captions), "text_eda": torch.stack([EdaView(text)(c) for c in captions]),
                 "text_mlm": torch.stack([MlmView(text, cfg.declip_mask_rate)(c) for c in captions])}
        size = model.visual.image_size
        size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        views |= {v: torch.randn(batch, 3, *size) for v in module.views if v.startswith("image")}
        optimizer = torch.optim.AdamW([*model.parameters(), *module.parameters()], lr=1e-4)
        setups[method] = (model.train(), module.train(), {v: views[v] for v in module.views}, optimizer)
    best = dict.fromkeys(methods, 0.0)
    for _ in range(repeats):
        for method, (model, module, views, optimizer) in setups.items():
            for step in range(steps + 1):
                if step == 1:
                    started = time.perf_counter()
                optimizer.zero_grad()
                module(model, views)["loss"].backward()
                optimizer.step()
            best[method] = max(best[method], steps * batch / (time.perf_counter() - started))
    return best


FLOP_MODELS = {"tc-rn-tiny": (GRID["tc-rn-tiny"], 128), "tc-vit-tiny": (GRID["tc-vit-tiny"], 128),
               "RN50": (GRID["tc-rn-tiny"], 4096), "ViT-B-32": (GRID["tc-vit-tiny"], 4096)}


def flops_table() -> str:
    import open_clip
    from tierclip.train.flops import method_gflops_per_sample
    from tierclip.train.methods import MethodConfig, build_method, model_overrides
    from tierclip.train.models import create_model

    lines = ["| model | global batch | method | GFLOPs/sample | × CLIP |", "|---|---|---|---|---|"]
    for model_name, (methods, batch) in FLOP_MODELS.items():
        counts = {}
        for method in methods:
            cfg = MethodConfig(name=method)
            model = create_model(model_name, overrides=model_overrides(method, cfg, model_name))[0]
            size = open_clip.get_model_preprocess_cfg(model)["size"]
            counts[method] = method_gflops_per_sample(build_method(method, model, cfg), model, size, model.context_length,
                                                      global_batch=batch)
            lines.append(f"| {model_name} | {batch} | {method} | {counts[method]:.3f} | {counts[method] / counts['clip']:.2f} |")
    return "\n".join(lines)


def speed_table(rates: dict) -> str:
    lines = ["| model | method | samples/s (step only) | × CLIP speed |", "|---|---|---|---|"]
    for model, by_method in rates.items():
        for method, rate in by_method.items():
            lines.append(f"| {model} | {method} | {rate:.0f} | {rate / by_method['clip']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="scratch folder (pool, runs, table)")
    parser.add_argument("--pool-size", type=int, default=3000)
    parser.add_argument("--eval-n", type=int, default=400)
    parser.add_argument("--samples-seen", type=int, default=8000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--queue-size", type=int, default=0, help="DeCLIP queue (0 = half the samples seen)")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--table-only", action="store_true", help="only print the table of the finished runs")
    parser.add_argument("--speed", action="store_true", help="only the back-to-back training-step speed table")
    parser.add_argument("--flops", action="store_true", help="only the GFLOPs-per-sample table (tiny and B-size models)")
    parser.add_argument("--speed-batch", type=int, default=64)
    parser.add_argument("--speed-steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.flops:
        text = flops_table()
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "flops.md").write_text(text + "\n")
        print(text)
        return
    if args.speed:
        import torch

        torch.set_num_threads(1)
        rates = {model: step_rates(model, methods, args.speed_batch, args.speed_steps, args.repeats,
                                   args.queue_size or args.samples_seen // 2) for model, methods in GRID.items()}
        text = speed_table(rates)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "speed.md").write_text(text + "\n")
        print(text)
        return

    pool = benchlib.synth_pool(args.out / "pool", args.pool_size, 32, 1, max_objects=1, eval_n=args.eval_n)
    if not args.table_only:
        train_all(pool, args.out / "runs", args)
    text = table(args.out / "runs", args.seeds)
    (args.out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
