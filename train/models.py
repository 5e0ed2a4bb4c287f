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

Pitfall (docs/train.md): the text tower keeps open_clip's 49,408-token
embedding so that checkpoints load with the stock tokenizer; in these tiny
models it holds most of the parameters and its AdamW update costs a good
share of CPU throughput. We keep it for compatibility.
"""

from __future__ import annotations

import json
from pathlib import Path

from curate.errors import UserError

CONFIG_DIR = Path(__file__).parent / "model_configs"


def register_model_configs() -> None:
    """Make the project's configs known to open_clip (idempotent)."""
    import open_clip
    from open_clip import factory

    if CONFIG_DIR not in factory._MODEL_CONFIG_PATHS:
        open_clip.add_model_config(CONFIG_DIR)


def model_config(name: str) -> dict:
    """The open_clip config of a model name; a clear error for an unknown one."""
    import open_clip

    register_model_configs()
    config = open_clip.get_model_config(name)
    if config is None:
        known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))
        raise UserError(f"--model {name}: unknown model (project models: {known}; or any of open_clip.list_models())")
    return config


def create_model(name: str, pretrained: str | None = None, overrides: dict | None = None, device: str = "cpu"):
    """`open_clip.create_model_and_transforms` after registering our configs: (model, preprocess_train, preprocess_val)."""
    import open_clip

    model_config(name)
    if pretrained and not Path(pretrained).is_file() and pretrained not in open_clip.list_pretrained_tags_by_model(name):
        raise UserError(f"--pretrained {pretrained}: neither a checkpoint file nor a pretrained tag of {name}")
    return open_clip.create_model_and_transforms(name, pretrained=pretrained or None, device=device, **(overrides or {}))


def get_tokenizer(name: str):
    import open_clip

    register_model_configs()
    return open_clip.get_tokenizer(name)


def write_model_config(name: str, folder: str | Path) -> Path:
    """Write `folder/NAME.json` (the model's open_clip config) so the checkpoint beside it can be loaded by name."""
    from curate import atomic

    path = Path(folder) / f"{name}.json"
    atomic.write_json(path, model_config(name))
    return path


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def describe_configs() -> dict[str, dict]:
    """Name → config of the project's own models (for docs and `--help`)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(CONFIG_DIR.glob("*.json"))}
