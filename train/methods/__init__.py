"""Training methods: one small `nn.Module` per method, chosen by name from `METHODS`.

The loop knows only this interface (see docs/methods.md):

- `Method.views`: the loader keys a batch must carry (`image`, `text`, `image_aug`, `image_ssl1`, `image_ssl2`,
  `image_moco1`, `image_moco2`, `text_eda`, `text_mlm`); `train.augment.make_view_transform(view, ...)` builds
  each view's transform (text views: train/text_views.py).
- `model_overrides(name, cfg)`: kwargs to merge into `open_clip.create_model_and_transforms` (FLIP:
  `force_patch_dropout=cfg.mask_ratio`). The class attribute `Method.model_overrides` holds the defaults.
- `build_method(name, model, cfg)`: the method module, with any heads of its own (SLIP's projection
  MLP) among its parameters: optimise `model.parameters()` and `method.parameters()` together.
- `method(model, batch) -> {"loss": ..., "clip_loss": ..., ...}`; `method.on_progress(model, progress)` every step.
- optional `method.pairwise_flops(batch, model)`: forward FLOPs of parts that grow as batch² (FILIP's token
  interaction), which train/flops.py adds at the run's global batch.

Under DDP, wrap `MethodStep(model, method)` (one module holding both) in DistributedDataParallel, so the
method's heads are reduced too and SLIP's extra passes through the image tower run inside DDP's forward.

A new method is a new file here and one line in `METHODS`; the loop does not change.
"""

from __future__ import annotations

from tierclip.curate.errors import UserError
from tierclip.train.config import MethodConfig
from tierclip.train.methods.clip import Clip
from tierclip.train.methods.clip_aug import ClipAug
from tierclip.train.methods.declip import Declip, Defilip
from tierclip.train.methods.filip import Filip
from tierclip.train.methods.flip import Flip
from tierclip.train.methods.slip import Slip
from torch import nn

METHODS = {"clip": Clip, "clip-aug": ClipAug, "slip": Slip, "flip": Flip, "declip": Declip, "filip": Filip,
           "defilip": Defilip}

__all__ = ["METHODS", "MethodConfig", "MethodStep", "build_method", "method_class", "model_overrides", "refusal"]


def method_class(name: str) -> type:
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}") from None


def model_overrides(name: str, cfg: MethodConfig, model_name: str | None = None) -> dict:
    """kwargs for `open_clip.create_model_and_transforms` that method `name` needs under `cfg`.

    With `model_name`, also refuses early a model the method cannot train (FLIP on a ResNet tower).
    """
    method = method_class(name)
    if model_name is not None:
        from open_clip import get_model_config

        model_cfg = get_model_config(model_name)
        if model_cfg is not None:
            method.check_model_config(model_name, model_cfg)
    return method.overrides_for(cfg)


def refusal(name: str, model_name: str) -> str | None:
    """Why method `name` cannot train `model_name` (an unknown method, a tower it refuses), or None when it can."""
    from tierclip.train.models import register_model_configs

    register_model_configs()
    try:
        model_overrides(name, MethodConfig(), model_name)
    except UserError as error:
        return str(error)
    return None


def build_method(name: str, model, cfg: MethodConfig) -> nn.Module:
    """The method module for an open_clip `model` (bare or DDP-wrapped), its heads sized from the model."""
    return method_class(name)(model, cfg)


class MethodStep(nn.Module):
    """The model and its method as one module: `step(batch)` is `method(model, batch)`.

    Exists for DistributedDataParallel, which reduces the gradients of the module it wraps and
    expects every pass through it to go through its own forward.
    """

    def __init__(self, model, method):
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, batch: dict) -> dict:
        return self.method(self.model, batch)
