"""`train run`: one training run from a pool (and optional subset) into a run folder.

```
RUN/
  config.json              RunConfig resolved + model, subset manifest copy, data counts, versions
  model_configs/NAME.json  the model's open_clip config (so the checkpoint loads by name anywhere)
  metrics.jsonl            one line per logged step (train/loop.py)
  checkpoint.pt            {"state_dict": ...}: open_clip.create_model_and_transforms(NAME, pretrained=PATH)
  resume.pt                full state for --resume
  eval.jsonl               when --eval was given (train/evaluate.py)
  results.json             the summary analysis reads
  DONE                     written last
  .run.lock                flock of the run writing here (a second run into the folder is refused)
```
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from contextlib import ExitStack
from pathlib import Path

from tierclip.curate import atomic
from tierclip.curate.errors import UserError
from tierclip.curate.procs import RunLock
from tierclip.train.checkpoint import check_readable
from tierclip.train.config import RunConfig

DONE, CONFIG, RESULTS = "DONE", "config.json", "results.json"
RUN_LOCK = ".run.lock"  # flock held by the run writing this folder (curate/procs.py RunLock)
# Fields a resumed run must share with the run it continues.
RESUME_KEYS = ("pool", "subset", "method", "model", "seed", "batch_size", "samples_seen", "accum_steps")


@dataclasses.dataclass(frozen=True)
class RunData:
    """The pool, subset and sample index a run trains on."""

    pool: object
    subset: object | None
    index: object

    @property
    def subset_size(self) -> int:
        return self.subset.n if self.subset is not None else self.pool.info.n_samples


def check_inputs(cfg: RunConfig) -> tuple[object, object | None]:
    """Pool, subset (against that pool), eval folders and run folder, checked before torch is imported (~10 s, 1 GB):
    a mistyped path is reported at once. Notes and warnings about the subset's pool go to stderr."""
    import sys

    from tierclip.curate.pool import Pool
    from tierclip.curate.subset import check_subset_pool, read_subset

    check_out_folder(cfg)
    for root in cfg.eval_roots:
        if not Path(root).is_dir():
            raise UserError(f"--eval {root}: no such eval set folder")
    if cfg.pretrained and Path(cfg.pretrained).suffix in (".pt", ".pth", ".bin", ".safetensors") \
            and not Path(cfg.pretrained).is_file():
        raise UserError(f"--pretrained {cfg.pretrained}: no such checkpoint file")
    for weights in _checkpoints_read(cfg):
        check_readable(weights)
    pool = Pool(cfg.pool)
    pool.require_rows("train on")
    if not pool.has_images():
        raise UserError(f"{pool.tar_path(0)}: missing shard; train needs a pool with images")
    subset = read_subset(cfg.subset) if cfg.subset else None
    if subset is not None:
        if subset.n == 0:
            raise UserError(f"{subset.path / 'uids.parquet'}: empty subset (0 uids); nothing to train on")
        for message in check_subset_pool(subset, pool, cfg.allow_pool_mismatch):
            print(message, file=sys.stderr)
    return pool, subset


def _checkpoints_read(cfg: RunConfig) -> list[Path]:
    """The checkpoint files this run will load: --pretrained (a file), and resume.pt with --resume."""
    found = [Path(cfg.pretrained)] if cfg.pretrained and Path(cfg.pretrained).is_file() else []
    resume = Path(cfg.out) / "resume.pt"
    return found + ([resume] if cfg.resume and resume.is_file() else [])


def open_data(cfg: RunConfig, pool=None, subset=None) -> RunData:
    """Index the samples to train on; subset uids the pool lacks are refused unless --allow-pool-mismatch."""
    import sys

    from tierclip.train.data import build_index

    if pool is None:
        pool, subset = check_inputs(cfg)
    index = build_index(pool, subset.uids["uid"] if subset is not None else None)
    if index.damaged:
        lost = index.counts["missing_in_shard"]
        if not cfg.allow_damaged_shards:
            raise UserError(f"{index.damaged[0]}; {lost} usable samples in {len(index.damaged)} damaged shard(s): re-ingest "
                            "or repair the pool, or pass --allow-damaged-shards to train without them")
        print(f"WARNING: training without {lost} usable samples of {len(index.damaged)} damaged shard(s) "
              f"(--allow-damaged-shards); first: {index.damaged[0]}", file=sys.stderr)
    missing = index.counts["subset"] - index.counts["in_pool"] if subset is not None else 0
    if missing:
        problem = f"{subset.path}: {missing} of {subset.n} subset uids are not rows of pool {pool.root}"
        if not cfg.allow_pool_mismatch:
            raise UserError(f"{problem}; use the subset's own pool, or pass --allow-pool-mismatch to train without them")
        print(f"WARNING: {problem}; training on the other {subset.n - missing} (--allow-pool-mismatch)", file=sys.stderr)
    return RunData(pool, subset, index)


