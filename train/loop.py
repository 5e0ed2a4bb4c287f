"""The one training loop. It does not know which method it trains.

`train_loop` takes an open_clip model, a method (`nn.Module` with
`forward(model, batch) -> {"loss", parts...}` and `on_progress(model, p)`),
the position dataset and a `RunConfig`, and runs optimizer steps
`[start, cfg.steps)`: AdamW with open_clip's parameter groups (no weight decay
on gains, biases and logit_scale), linear warmup then cosine decay, bf16
autocast on CUDA (fp32 on CPU), gradient accumulation, gradient clipping,
the logit-scale window (every parameter named `logit_scale`), checkpoints every `checkpoint_every` steps and at the end,
exact resume from `resume.pt`, `metrics.jsonl`, and progress output (curate/progress.py).

Gradient accumulation sums the gradients of `accum_steps` micro-batches, each
with its own contrastive loss (its negatives are the micro-batch, not the
global batch; open_clip_train caches features to avoid that, which needs
method-specific code the loop does not have).
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from tierclip.curate import atomic
from tierclip.train import checkpoint
from tierclip.train.config import OptimConfig, RunConfig
from tierclip.train.data import PositionDataset, StreamPlan, make_loader
from tierclip.train.distributed import DistContext, all_sum, barrier, gather_objects

RESUME, CHECKPOINT, METRICS = "resume.pt", "checkpoint.pt", "metrics.jsonl"


@dataclass
class LoopState:
    step: int = 0
    samples_seen: int = 0
    wall_time_s: float = 0.0
    n_corrupt: int = 0
    resumed_from: int | None = None
    last_loss: float | None = None


def _no_decay(name: str, param) -> bool:
    """open_clip_train's rule: gains, biases, norms and logit_scale get no weight decay."""
    return param.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name


def build_optimizer(module, optim: OptimConfig):
    import torch

    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if _no_decay(n, p)], "weight_decay": 0.0},
        {"params": [p for n, p in named if not _no_decay(n, p)], "weight_decay": optim.weight_decay},
    ]
    return torch.optim.AdamW(groups, lr=optim.lr, betas=(optim.beta1, optim.beta2), eps=optim.eps)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup to 1 over `warmup` steps, then cosine decay to 0 at `total` (open_clip_train's cosine_lr)."""
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / span))


def build_scheduler(optimizer, warmup: int, total: int):
    import torch

    def factor(step: int) -> float:
        return lr_factor(step, warmup, total)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _autocast(device: str):
    import torch

    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def train_loop(model, method, dataset: PositionDataset, cfg: RunConfig, ctx: DistContext, out: Path) -> LoopState:
    import torch

    out = Path(out)
    from tierclip.train.methods import MethodStep  # model + method heads as one module: DDP wraps it, every path stays synchronised

    step_module = MethodStep(model, method).to(ctx.device)
    optimizer = build_optimizer(step_module, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim.warmup_steps, cfg.steps)
    state = LoopState()
    torch.manual_seed(cfg.seed * 1000 + ctx.rank)  # per-rank stream for dropout/masks; the model is already built
    if cfg.resume and (out / RESUME).is_file():
        state = _restore(out / RESUME, step_module, optimizer, scheduler, ctx)
    if ctx.is_main:
        _truncate_metrics(out / METRICS, state.step)
    trainable = step_module
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        ids = [ctx.local_rank] if ctx.device.startswith("cuda") else None
        trainable = DistributedDataParallel(step_module, device_ids=ids)
    clamp_logit_scales(step_module, cfg.optim)
    plan = StreamPlan(cfg.batch_size, cfg.accum_steps, ctx.rank, ctx.world_size)
    loader = make_loader(dataset, plan, state.step, cfg.steps, cfg.loader_workers, cfg.seed, ctx.device.startswith("cuda"))
    _run_steps(trainable, step_module, optimizer, scheduler, loader, cfg, ctx, out, state)
    state.n_corrupt = int(all_sum(ctx, state.n_corrupt))
    return state


def _run_steps(trainable, step_module, optimizer, scheduler, loader, cfg: RunConfig, ctx: DistContext, out: Path,
               state: LoopState) -> None:
    import torch
    from tierclip.curate.progress import progress

    model, method = step_module.model, step_module.method
    bar = progress(total=cfg.steps, initial=state.step, desc="train", unit="step", disable=not ctx.is_main, dynamic_ncols=True)
    batches = iter(loader)
    window_start, window_samples = time.perf_counter(), 0
    while state.step < cfg.steps:
        started = time.perf_counter()
        method.on_progress(model, state.step / cfg.steps)
        parts = _optimizer_step(trainable, step_module, optimizer, batches, cfg, ctx, state)
        scheduler.step()
        state.step += 1
        state.samples_seen += cfg.batch_size
        state.wall_time_s += time.perf_counter() - started
        window_samples += cfg.batch_size
        state.last_loss = parts["loss"]
        if ctx.is_main and (state.step % cfg.log_every == 0 or state.step == cfg.steps):
            rate = window_samples / max(1e-9, time.perf_counter() - window_start)
            _log(out / METRICS, state, optimizer, parts, rate)
            bar.set_postfix(loss=f"{parts['loss']:.4f}", samples_s=f"{rate:.0f}")
            window_start, window_samples = time.perf_counter(), 0
        bar.update(1)
        if state.step % cfg.checkpoint_every == 0 or state.step == cfg.steps:
            save_state(out, cfg.model, step_module, optimizer, scheduler, state, ctx)
    bar.close()
    with torch.no_grad():
        method.on_progress(model, 1.0)


