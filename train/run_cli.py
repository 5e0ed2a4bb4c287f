"""`train run` and `train sweep`: typer commands that build a config and call the library."""

from __future__ import annotations

from pathlib import Path

import typer
from tierclip.train.config import MethodConfig

_DEFAULTS = MethodConfig()  # method options default to the config's values (one place for the reference's defaults)


def run(
    pool: Path = typer.Argument(None, show_default=False, help="Pool folder to train on (curate ingest / curate synth)."),
    pool_option: Path = typer.Option(None, "--pool", hidden=True, help="Old spelling of POOL (kept so older scripts run)."),
    out: Path = typer.Option(..., help="Run folder to write (config.json, metrics.jsonl, checkpoint.pt, results.json, DONE)."),
    subset: Path = typer.Option(None, help="Subset folder (uids.parquet + manifest.json) of POOL; default: the whole pool."),
    method: str = typer.Option(
        "clip", help="Training method: clip, clip-aug, slip, flip, declip, filip or defilip (train/methods/, docs/methods.md)."
    ),
    scale: str = typer.Option(
        "cpu-small", help="Named scale (model, batch, lr, warmup, samples seen, wd): debug, cpu-small, small or medium."
    ),
    model: str = typer.Option(None, help="open_clip model name (default: the scale's), e.g. tc-rn-tiny, tc-vit-tiny, ViT-B-32."),
    pretrained: str = typer.Option(None, help="Start from these weights: a checkpoint file or an open_clip pretrained tag."),
    samples_seen: int = typer.Option(None, help="Training budget in samples (DataComp-style); default: the scale's."),
    epochs: float = typer.Option(None, help="Training budget in passes over the usable samples (instead of --samples-seen)."),
    batch_size: int = typer.Option(None, help="Global batch per optimizer step, over all processes and accumulation steps."),
    lr: float = typer.Option(None, help="Peak learning rate (default: the scale's)."),
    warmup: int = typer.Option(None, help="Linear warmup in optimizer steps (default: the scale's)."),
    wd: float = typer.Option(None, help="AdamW weight decay (not applied to gains, biases, logit_scale)."),
    seed: int = typer.Option(0, help="Seed of initial weights, data order and augmentations."),
    eval: list[Path] = typer.Option(None, help="Eval set folder to evaluate on at the end (repeatable)."),
    resume: bool = typer.Option(False, help="Continue the unfinished run in OUT from its resume.pt."),
    keep_resume: bool = typer.Option(True, help="Keep resume.pt (optimizer state, ~3x the model) once the run is done."),
    checkpoint_every: int = typer.Option(100, help="Write checkpoint.pt and resume.pt every K optimizer steps (and at the end)."),
    log_every: int = typer.Option(10, help="Append a metrics.jsonl line every K optimizer steps."),
    loader_workers: int = typer.Option(1, help="DataLoader worker processes per training process (0 = decode in the training process)."),
    torch_threads: int = typer.Option(0, help="torch CPU threads per process (0 = torch's default, one per core); "
                                      "1 is faster on a busy machine."),
    accum_steps: int = typer.Option(1, help="Gradient accumulation: micro-batches per optimizer step."),
    grad_clip: float = typer.Option(1.0, help="Clip the gradient norm to this value (0 = off)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda (under torchrun each process takes cuda:LOCAL_RANK)."),
    mask_ratio: float = typer.Option(0.5, help="FLIP: share of image patches dropped while training."),
    unmasked_tuning: float = typer.Option(0.0, help="FLIP: final share of training run without masking."),
    ssl_scale: float = typer.Option(1.0, help="SLIP: weight of the SimCLR loss."),
    ssl_temperature: float = typer.Option(0.1, help="SLIP: SimCLR temperature."),
    ssl_mlp_dim: int = typer.Option(None, help="SLIP: hidden width of the SimCLR MLP (default: 8x the embedding width, at most 4096)."),
    ssl_emb_dim: int = typer.Option(None, help="SLIP: output width of the SimCLR MLP (default: half the embedding width, at most 256)."),
    declip_clip_weight: float = typer.Option(
        _DEFAULTS.declip_clip_weight, help="DeCLIP/DeFILIP: weight of the multi-view CLIP loss (clip_loss)."
    ),
    declip_simsiam_weight: float = typer.Option(
        _DEFAULTS.declip_simsiam_weight, help="DeCLIP/DeFILIP: weight of the SimSiam image loss (simsiam_loss)."
    ),
    declip_mlm_weight: float = typer.Option(
        _DEFAULTS.declip_mlm_weight, help="DeCLIP/DeFILIP: weight of the masked-language loss (mlm_loss)."
    ),
    declip_nn_weight: float = typer.Option(
        _DEFAULTS.declip_nn_weight, help="DeCLIP/DeFILIP: weight of the nearest-neighbour loss (nn_loss)."
    ),
    declip_queue_size: int = typer.Option(
        _DEFAULTS.declip_queue_size, help="DeCLIP/DeFILIP: caption embeddings kept in the nearest-neighbour queue."
    ),
    declip_mask_rate: float = typer.Option(
        _DEFAULTS.declip_mask_rate, help="DeCLIP/DeFILIP: share of caption tokens masked for the MLM loss."
    ),
    declip_simsiam_dim: int = typer.Option(_DEFAULTS.declip_simsiam_dim, help="DeCLIP/DeFILIP: SimSiam projector width."),
    declip_simsiam_pred_dim: int = typer.Option(
        _DEFAULTS.declip_simsiam_pred_dim, help="DeCLIP/DeFILIP: SimSiam predictor bottleneck width."
    ),
    filip_weight: float = typer.Option(
        _DEFAULTS.filip_weight, help="FILIP: weight of the token-wise loss beside the CLIP loss (filip_loss)."
    ),
    defilip_filip_weight: float = typer.Option(
        _DEFAULTS.defilip_filip_weight, help="DeFILIP: weight of the token-wise loss beside the DeCLIP loss."
    ),
    filip_topk: int = typer.Option(
        _DEFAULTS.filip_topk, help="FILIP/DeFILIP: tokens per sample kept as keys of the token-wise max (0 = all)."
    ),
    filip_dim: int = typer.Option(_DEFAULTS.filip_dim, help="FILIP/DeFILIP: width the tokens are projected to."),
    aug: list[str] = typer.Option(None, help="Augmentation option KEY=VALUE for clip-aug/slip/declip views (repeatable), e.g. jitter=0.2."),
    allow_pool_mismatch: bool = typer.Option(False, "--allow-pool-mismatch", help="Train even if the subset was built from "
                                             "another pool or some of its uids are not in POOL (the missing count is printed)."),
) -> None:
    """Train a CLIP-family model on a pool subset; evaluate it when --eval is given."""
    from tierclip.train.config import MethodConfig, make_run_config
    from tierclip.train.run import run_training

    method_cfg = MethodConfig(mask_ratio=mask_ratio, unmasked_tuning=unmasked_tuning, ssl_scale=ssl_scale,
                              ssl_temperature=ssl_temperature, ssl_mlp_dim=ssl_mlp_dim, ssl_emb_dim=ssl_emb_dim,
                              declip_clip_weight=declip_clip_weight, declip_simsiam_weight=declip_simsiam_weight,
                              declip_mlm_weight=declip_mlm_weight, declip_nn_weight=declip_nn_weight,
                              declip_queue_size=declip_queue_size, declip_mask_rate=declip_mask_rate,
                              declip_simsiam_dim=declip_simsiam_dim, declip_simsiam_pred_dim=declip_simsiam_pred_dim,
                              filip_weight=filip_weight, defilip_filip_weight=defilip_filip_weight, filip_topk=filip_topk,
                              filip_dim=filip_dim, aug=parse_key_values(aug or []))
    pool = pool_argument(pool, pool_option)
    cfg = make_run_config(out, pool, subset, method, scale, model, samples_seen, epochs, batch_size, lr, warmup, wd,
                          method_cfg, pretrained=pretrained, seed=seed, eval_roots=tuple(str(e) for e in eval or ()),
                          resume=resume, keep_resume=keep_resume, checkpoint_every=checkpoint_every, log_every=log_every,
                          loader_workers=loader_workers, torch_threads=torch_threads,
                          accum_steps=accum_steps, grad_clip=grad_clip or None, device=device,
                          allow_pool_mismatch=allow_pool_mismatch)
    print(run_training(cfg))


