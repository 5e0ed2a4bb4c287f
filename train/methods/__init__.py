"""Training methods: one small `nn.Module` per method, chosen by name from `METHODS`.

The loop knows only this interface (see docs/methods.md):

- `Method.views`: the loader keys a batch must carry (`image`, `text`, `image_aug`, `image_ssl1`, `image_ssl2`,
  `image_moco1`, `image_moco2`, `text_eda`, `text_mlm`); `train.augment.make_view_transform(view, ...)` builds
  each view's transform (text views: train/text_views.py).
- `Method.config`: the method's frozen config dataclass (next to the method, e.g. `FlipConfig` in flip.py), whose
  fields declared with `curate.fields.option` (help, default, bounds) are `train run`'s `--PREFIX-FIELD` options
  and `train sweep`'s `[options]` keys; a config may hold another method's config to reuse its options (DeFILIP).
- `model_overrides(name, cfg)`: kwargs to merge into `open_clip.create_model_and_transforms` (FLIP:
  `force_patch_dropout=cfg.mask_ratio`). The class attribute `Method.model_overrides` holds the defaults.
- `build_method(name, model, cfg)`: the method module, with any heads of its own (SLIP's projection
  MLP) among its parameters: optimise `model.parameters()` and `method.parameters()` together.
- `method(model, batch) -> {"loss": ..., "clip_loss": ..., ...}`; `method.on_progress(model, progress)` every step.
- optional `method.pairwise_flops(batch, model)`: forward FLOPs of parts that grow as batch² (FILIP's token
  interaction), which train/flops.py adds at the run's global batch.

Under DDP, wrap `MethodStep(model, method)` (one module holding both) in DistributedDataParallel, so the
method's heads are reduced too and SLIP's extra passes through the image tower run inside DDP's forward.

A new method is a new file here (its class and its config) and one line in `METHODS`; the loop, `train run`,
`train sweep` and docs/cli.md's option rows follow from it. Method modules import torch inside functions only
(`train.methods.modules.LazyModule`), so this registry and `train run --help` load without torch.
"""

from __future__ import annotations

from tierclip.curate.cliopts import OptionSpec, config_from, nested_configs, option_specs, unique_flags
from tierclip.curate.errors import UserError
from tierclip.train.methods.clip import Clip
from tierclip.train.methods.clip_aug import ClipAug
from tierclip.train.methods.declip import Declip, Defilip
from tierclip.train.methods.filip import Filip
from tierclip.train.methods.flip import Flip
from tierclip.train.methods.modules import LazyModule
from tierclip.train.methods.slip import Slip

METHODS = {"clip": Clip, "clip-aug": ClipAug, "slip": Slip, "flip": Flip, "declip": Declip, "filip": Filip,
           "defilip": Defilip}

__all__ = ["METHODS", "MethodStep", "build_method", "method_class", "method_config", "method_option_specs", "model_overrides",
           "refusal"]


def method_class(name: str) -> type:
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}") from None


# -- the methods' options: every config class any method holds, each once, `--PREFIX-FIELD` ----------------------------
def method_option_specs() -> list[OptionSpec]:
    """The `train run` options of every method in METHODS (DeFILIP's `--declip-*`, `--filip-*` are DeCLIP's and FILIP's)."""
    configs = []
    for method in METHODS.values():
        configs += [c for c in nested_configs(method.config) if c not in configs]
    return unique_flags([spec for config in configs for spec in option_specs(config, getattr(config, "prefix", ""))])


def method_users(config: type) -> list[str]:
    """The methods whose config is or holds `config`."""
    return [name for name, method in METHODS.items() if config in nested_configs(method.config)]


def method_option_keys(name: str) -> set[str]:
    """The option keys (`declip_queue_size`, ...) that configure method `name`."""
    configs = nested_configs(method_class(name).config)
    return {spec.key for spec in method_option_specs() if spec.config in configs}


def method_config(name: str, values: dict | None = None):
    """Method `name`'s config from option values keyed like `train run`'s options (absent keys: the defaults)."""
    config = method_class(name).config
    return config_from(config, values or {}, getattr(config, "prefix", ""))


def model_overrides(name: str, cfg=None, model_name: str | None = None) -> dict:
    """kwargs for `open_clip.create_model_and_transforms` that method `name` needs under `cfg` (default: its defaults).

    With `model_name`, also refuses early a model the method cannot train (FLIP on a ResNet tower).
    """
    method = method_class(name)
    if model_name is not None:
        from open_clip import get_model_config

        model_cfg = get_model_config(model_name)
        if model_cfg is not None:
            method.check_model_config(model_name, model_cfg)
    return method.overrides_for(cfg if cfg is not None else method_config(name))


def refusal(name: str, model_name: str) -> str | None:
    """Why method `name` cannot train `model_name` (an unknown method, a tower it refuses), or None when it can."""
    from tierclip.train.models import register_model_configs

    register_model_configs()
    try:
        model_overrides(name, None, model_name)
    except UserError as error:
        return str(error)
    return None


def build_method(name: str, model, cfg=None):
    """The method module for an open_clip `model` (bare or DDP-wrapped), its heads sized from the model."""
    return method_class(name)(model, cfg if cfg is not None else method_config(name))


class MethodStep(LazyModule):
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