def _optimizer_step(trainable, step_module, optimizer, batches, cfg: RunConfig, ctx: DistContext, state: LoopState) -> dict:
    import torch

    optimizer.zero_grad(set_to_none=True)
    totals: dict[str, float] = {}
    for accum in range(cfg.accum_steps):
        batch = next(batches)
        state.n_corrupt += int(batch.pop("n_corrupt").sum())  # counted on the CPU: no wait for the device here
        batch = {k: v.to(ctx.device, non_blocking=True) for k, v in batch.items()}
        last = accum == cfg.accum_steps - 1
        sync = nullcontext() if last or not ctx.distributed else trainable.no_sync()
        with sync:
            with _autocast(ctx.device):
                parts = trainable(batch)
            (parts["loss"] / cfg.accum_steps).backward()
        for name, value in parts.items():
            totals[name] = totals.get(name, 0.0) + float(value.detach()) / cfg.accum_steps
    if not all(math.isfinite(v) for v in totals.values()):
        from tierclip.curate.errors import UserError

        raise UserError(f"step {state.step}: loss is not finite ({totals}); lower --lr or check the data")
    if cfg.optim.grad_clip:
        torch.nn.utils.clip_grad_norm_(trainable.parameters(), cfg.optim.grad_clip)
    optimizer.step()
    clamp_logit_scales(step_module, cfg.optim)
    return totals


def clamp_logit_scales(module, optim: OptimConfig) -> None:
    """Clamp every learnable log logit scale of `module` (parameters named `logit_scale`: the model's, FILIP's
    token-wise one) into the run's window: before the first step and after each, as the reference solvers do."""
    import torch

    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.rsplit(".", 1)[-1] == "logit_scale":
                param.clamp_(optim.logit_scale_min, optim.logit_scale_max)


def _log(path: Path, state: LoopState, optimizer, parts: dict, rate: float) -> None:
    row = {"step": state.step, "samples_seen": state.samples_seen, "lr": optimizer.param_groups[0]["lr"],
           **{k: round(v, 6) for k, v in parts.items()}, "samples_per_s": round(rate, 1),
           "corrupt_skipped": state.n_corrupt}
    try:
        with open(path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
    except OSError as exc:  # a full disk: name the file (the console says `error: PATH: reason`)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines past the step we resume from (a killed run may have logged beyond its last checkpoint)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if _logged_step(line) <= step]
    atomic.write_bytes(path, "".join(line + "\n" for line in kept).encode())


def _logged_step(line: str) -> float:
    """The step of a metrics line; a line cut short by a kill counts as past any step (dropped)."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return math.inf


def save_state(out: Path, model_name: str, step_module, optimizer, scheduler, state: LoopState, ctx: DistContext) -> None:
    """checkpoint.pt and resume.pt (rank 0 writes; every rank's RNG state goes into resume.pt)."""
    per_rank = gather_objects(ctx, {"rng": checkpoint.capture_rng(), "n_corrupt": state.n_corrupt})
    if ctx.is_main:
        extras = step_module.method.checkpoint_extras() if hasattr(step_module.method, "checkpoint_extras") else {}
        checkpoint.save(out / CHECKPOINT, checkpoint.model_checkpoint(step_module.model, model_name, state.step, extras))
        checkpoint.save(out / RESUME, {
            "model": step_module.model.state_dict(), "method": step_module.method.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "step": state.step, "samples_seen": state.samples_seen, "data_position": state.samples_seen,
            "wall_time_s": state.wall_time_s, "n_corrupt": [r["n_corrupt"] for r in per_rank],
            "rng": [r["rng"] for r in per_rank],
        })
    barrier(ctx)


def _restore(path: Path, step_module, optimizer, scheduler, ctx: DistContext) -> LoopState:
    saved = checkpoint.load(path)
    step_module.model.load_state_dict(saved["model"])
    step_module.method.load_state_dict(saved["method"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    same_ranks = len(saved["rng"]) == ctx.world_size
    if same_ranks:
        checkpoint.restore_rng(saved["rng"][ctx.rank])
    # Each rank keeps counting its own corrupt samples; with another process count, rank 0 carries the total.
    n_corrupt = saved["n_corrupt"][ctx.rank] if same_ranks else (sum(saved["n_corrupt"]) if ctx.is_main else 0)
    return LoopState(step=saved["step"], samples_seen=saved["samples_seen"], wall_time_s=saved["wall_time_s"],
                     n_corrupt=n_corrupt, resumed_from=saved["step"])
