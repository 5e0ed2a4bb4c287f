"""open_clip models by name, including the project's small CPU configs in `train/model_configs/`.

The project's configs are plain open_clip JSON files registered with
`open_clip.add_model_config`, so every open_clip function (and the curate
`clip` stage, given the copy `train run` writes to `RUN/model_configs/`) knows
them by name:

| name           | image tower                                  | text tower                      | params |
|----------------|----------------------------------------------|---------------------------------|--------|
| tc-rn-tiny     | ModifiedResNet layers [1,1,1,1], width 16, 32 px | width 128, 3 layers, 2 heads, context 16 | ~8 M |
| tc-rn-tiny-64  | the same at 64 px                            | the same                        | ~8 M   |
| tc-vit-tiny    | ViT 32 px, patch 4, width 128, 4 layers      | the same                        | ~7 M   |

Graded families for CPU studies (docs/train.md, "Model families"): ConvNets `tc-rn-xs` / `tc-rn-tiny` /
`tc-rn-s` (stem width 8 / 16 / 32), ViTs `tc-vit-xs` / `tc-vit-tiny` / `tc-vit-s` (width 64 / 128 / 192,
2 / 4 / 6 layers), and `tc-rn-tiny-text1/2/4/8` (text depth 1, 2, 4, 8 at width 128). `describe_model`
reads what a run records about its model from the instantiated model, never from a table here.

Pitfall (docs/train.md): the text tower keeps open_clip's 49,408-token
embedding so that checkpoints load with the stock tokenizer; in these tiny
models it holds most of the parameters and its AdamW update costs a good
share of CPU throughput. We keep it for compatibility.
"""

from __future__ import annotations

import json
from pathlib import Path

CONFIG_DIR = Path(__file__).parent / "model_configs"


def register_model_configs() -> None:
    """Make the project's configs known to open_clip (idempotent)."""
    from tierclip.curate.clipmodels import register_model_configs as register

    register(CONFIG_DIR)


def model_config(name: str) -> dict | None:
    """The open_clip config of a model name (None for an hf-hub: model); a clear error for an unknown one."""
    from tierclip.curate.clipmodels import model_config as open_clip_config

    register_model_configs()
    known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))
    return open_clip_config(name, hint=f"project models: {known}; or any of open_clip.list_models()")


def create_model(name: str, pretrained: str | None = None, overrides: dict | None = None, device: str = "cpu"):
    """The one loader (curate.clipmodels) with the project's configs registered: (model, preprocess_train, preprocess_val)."""
    from tierclip.curate.clipmodels import load_model

    model_config(name)
    return load_model(name, pretrained, device=device, overrides=overrides, flag="--model")


def get_tokenizer(name: str):
    from tierclip.curate.clipmodels import get_tokenizer as tokenizer

    register_model_configs()
    return tokenizer(name)


def write_model_config(name: str, folder: str | Path) -> Path:
    """Write `folder/NAME.json` (the model's open_clip config) so the checkpoint beside it can be loaded by name."""
    from tierclip.curate import atomic

    path = Path(folder) / f"{name}.json"
    atomic.write_json(path, model_config(name))
    return path


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def describe_model(model, image_size=None) -> dict:
    """What a run records about its model (results.json, `analysis collect` columns), read from the instantiated
    open_clip model itself: tower type, parameter counts per tower, widths, depths, context and vocabulary.

    family: "convnet" (open_clip's ModifiedResNet, or a timm model that is not a ViT), "vit" (VisionTransformer
    or a timm ViT). image_depth: transformer blocks of a ViT, residual blocks of a ResNet (sum of `layers`).
    image_width: a ViT's token width, a ResNet's stem width. text_params counts everything outside the image
    tower except the logit scale/bias; embedding_params is its token embedding (vocabulary x text width).
    """
    visual = model.visual
    text = getattr(model, "text", model)  # CustomTextCLIP keeps its text tower in .text, CLIP on itself
    scalars = sum(p.numel() for name, p in model.named_parameters() if name in ("logit_scale", "logit_bias"))
    image_params = count_parameters(visual)
    embedding = getattr(text, "token_embedding", None)
    family, image_width, image_depth = _image_tower_shape(visual)
    return {
        "model_family": family, "params": count_parameters(model), "image_params": image_params,
        "text_params": count_parameters(model) - image_params - scalars,
        "embedding_params": embedding.weight.numel() if embedding is not None else None,
        "image_size": _first(image_size if image_size is not None else getattr(visual, "image_size", None)),
        "image_width": image_width, "image_depth": image_depth,
        "text_width": getattr(getattr(text, "transformer", None), "width", None),
        "text_depth": getattr(getattr(text, "transformer", None), "layers", None),
        "text_context": getattr(model, "context_length", getattr(text, "context_length", None)),
        "vocab_size": getattr(model, "vocab_size", getattr(text, "vocab_size", None)),
    }


def _image_tower_shape(visual) -> tuple[str, int | None, int | None]:
    """(family, width, depth) of an open_clip image tower."""
    from open_clip.modified_resnet import ModifiedResNet
    from open_clip.transformer import VisionTransformer

    if isinstance(visual, VisionTransformer):
        return "vit", visual.transformer.width, visual.transformer.layers
    if isinstance(visual, ModifiedResNet):
        blocks = sum(len(getattr(visual, f"layer{i}")) for i in range(1, 5))
        return "convnet", visual.conv1.out_channels * 2, blocks  # the stem's first conv has width // 2 channels
    name = str(getattr(getattr(visual, "trunk", None), "default_cfg", {}).get("architecture", type(visual).__name__))
    family = "vit" if any(key in name.lower() for key in ("vit", "deit", "eva", "beit")) else "convnet"
    return family, None, None


def _first(size):
    return size[0] if isinstance(size, (tuple, list)) else size


def describe_configs() -> dict[str, dict]:
    """Name → config of the project's own models (for docs and `--help`)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(CONFIG_DIR.glob("*.json"))}
