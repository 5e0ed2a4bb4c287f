"""Every training method on the same clean synthetic pool at equal samples seen: zero-shot top-1, cost, speed.

    nice .venv/bin/python bench/bench_methods.py --out /tmp/bench-methods [--samples-seen 8000] [--seeds 0,1,2] \
        [--aug-off] [--lanes 2]
    nice .venv/bin/python bench/bench_methods.py --out /tmp/bench-methods --speed   # training-step speed only
    nice .venv/bin/python bench/bench_methods.py --out /tmp/bench-methods --flops   # GFLOPs per sample only

Builds (once) a clean-profile synthetic pool (`curate synth --profile clean`: every sample is a correct pair, so
the pool is its own clean tier) with its eval set, then runs `train run` for each seed, model and method: every
method of train.methods on each of `--models` that it can train (FILIP, FLIP and DeFILIP need a ViT tower; default
the real `--full` grid's towers, tierclip.demo.grids.REAL_METHOD_MODELS), each with its reference defaults
(docs/methods.md); with `--aug-off`, every augmented method again with train.augment.AUGMENTATION_OFF (runs
`MODEL-METHOD-noaug-sSEED`). Same budget for all (cpu-small's batch 128 and lr, `--samples-seen`, warmup 10% of
the steps), one torch thread and no loader worker per run, `--lanes` runs side by side. Finished runs (DONE) are
skipped, so an interrupted benchmark continues where it stopped; the table covers what is finished.

Reported per model, method and augmentation: zero-shot top-1 on the eval set's shape and colour tasks (mean ± sd
over seeds; FILIP and DeFILIP scored token-wise, as their reference does, marked "tw"), GFLOPs per sample from
results.json (the method's whole compute, load-independent) and its ratio to CLIP on the same model.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import benchlib

# --flops and --speed: the tiny towers of docs/benchmarks.md's cost table
GRID = {"tc-rn-tiny": ("clip", "slip", "declip"), "tc-vit-tiny": ("clip", "flip", "slip", "declip", "filip", "defilip")}
TASKS = ("shape/top1", "color/top1")


def quality_runs(models: list[str], seeds: list[int], aug_off: bool) -> list[tuple[str, str, bool, int]]:
    """(model, method, augmentation on, seed) of the quality grid, seed by seed (an interrupted grid has whole
    seeds), the cheap ConvNet first."""
    from tierclip.train.methods import METHODS

    from tierclip.demo.steps import augmented_methods, trainable_methods

    trainable = trainable_methods(tuple(METHODS), models)
    return [(model, method, aug, seed) for seed in seeds for model in models for method in trainable[model][0]
            for aug in ((True, False) if aug_off and method in augmented_methods((method,)) else (True,))]


def run_name(model: str, method: str, aug: bool, seed: int) -> str:
    return f"{model}-{method}{'' if aug else '-noaug'}-s{seed}"


def aug_off_flags() -> list[str]:
    from tierclip.train.augment import AUGMENTATION_OFF, aug_items

    return [flag for item in aug_items(AUGMENTATION_OFF) for flag in ("--aug", item)]


def run_args(pool: Path, out: Path, model: str, method: str, aug: bool, seed: int, args) -> list[str]:
    steps = -(-args.samples_seen // args.batch_size)
    queue = {"declip_queue_size": args.queue_size or args.samples_seen // 2} if has_queue(method) else {}
    return benchlib.command("train", "run", pool, out=out, method=method, model=model, scale="cpu-small",
                            samples_seen=args.samples_seen, batch_size=args.batch_size, warmup_steps=max(1, steps // 10), seed=seed,
                            torch_threads=1, loader_workers=0, log_every=5, checkpoint_every=10**6,
                            eval=pool / "eval", **queue) + ([] if aug else aug_off_flags())


def has_queue(method: str) -> bool:
    from tierclip.train.methods import method_option_keys

    return "declip_queue_size" in method_option_keys(method)


def train_all(pool: Path, runs: Path, cells: list[tuple[str, str, bool, int]], args) -> None:
    """Every run of the grid (`quality_runs`) not yet DONE, `--lanes` at a time (each one torch thread)."""
    def train(cell: tuple[str, str, bool, int]) -> None:
        out = runs / run_name(*cell)
        if (out / "DONE").exists():
            return
        shutil.rmtree(out, ignore_errors=True)
        command = run_args(pool, out, *cell, args)
        print("==", " ".join(command[1:]), file=sys.stderr, flush=True)
        benchlib.run_command(command)

    with ThreadPoolExecutor(max_workers=args.lanes) as lanes:
        list(lanes.map(train, cells))


def run_summary(run: Path) -> dict:
    """A finished run's task accuracies (token-wise where the run has them: FILIP's head) and GFLOPs per sample."""
    from tierclip.train.eval_tokenwise import PREFIX

    metrics = json.loads((run / "results.json").read_text())
    results = metrics["metrics"]
    tokenwise = all(task.replace("/", "/" + PREFIX) in results for task in TASKS)
    return {**{task: results[task.replace("/", "/" + PREFIX) if tokenwise else task] for task in TASKS},
            "gflops_per_sample": metrics["gflops_per_sample"], "tokenwise": tokenwise}


def mean_sd(values: list[float], scale: float = 100.0) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{statistics.mean(values) * scale:.1f} ± {sd:.1f}"


def table(runs: Path, cells: list[tuple[str, str, bool, int]]) -> str:
    lines = ["| model | method | augmentation | seeds | shape top-1 % | colour top-1 % | GFLOPs/sample | × CLIP compute |",
             "|---|---|---|---|---|---|---|---|"]
    done_by_cell = {}
    for model, method, aug, seed in cells:
        run = runs / run_name(model, method, aug, seed)
        done_by_cell.setdefault((model, method, aug), []).extend([run_summary(run)] if (run / "DONE").exists() else [])
    for (model, method, aug), done in done_by_cell.items():
        label = "on" if aug else "off"
        if not done:
            lines.append(f"| {model} | {method} | {label} | 0 | not run yet | | | |")
            continue
        gflops = statistics.mean(r["gflops_per_sample"] for r in done)
        clip = done_by_cell.get((model, "clip", True)) or []
        ratio = f"{gflops / statistics.mean(r['gflops_per_sample'] for r in clip):.2f}" if clip else "–"
        tw = " (tw)" if all(r["tokenwise"] for r in done) else ""
        lines.append(f"| {model} | {method}{tw} | {label} | {len(done)} | {mean_sd([r['shape/top1'] for r in done])} | "
                     f"{mean_sd([r['color/top1'] for r in done])} | {gflops:.3f} | {ratio} |")
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
    parser.add_argument("--models", type=lambda s: s.split(","), default=None,
                        help="quality grid towers, comma-separated (default: tierclip.demo.grids.REAL_METHOD_MODELS)")
    parser.add_argument("--aug-off", action="store_true", help="also run every augmented method with its augmentation off")
    parser.add_argument("--lanes", type=int, default=1, help="runs side by side (one torch thread each)")
    parser.add_argument("--table-only", action="store_true", help="only print the table of the finished runs")
    parser.add_argument("--speed", action="store_true", help="only the back-to-back training-step speed table")
    parser.add_argument("--flops", action="store_true", help="only the GFLOPs-per-sample table (tiny and B-size models)")
    parser.add_argument("--speed-batch", type=int, default=64)
    parser.add_argument("--speed-steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.models is None:
        from tierclip.demo.grids import REAL_METHOD_MODELS

        args.models = list(REAL_METHOD_MODELS)
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
    cells = quality_runs(args.models, args.seeds, args.aug_off)  # asked once: it starts a process that imports torch
    if not args.table_only:
        train_all(pool, args.out / "runs", cells, args)
    text = table(args.out / "runs", cells)
    (args.out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
