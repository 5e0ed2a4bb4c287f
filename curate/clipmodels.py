"""The one open_clip model loader (the clip stage, `train run`, `train eval`) and the one place JSON model configs
are registered with open_clip.

`load_model(name, pretrained)` checks the name and the weights before building anything (an unknown model, a
pretrained value that is neither a file nor one of the model's tags, weights that do not load: one line each)
and returns what `open_clip.create_model_and_transforms` returns.
"""

from __future__ import annotations

from pathlib import Path

from tierclip.curate.errors import UserError

# Folders (or files) of JSON model configs already given to open_clip.add_model_config; kept here because
# open_clip exposes no public list of them and re-adding one rescans every config.
_REGISTERED: set[str] = set()
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def register_model_configs(*paths: str | Path) -> None:
    """Make the JSON model configs in each path (a file or a folder) known to open_clip by name; idempotent."""
    import open_clip

    for path in paths:
        key = str(Path(path).resolve())
        if key not in _REGISTERED:
            open_clip.add_model_config(path)
            _REGISTERED.add(key)


def model_config(name: str, flag: str = "--model", hint: str = "") -> dict | None:
    """The open_clip config of a registered model name (None for an `hf-hub:` model); one line for an unknown name."""
    import open_clip

    if name.startswith("hf-hub:"):
        return None
    config = open_clip.get_model_config(name)
    if config is None:
        raise UserError(f"{flag} {name}: unknown open_clip model ({hint or 'any of open_clip.list_models()'})")
    return config


def check_pretrained(name: str, pretrained: str | None) -> None:
    """`pretrained` must be a checkpoint file or one of the model's open_clip tags."""
    import open_clip

    if not pretrained or Path(pretrained).is_file():
        return
    tags = open_clip.list_pretrained_tags_by_model(name)
    if pretrained not in tags:
        raise UserError(f"{pretrained}: neither a checkpoint file nor a pretrained tag of {name} (tags: {', '.join(tags) or 'none'})")


def load_model(name: str, pretrained: str | None = None, *, device: str = "cpu", overrides: dict | None = None,
               flag: str = "--model", hint: str = "") -> tuple:
    """(model, train preprocess, eval preprocess) of open_clip model `name` with `pretrained` weights (a tag or a
    checkpoint file; None: random initialisation). Configs outside open_clip: `register_model_configs` first."""
    import pickle

    import open_clip

    model_config(name, flag, hint)
    check_pretrained(name, pretrained)
    try:
        return open_clip.create_model_and_transforms(name, pretrained=pretrained or None, device=device, **(overrides or {}))
    except (RuntimeError, KeyError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        if not (pretrained and Path(pretrained).is_file()):
            raise
        raise UserError(f"{pretrained}: cannot load into {name} ({(str(exc).splitlines() or [type(exc).__name__])[0]})") from None


def get_tokenizer(name: str):
    import open_clip

    return open_clip.get_tokenizer(name)
