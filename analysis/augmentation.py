"""Which image augmentation a run trained with, read from its config.json: `augmentation_of(run_config)`.

`train run --aug KEY=VALUE` stores the `train.augment.AugmentConfig` fields set away from their defaults as a dict
under config.json's `run.aug` (empty: the method's own recipe). The reading is defensive, so a change in where
train records it stays a change here: the first dict named `aug` found under `run` (any depth), else a top-level
`method_cfg.aug` or `aug`. A run says "augmentation off" either with an explicit switch (`aug` set to false/"off",
or a boolean `enabled`/`augment`/`augmentation` key set to false, inside the aug dict or beside it) or by setting
every random part of its method's views to nothing (crop scale from 1, and no jitter, grayscale, blur or flip).

Values: "none" (the method has no image augmentation: clip, flip), "default" (the method's recipe),
"off", or "custom: KEY=VALUE, ..." (the options that touch the method's views), or None without a config.
"""

from __future__ import annotations

NONE, DEFAULT, OFF = "none", "default", "off"
_COMMON = ("jitter", "jitter_p", "grayscale_p", "blur_p")
AUGMENTED = {  # method -> the AugmentConfig fields its image views read (train/augment.py)
    "clip-aug": ("crop_scale", *_COMMON),
    "slip": ("ssl_crop_scale", *_COMMON, "flip_p", "slip_crop_scale"),
    "declip": ("moco_crop_scale", *_COMMON, "flip_p"),
    "filip": ("moco_crop_scale", *_COMMON, "flip_p"),
    "defilip": ("moco_crop_scale", *_COMMON, "flip_p"),
}
SWITCH_KEYS = ("enabled", "augment", "augmentation")  # boolean switches a config may carry (False = off)
OFF_WORDS = {"off", "none", "false", "no", "0"}


def augmentation_of(run_config: dict | None) -> str | None:
    """"none" | "default" | "off" | "custom: ..." for a run's config.json (None when there is no config)."""
    if not isinstance(run_config, dict) or not run_config:
        return None
    method = str(run_config.get("method") or (_find(run_config, "method_cfg") or {}).get("name") or "")
    if method not in AUGMENTED:
        return NONE
    holder, options = _aug_options(run_config)
    if _switched_off(holder, options):
        return OFF
    relevant = {key: value for key, value in options.items() if key in AUGMENTED[method]}
    if not relevant:
        return DEFAULT
    if _views_disabled(method, options):
        return OFF
    return "custom: " + ", ".join(f"{key}={_text(value)}" for key, value in sorted(relevant.items()))


def _find(tree: dict, key: str):
    """The first value stored under `key` in nested dicts (breadth first), or None."""
    holder = _holder_of(tree, key)
    return holder[key] if holder is not None else None


def _aug_options(run_config: dict) -> tuple[dict, object]:
    """(the dict holding the `aug` entry, the entry itself: a dict of options, or a switch value)."""
    for root in (run_config.get("run"), run_config.get("method_cfg"), run_config):
        if isinstance(root, dict):
            holder = _holder_of(root, "aug")
            if holder is not None:
                return holder, holder["aug"]
    return {}, {}


def _holder_of(tree: dict, key: str, depth: int = 4) -> dict | None:
    """The dict (at most `depth` levels down, breadth first) that holds `key`, or None."""
    level = [tree]
    for _ in range(depth):
        for node in level:
            if key in node:
                return node
        level = [child for node in level for child in node.values() if isinstance(child, dict)]
    return None


def _is_off(value) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() in OFF_WORDS)


def _switched_off(holder: dict, options) -> bool:
    if not isinstance(options, dict):
        return _is_off(options) or options is None
    return any(_is_off(place.get(key)) for place in (holder, options) for key in SWITCH_KEYS)


def _views_disabled(method: str, options: dict) -> bool:
    """True when every random part of the method's views is set to nothing (unset fields keep their defaults: on)."""
    keys = AUGMENTED[method]
    crops = [_pair(options.get(key)) for key in keys if key.endswith("crop_scale")]  # SLIP: its SSL and CLIP crops
    jitter_off = _number(options.get("jitter")) == 0 or _number(options.get("jitter_p")) == 0
    flip_off = "flip_p" not in keys or _number(options.get("flip_p")) == 0
    others_off = all(_number(options.get(key)) == 0 for key in ("grayscale_p", "blur_p"))
    return all(crop is not None and crop[0] >= 1 for crop in crops) and jitter_off and flip_off and others_off


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _pair(value) -> tuple[float, float] | None:
    parts = value.split(",") if isinstance(value, str) else value
    try:
        low, high = (float(v) for v in parts)
    except (TypeError, ValueError):
        return None
    return low, high


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)