def resolve_budget(cfg: RunConfig, usable: int) -> RunConfig:
    """`--epochs E` becomes samples seen = E × usable samples (rounded up)."""
    if cfg.epochs is not None:
        return dataclasses.replace(cfg, samples_seen=math.ceil(cfg.epochs * usable))
    return cfg


def check_out_folder(cfg: RunConfig) -> None:
    from tierclip.curate.pool import check_not_pool_files

    out = Path(cfg.out)
    check_not_pool_files(out)
    if (out / RUN_LOCK).exists():  # a run writing here now: say so before anything else about the folder
        with RunLock(out / RUN_LOCK, "`train run`"):
            pass
    if (out / DONE).exists():
        raise UserError(f"{out}: this run is finished (DONE exists); choose another --out")
    if (out / "resume.pt").exists() and not cfg.resume:
        raise UserError(f"{out}: holds an unfinished run; pass --resume to continue it, or choose another --out")


def check_same_run(cfg: RunConfig) -> None:
    """A resumed run must continue the same experiment (compared after the budget is resolved)."""
    out = Path(cfg.out)
    if cfg.resume and (out / CONFIG).is_file():
        before = json.loads((out / CONFIG).read_text())["run"]
        now = cfg.to_json()
        changed = [k for k in RESUME_KEYS if before.get(k) != now.get(k)]
        if changed:
            raise UserError(f"{out / CONFIG}: --resume with different {', '.join(changed)} than the run it continues")


def run_training(cfg: RunConfig) -> Path:
    """Train, evaluate (when eval roots are given), write results.json and DONE. Returns the run folder."""
    pool, subset = check_inputs(cfg)  # before importing torch: a wrong path is reported in a moment
    import torch
    from tierclip.train import distributed, methods, models

    out = Path(cfg.out)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    models.model_config(cfg.model)  # unknown model: a clear error before any work
    overrides = methods.model_overrides(cfg.method, cfg.method_cfg, cfg.model)  # unknown method: likewise
    data = open_data(cfg, pool, subset)
    cfg = resolve_budget(cfg, data.index.n)
    check_same_run(cfg)
    ctx = distributed.setup(cfg.device)
    held = ExitStack()
    try:
        if ctx.is_main:  # one run writes here at a time: a second one (or --resume of this one) is refused in one line
            held.enter_context(RunLock(out / RUN_LOCK, "`train run`"))
        from tierclip.train.data import StreamPlan

        StreamPlan(cfg.batch_size, cfg.accum_steps, ctx.rank, ctx.world_size)  # a batch that does not split: fail now
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        model, _, _ = models.create_model(cfg.model, cfg.pretrained, overrides, device=ctx.device)
        method = methods.build_method(cfg.method, model, cfg.method_cfg).to(ctx.device)
        model_info = _model_info(model)
        dataset = _dataset(model, method, cfg, data.index)
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            models.write_model_config(cfg.model, out / "model_configs")
            atomic.write_json(out / CONFIG, _config_record(cfg, data, ctx))
        distributed.barrier(ctx)
        flops_start = _gflops(model, method, cfg.batch_size)
        from tierclip.train.loop import train_loop

        state = train_loop(model, method, dataset, cfg, ctx, out)
        flops_end = _gflops(model, method, cfg.batch_size)  # on every rank: a method's losses gather across ranks
        if ctx.is_main:
            _finish(cfg, data, ctx, state, _run_gflops(flops_start, flops_end, cfg, method), model_info)
        distributed.barrier(ctx)
    finally:
        held.close()
        distributed.teardown(ctx)
    return out


def _dataset(model, method, cfg: RunConfig, index):
    import open_clip
    from tierclip.train.augment import make_view_transform
    from tierclip.train.data import PositionDataset
    from tierclip.train.methods.towers import vocab_size
    from tierclip.train.models import get_tokenizer
    from tierclip.train.text_views import TextContext

    pre = open_clip.get_model_preprocess_cfg(model)
    tokenizer = get_tokenizer(cfg.model)
    text = TextContext(tokenizer, vocab_size(model))  # the vocabulary read from the model, never assumed
    views_cfg = method.view_config(cfg.aug)
    views = {v: make_view_transform(v, pre["size"], pre["mean"], pre["std"], views_cfg, text) for v in method.views if v != "text"}
    return PositionDataset(index, views, tokenizer, cfg.seed)