def pool_argument(positional: Path | None, option: Path | None) -> Path:
    """POOL, given positionally or (older scripts) as --pool; both at once must agree."""
    from tierclip.curate.errors import UserError

    if positional is not None and option is not None and positional != option:
        raise UserError(f"POOL {positional} and --pool {option} disagree; give the pool once, as POOL")
    if positional is None and option is None:
        raise UserError("missing POOL: `train run POOL --out RUN ...`")
    return positional if positional is not None else option


def parse_key_values(items: list[str]) -> dict:
    """["jitter=0.2", "crop_scale=0.3,1"] -> {"jitter": 0.2, "crop_scale": [0.3, 1.0]}."""
    from tierclip.curate.errors import UserError

    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--aug {item!r}: expected KEY=VALUE")
        numbers = [float(v) for v in value.split(",")] if _is_number_list(value) else None
        parsed[key] = value if numbers is None else (numbers[0] if len(numbers) == 1 else numbers)
    return parsed


def _is_number_list(value: str) -> bool:
    try:
        [float(v) for v in value.split(",")]
    except ValueError:
        return False
    return True


def sweep(
    spec: Path = typer.Argument(
        None, help="Sweep TOML file (pool, scale, subsets, methods, models, seeds, samples_seen, eval, [options])."),
    out: Path = typer.Option(..., help="Folder to hold one run folder per grid point."),
    pool: str = typer.Option(None, help="Pool folder (replaces the file's `pool`)."),
    subset: list[str] = typer.Option(None, help="Subset or tier-set folder (repeatable; replaces the file's `subsets`)."),
    method: list[str] = typer.Option(None, help="Method (repeatable; replaces the file's `methods`)."),
    model: list[str] = typer.Option(None, help="open_clip model name (repeatable: a model axis; replaces the file's `models`)."),
    seed: list[int] = typer.Option(None, help="Seed (repeatable; replaces the file's `seeds`)."),
    samples_seen: list[int] = typer.Option(None, help="Budget in samples (repeatable; replaces the file's `samples_seen`)."),
    scale: str = typer.Option(None, help="Named scale (replaces the file's `scale`; default cpu-small)."),
    eval: list[str] = typer.Option(None, help="Eval set folder (repeatable; replaces the file's `eval`)."),
    print_: str = typer.Option(None, "--print", help="Print command lines instead of running: torchrun or sbatch."),
    nproc: int = typer.Option(1, help="Processes (GPUs) per node in printed torchrun/sbatch lines."),
    nodes: int = typer.Option(1, help="Nodes per run in printed torchrun/sbatch lines (one torchrun a node, c10d rendezvous)."),
) -> None:
    """Run a grid of `train run`s one after another (finished runs skipped, unfinished resumed), or print them."""
    from tierclip.train.sweep import command_lines, load_spec, plan_runs, run_sweep

    grid = load_spec(spec, pool=pool, subsets=subset, methods=method, models=model, seeds=seed, samples_seen=samples_seen,
                     scale=scale, eval=eval)
    runs = plan_runs(grid, out)
    if print_:
        print("\n".join(command_lines(grid, runs, print_, nproc, nodes)))
        return
    counts = run_sweep(grid, runs)
    print(f"{len(runs)} runs: {counts['started']} started, {counts['resumed']} resumed, {counts['skipped']} already finished")
