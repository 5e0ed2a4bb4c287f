"""Frozen configuration records for a training run.

`RunConfig` is everything `train run` resolved (scale defaults, then CLI
flags); `config.json` in the run folder is `RunConfig.to_json()` plus
versions and the subset manifest. `MethodConfig` is what a method in
`train/methods/` (and `train/augment.py`) receives: its hyper-parameters and
the distributed context its loss needs (`rank`, `world_size`, for open_clip's
`ClipLoss(gather_with_grad=True, rank=..., world_size=...)`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class MethodConfig:
    name: str = "clip"
    # FLIP: share of image patches dropped while training, and the final share of training run unmasked.
    mask_ratio: float = 0.5
    unmasked_tuning: float = 0.0
    # SLIP: weight and temperature of the SimCLR loss, sizes of its projection MLP.
    ssl_scale: float = 1.0
    ssl_temperature: float = 0.1
    ssl_mlp_dim: int | None = None  # None: from the CLIP width (train/methods/slip.py), capped at SLIP's 4096
    ssl_emb_dim: int | None = None  # None: half the CLIP width, capped at SLIP's 256
    # DeCLIP / DeFILIP (Li et al. 2022, Sense-GVT/DeCLIP yfcc15m configs): loss weights (L = 0.4 mv + 0.2 simsiam
    # + 0.2 mlm + 0.2 nn), the nearest-neighbour queue, the MLM mask rate and the SimSiam head's widths.
    declip_clip_weight: float = 0.4
    declip_simsiam_weight: float = 0.2
    declip_mlm_weight: float = 0.2
    declip_nn_weight: float = 0.2
    declip_queue_size: int = 65536
    declip_mask_rate: float = 0.15
    declip_simsiam_dim: int = 1024       # projector width (and output)
    declip_simsiam_pred_dim: int = 512   # predictor bottleneck
    # FILIP (Yao et al. 2022) and DeFILIP: weight of the token-wise loss beside the CLIP loss (FILIP) or the
    # DeCLIP loss (DeFILIP), tokens kept per sample as keys before the gather (0 = all), token projection width.
    filip_weight: float = 1.0
    defilip_filip_weight: float = 0.2
    filip_topk: int = 16
    filip_dim: int = 256
    # CLIP+Aug / SLIP / DeCLIP views: options for train.augment.make_view_transform (empty = its defaults).
    aug: dict = field(default_factory=dict)
    # Distributed context (filled in by the loop; 1 process = rank 0 of 1).
    rank: int = 0
    world_size: int = 1

    def to_json(self) -> dict:
        return asdict(self)


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
    method_cfg: MethodConfig
    seed: int = 0
    accum_steps: int = 1
    checkpoint_every: int = 100
    log_every: int = 10
    loader_workers: int = 1    # DataLoader worker processes per training process
    torch_threads: int = 0     # torch intra-op threads per process (0 = torch's default, one per core)
    device: str = "auto"       # auto | cpu | cuda
    eval_roots: tuple[str, ...] = ()
    resume: bool = False       # continue from OUT/resume.pt when it exists
    keep_resume: bool = True   # keep resume.pt (~3x the model's size) once the run is DONE
    epochs: float | None = None  # what the user asked for, when the budget was given in epochs
    allow_pool_mismatch: bool = False  # train even when subset rows are missing from the pool (said loudly)
    allow_damaged_shards: bool = False  # train without the samples of cut or damaged shard tars (said loudly)

    @property
    def steps(self) -> int:
        """Optimizer steps: samples seen rounded up to whole global batches."""
        return max(1, -(-self.samples_seen // self.batch_size))

    def to_json(self) -> dict:
        data = asdict(self)
        data["eval_roots"] = list(self.eval_roots)
        data["steps"] = self.steps
        return data


def make_run_config(out: str, pool: str, subset: str | None = None, method: str = "clip", scale: str = "cpu-small",
                    model: str | None = None, samples_seen: int | None = None, epochs: float | None = None,
                    batch_size: int | None = None, lr: float | None = None, warmup: int | None = None,
                    weight_decay: float | None = None, method_cfg: MethodConfig | None = None, **rest) -> RunConfig:
    """A RunConfig from a named scale, each given option overriding the scale's value."""
    from tierclip.curate.errors import UserError
    from tierclip.train.scales import get_scale

    base = get_scale(scale)
    if samples_seen is not None and epochs is not None:
        raise UserError("give either --samples-seen or --epochs, not both")
    for name, value in (("--samples-seen", samples_seen), ("--epochs", epochs), ("--batch-size", batch_size), ("--lr", lr)):
        if value is not None and not value > 0:  # `not >`: NaN fails too
            raise UserError(f"{name} {value}: must be positive")
        if value is not None and not math.isfinite(value):
            raise UserError(f"{name} {value}: must be a finite number")
    optim = OptimConfig(lr=lr if lr is not None else base.lr, warmup_steps=warmup if warmup is not None else base.warmup,
                        weight_decay=weight_decay if weight_decay is not None else base.weight_decay,
                        **{k: rest.pop(k) for k in ("grad_clip",) if k in rest})
    cfg = RunConfig(
        out=str(out), pool=str(pool), subset=str(subset) if subset else None, method=method, model=model or base.model,
        pretrained=rest.pop("pretrained", None), scale=scale,
        samples_seen=samples_seen if samples_seen is not None else (0 if epochs is not None else base.samples_seen),
        epochs=epochs, batch_size=batch_size or base.batch_size, optim=optim,
        method_cfg=replace(method_cfg or MethodConfig(), name=method), **rest,
    )
    check_options(cfg)
    return cfg


