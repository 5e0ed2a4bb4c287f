"""Frozen configuration records for a training run.

`RunOptions` are `train run`'s run-level options (a field each: help, default, bounds; train/run_cli.py derives the
command from it and from every method's config). `make_run_config` resolves them against the named scale into
`RunConfig`, everything the run uses; `config.json` in the run folder is `RunConfig.to_json()` plus versions and
the subset manifest. The method's own options are its config dataclass (`train.methods`, e.g. `FlipConfig`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tierclip.curate.cliopts import config_from, flat_options, option_specs
from tierclip.curate.devices import DEVICE_PATTERN
from tierclip.curate.errors import UserError
from tierclip.curate.fields import Checked, option
from tierclip.train.augment import AugmentConfig
from tierclip.train.scales import SCALES


def _method_names() -> tuple[str, ...]:
    from tierclip.train.methods import METHODS

    return tuple(METHODS)


@dataclass(frozen=True)
class RunOptions(Checked):
    """`train run`'s options besides the method's: POOL, the run folder, the budget, the optimizer, the machine."""

    pool: str = option(..., "Pool folder to train on (curate ingest / curate synth).", argument=True)
    out: str = option(..., "Run folder to write (config.json, metrics.jsonl, checkpoint.pt, results.json, DONE).")
    subset: str | None = option(None, "Subset folder (uids.parquet + manifest.json) of POOL; default: the whole pool.")
    method: str = option("clip", "Training method (train/methods/, docs/methods.md).", choices=_method_names)
    scale: str = option("cpu-small", "Named scale: model, batch size, lr, warmup steps, samples seen, weight decay.",
                        choices=tuple(SCALES))
    model: str | None = option(None, "open_clip model name (default: the scale's), e.g. tc-rn-tiny, tc-vit-tiny, ViT-B-32.")
    pretrained: str | None = option(None, "Start from these weights: a checkpoint file or an open_clip pretrained tag.")
    samples_seen: int | None = option(None, "Training budget in samples (DataComp-style); default: the scale's.", ge=1)
    epochs: float | None = option(None, "Training budget in passes over the usable samples (instead of --samples-seen).", gt=0)
    batch_size: int | None = option(None, "Global batch per optimizer step, over all processes and accumulation steps "
                                          "(default: the scale's).", ge=1)
    lr: float | None = option(None, "Peak learning rate (default: the scale's).", gt=0)
    warmup_steps: int | None = option(None, "Linear warmup in optimizer steps (default: the scale's).", ge=0)
    weight_decay: float | None = option(None, "AdamW weight decay, not applied to gains, biases, logit_scale "
                                              "(default: the scale's).", ge=0)
    seed: int = option(0, "Seed of initial weights, data order and augmentations.", ge=0, le=2**32 - 1)
    eval: tuple[str, ...] = option((), "Eval set folder to evaluate on at the end (repeatable).")
    resume: bool = option(False, "Continue the unfinished run in OUT from its resume.pt.")
    keep_resume: bool = option(True, "Keep resume.pt (optimizer state, ~3x the model) once the run is done.")
    checkpoint_every: int = option(100, "Write checkpoint.pt and resume.pt every K optimizer steps (and at the end).", ge=1)
    log_every: int = option(10, "Append a metrics.jsonl line every K optimizer steps.", ge=1)
    loader_workers: int = option(1, "DataLoader worker processes per training process (0 = decode in the training process).",
                                 ge=0)
    torch_threads: int = option(0, "torch CPU threads per process (0 = torch's default, one per core); 1 is faster on a "
                                   "busy machine.", ge=0)
    accum_steps: int = option(1, "Gradient accumulation: micro-batches per optimizer step.", ge=1)
    grad_clip: float = option(1.0, "Clip the gradient norm to this value (0 = off).", ge=0)
    device: str = option("auto", "auto (cuda when available), cpu, cuda or cuda:N; under torchrun `cuda` is cuda:LOCAL_RANK.",
                         pattern=DEVICE_PATTERN)
    aug: tuple[str, ...] = option((), "Image augmentation KEY=VALUE for the clip-aug/slip/declip views (repeatable), e.g. "
                                      "jitter=0.2 or crop_scale=0.3,1 (train/augment.py AugmentConfig).", key_values=AugmentConfig)
    allow_pool_mismatch: bool = option(False, "Train even if the subset was built from another pool or some of its uids are "
                                              "not in POOL (the missing count is printed).")
    allow_damaged_shards: bool = option(False, "Train even if shard tars are cut short or damaged, without their lost "
                                               "samples (the count is printed).")


def run_option_specs():
    return option_specs(RunOptions)


@dataclass(frozen=True)
class OptimConfig:
    lr: float
    warmup_steps: int
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-6
    grad_clip: float | None = 1.0
    max_logit_scale: float = 100.0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RunConfig:
    out: str
    pool: str
    subset: str | None
    method: str
    model: str
    pretrained: str | None
    scale: str
    samples_seen: int
    batch_size: int            # global batch per optimizer step (all processes, all accumulation steps)
    optim: OptimConfig
    method_cfg: Any            # the method's config dataclass (train.methods: METHODS[method].config)
    seed: int = 0
    accum_steps: int = 1
    checkpoint_every: int = 100
    log_every: int = 10
    loader_workers: int = 1    # DataLoader worker processes per training process
    torch_threads: int = 0     # torch intra-op threads per process (0 = torch's default, one per core)
    device: str = "auto"       # auto | cpu | cuda | cuda:N
    eval_roots: tuple[str, ...] = ()
    resume: bool = False       # continue from OUT/resume.pt when it exists
    keep_resume: bool = True   # keep resume.pt (~3x the model's size) once the run is DONE
    epochs: float | None = None  # what the user asked for, when the budget was given in epochs
    allow_pool_mismatch: bool = False  # train even when subset rows are missing from the pool (said loudly)
    allow_damaged_shards: bool = False  # train without the samples of cut or damaged shard tars (said loudly)
    aug: AugmentConfig = field(default_factory=AugmentConfig)

    @property
    def steps(self) -> int:
        """Optimizer steps: samples seen rounded up to whole global batches."""
        return max(1, -(-self.samples_seen // self.batch_size))

    def to_json(self) -> dict:
        """Every field; the method's options flat, keyed like `train run`'s options (`declip_queue_size`)."""
        data = asdict(self)
        data["method_cfg"] = flat_options(self.method_cfg)
        data["eval_roots"] = list(self.eval_roots)
        data["steps"] = self.steps
        return data


def make_run_config(out, pool, subset=None, method: str = "clip", scale: str = "cpu-small", **values: Any) -> RunConfig:
    """A RunConfig from option values keyed like `train run`'s options (`batch_size=8`, `declip_queue_size=16`): the
    named scale's value for every budget and optimizer option not given. A method option of another method than
    `method` is refused (it would silently do nothing)."""
    from tierclip.train.methods import method_config, method_option_keys

    values = {**values, "subset": str(subset) if subset else None, "method": method, "scale": scale}
    options = config_from(RunOptions, {**_run_values(values), "out": str(out), "pool": str(pool)})
    method_values = {k: v for k, v in values.items() if k not in _RUN_KEYS}
    stray = sorted(set(method_values) - method_option_keys(options.method))
    if stray:
        raise UserError(f"--{stray[0].replace('_', '-')}: not an option of method {options.method} "
                        f"(its options: {', '.join(sorted(method_option_keys(options.method))) or 'none'})")
    if options.samples_seen is not None and options.epochs is not None:
        raise UserError("give either --samples-seen or --epochs, not both")
    return _resolve(options, method_config(options.method, method_values))


_RUN_KEYS = frozenset(spec.key for spec in option_specs(RunOptions))


def _run_values(values: dict) -> dict:
    return {k: v for k, v in values.items() if k in _RUN_KEYS}


def _resolve(options: RunOptions, method_cfg) -> RunConfig:
    """The scale's values where an option was not given."""
    from tierclip.curate.cliopts import key_value

    scale = SCALES[options.scale]
    optim = OptimConfig(lr=_given(options.lr, scale.lr), warmup_steps=_given(options.warmup_steps, scale.warmup_steps),
                        weight_decay=_given(options.weight_decay, scale.weight_decay), grad_clip=options.grad_clip or None)
    aug = AugmentConfig.from_options(dict(key_value(item, AugmentConfig, "--aug") for item in options.aug))
    samples_seen = options.samples_seen if options.samples_seen is not None else (0 if options.epochs is not None else scale.samples_seen)
    return RunConfig(
        out=options.out, pool=options.pool, subset=options.subset or None, method=options.method,
        model=options.model or scale.model, pretrained=options.pretrained, scale=options.scale, samples_seen=samples_seen,
        batch_size=_given(options.batch_size, scale.batch_size), optim=optim, method_cfg=method_cfg, seed=options.seed,
        accum_steps=options.accum_steps, checkpoint_every=options.checkpoint_every, log_every=options.log_every,
        loader_workers=options.loader_workers, torch_threads=options.torch_threads, device=options.device,
        eval_roots=tuple(str(e) for e in options.eval), resume=options.resume, keep_resume=options.keep_resume,
        epochs=options.epochs, allow_pool_mismatch=options.allow_pool_mismatch,
        allow_damaged_shards=options.allow_damaged_shards, aug=aug)


def _given(value, default):
    return value if value is not None else default
