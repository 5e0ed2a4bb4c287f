"""Frozen configuration records for a training run.

`RunConfig` is everything `train run` resolved (scale defaults, then CLI
flags); `config.json` in the run folder is `RunConfig.to_json()` plus
versions and the subset manifest. `MethodConfig` is what a method in
`train/methods/` (and `train/augment.py`) receives: its hyper-parameters and
the distributed context its loss needs (`rank`, `world_size`, for open_clip's
`ClipLoss(gather_with_grad=True, rank=..., world_size=...)`).
"""

from __future__ import annotations

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
    workers: int = 1
    threads: int = 0           # torch intra-op threads per process (0 = torch's default, one per core)
    device: str = "auto"       # auto | cpu | cuda
    eval_roots: tuple[str, ...] = ()
    resume: bool = False       # continue from OUT/resume.pt when it exists
    keep_resume: bool = True   # keep resume.pt (~3x the model's size) once the run is DONE
    epochs: float | None = None  # what the user asked for, when the budget was given in epochs

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
    from curate.errors import UserError
    from train.scales import get_scale

    base = get_scale(scale)
    if samples_seen is not None and epochs is not None:
        raise UserError("give either --samples-seen or --epochs, not both")
    for name, value in (("--samples-seen", samples_seen), ("--epochs", epochs), ("--batch-size", batch_size), ("--lr", lr)):
        if value is not None and value <= 0:
            raise UserError(f"{name} {value}: must be positive")
    optim = OptimConfig(lr=lr if lr is not None else base.lr, warmup_steps=warmup if warmup is not None else base.warmup,
                        weight_decay=weight_decay if weight_decay is not None else base.weight_decay,
                        **{k: rest.pop(k) for k in ("grad_clip",) if k in rest})
    return RunConfig(
        out=str(out), pool=str(pool), subset=str(subset) if subset else None, method=method, model=model or base.model,
        pretrained=rest.pop("pretrained", None), scale=scale,
        samples_seen=samples_seen if samples_seen is not None else (0 if epochs is not None else base.samples_seen),
        epochs=epochs, batch_size=batch_size or base.batch_size, optim=optim,
        method_cfg=replace(method_cfg or MethodConfig(), name=method), **rest,
    )