def _config_record(cfg: RunConfig, data: RunData, ctx) -> dict:
    import open_clip
    import torch
    from tierclip.curate.subset import tool_version

    return {
        "run": cfg.to_json(), "model": cfg.model, "method": cfg.method,
        "subset_manifest": data.subset.manifest if data.subset is not None else None,
        "pool_info": data.pool.info.to_json(), "data_counts": data.index.counts,
        "world_size": ctx.world_size, "device": ctx.device,
        "versions": {"tierclip": tool_version(), "torch": torch.__version__, "open_clip": open_clip.__version__,
                     "python": platform.python_version()},
    }


def _model_info(model) -> dict:
    """The model's family, tower sizes, widths, depths, context and vocabulary (train.models.describe_model)."""
    import open_clip
    from tierclip.train.models import describe_model

    return describe_model(model, open_clip.get_model_preprocess_cfg(model)["size"])


def _gflops(model, method, global_batch: int) -> float:
    """Forward+backward GFLOPs per sample of the whole method as it stands now (train/flops.py): SLIP's and DeCLIP's
    extra views and heads count too, FILIP's token interaction at the global batch, FLIP's patch dropout saves what it saves."""
    import open_clip
    from tierclip.train.flops import method_gflops_per_sample

    return method_gflops_per_sample(method, model, open_clip.get_model_preprocess_cfg(model)["size"], model.context_length,
                                    global_batch=global_batch)


def _run_gflops(start: float, end: float, cfg: RunConfig, method) -> tuple[float, float]:
    """(per-sample, total) GFLOPs. A method whose cost changes at the end (FLIP's unmasked tuning) is counted
    per phase: the count at progress 0 for the first (1 - final share) of training, the count at progress 1 after."""
    tail = method.final_phase_share() if start != end else 0.0
    per_sample = start * (1 - tail) + end * tail
    return per_sample, per_sample * cfg.steps * cfg.batch_size


def _finish(cfg: RunConfig, data: RunData, ctx, state, gflops: tuple, model_info: dict) -> None:
    from tierclip.train.data import repetitions, unique_seen

    out = Path(cfg.out)
    metrics, eval_time = {}, 0.0
    if cfg.eval_roots:
        from tierclip.train.evaluate import evaluate_run, main_metrics

        started = time.perf_counter()
        metrics = main_metrics(evaluate_run(out, list(cfg.eval_roots), device=ctx.device))
        eval_time = time.perf_counter() - started
    manifest = data.subset.manifest if data.subset is not None else {}
    results = {
        "run": out.name, "method": cfg.method, "model": cfg.model, "pool": data.pool.info.name,
        "subset": data.subset.name if data.subset is not None else None, "tier": manifest.get("tier"),
        "tier_set": manifest.get("tier_set"), "gt_shares": manifest.get("gt_shares"),
        "subset_size": data.subset_size, "usable_samples": data.index.n,
        "unique_samples": unique_seen(state.samples_seen, data.index.n), "samples_seen": state.samples_seen,
        "repetitions": repetitions(state.samples_seen, data.index.n), "corrupt_skipped": state.n_corrupt,
        "gflops_per_sample": gflops[0], "gflops": gflops[1], "wall_time_s": round(state.wall_time_s, 2),
        "samples_per_s": _throughput(state),
        "eval_time_s": round(eval_time, 2), "device": _device_name(ctx.device), "world_size": ctx.world_size,
        "seed": cfg.seed, "scale": cfg.scale, "batch_size": cfg.batch_size, "steps": cfg.steps,
        "final_loss": state.last_loss, "resumed_from_step": state.resumed_from, **model_info, "metrics": metrics,
    }
    atomic.write_json(out / RESULTS, results)
    atomic.write_bytes(out / DONE, b"")
    if not cfg.keep_resume:  # after DONE: a finished run is never resumed
        (out / "resume.pt").unlink(missing_ok=True)


def _throughput(state) -> float | None:
    """Measured training samples per second (samples seen / training wall time; evaluation not counted)."""
    return round(state.samples_seen / state.wall_time_s, 2) if state.wall_time_s > 0 else None


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