# RunConfig field -> the `train run` option that sets it (for messages; one place to rename an option).
# Fields whose command-line flag is not `--` + the field name with dashes.
OPTION_NAMES = {"warmup_steps": "--warmup", "weight_decay": "--wd"}


def option_flag(field_name: str) -> str:
    return OPTION_NAMES.get(field_name, "--" + field_name.replace("_", "-"))


def check_options(cfg: RunConfig) -> None:
    """Every numeric option in range before anything runs (a NaN or negative value would otherwise fail deep
    inside torch, or be reported as a diverging loss)."""
    from tierclip.curate.errors import UserError

    m = cfg.method_cfg
    rules = [  # (field, value, ok, what it must be)
        ("warmup_steps", cfg.optim.warmup_steps, cfg.optim.warmup_steps >= 0, "0 or more"),
        ("weight_decay", cfg.optim.weight_decay, _finite(cfg.optim.weight_decay) and cfg.optim.weight_decay >= 0,
         "a finite number >= 0"),
        ("grad_clip", cfg.optim.grad_clip, cfg.optim.grad_clip is None or (_finite(cfg.optim.grad_clip) and cfg.optim.grad_clip >= 0),
         "a finite number >= 0 (0 = off)"),
        ("loader_workers", cfg.loader_workers, cfg.loader_workers >= 0, "0 or more"),
        ("torch_threads", cfg.torch_threads, cfg.torch_threads >= 0, "0 or more"),
        ("accum_steps", cfg.accum_steps, cfg.accum_steps >= 1, "1 or more"),
        ("checkpoint_every", cfg.checkpoint_every, cfg.checkpoint_every >= 1, "1 or more"),
        ("log_every", cfg.log_every, cfg.log_every >= 1, "1 or more"),
        ("mask_ratio", m.mask_ratio, _finite(m.mask_ratio) and 0 <= m.mask_ratio < 1, "in [0, 1)"),
        ("unmasked_tuning", m.unmasked_tuning, _finite(m.unmasked_tuning) and 0 <= m.unmasked_tuning <= 1, "in [0, 1]"),
        ("ssl_scale", m.ssl_scale, _finite(m.ssl_scale) and m.ssl_scale >= 0, "a finite number >= 0"),
        ("ssl_temperature", m.ssl_temperature, _finite(m.ssl_temperature) and m.ssl_temperature > 0, "a finite number > 0"),
        ("ssl_mlp_dim", m.ssl_mlp_dim, m.ssl_mlp_dim is None or m.ssl_mlp_dim >= 1, "1 or more"),
        ("ssl_emb_dim", m.ssl_emb_dim, m.ssl_emb_dim is None or m.ssl_emb_dim >= 1, "1 or more"),
        *[(name, getattr(m, name), _finite(getattr(m, name)) and getattr(m, name) >= 0, "a finite number >= 0")
          for name in ("declip_clip_weight", "declip_simsiam_weight", "declip_mlm_weight", "declip_nn_weight",
                       "filip_weight", "defilip_filip_weight")],
        ("declip_queue_size", m.declip_queue_size, m.declip_queue_size >= 1, "1 or more"),
        ("declip_mask_rate", m.declip_mask_rate, _finite(m.declip_mask_rate) and 0 < m.declip_mask_rate < 1, "in (0, 1)"),
        ("declip_simsiam_dim", m.declip_simsiam_dim, m.declip_simsiam_dim >= 1, "1 or more"),
        ("declip_simsiam_pred_dim", m.declip_simsiam_pred_dim, m.declip_simsiam_pred_dim >= 1, "1 or more"),
        ("filip_topk", m.filip_topk, m.filip_topk >= 0, "0 or more (0 = every token)"),
        ("filip_dim", m.filip_dim, m.filip_dim >= 1, "1 or more"),
    ]
    for name, value, ok, must in rules:
        if not ok:
            raise UserError(f"{option_flag(name)} {value}: must be {must}")
    if not (_finite(cfg.optim.lr) and cfg.optim.lr > 0):
        raise UserError(f"--lr {cfg.optim.lr}: must be a finite number > 0")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
