"""Fixtures for the stage tests: a tiny randomly initialised open_clip model saved like a `train run` checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

TINY_MODEL = "tc-stagetest-tiny"
TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def save_tiny_checkpoint(run_dir: Path) -> Path:
    """RUN/model_configs/NAME.json + RUN/checkpoint.pt, the layout `train run` writes."""
    import open_clip
    import torch

    configs = run_dir / "model_configs"
    configs.mkdir(parents=True, exist_ok=True)
    (configs / f"{TINY_MODEL}.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(configs)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_MODEL)
    checkpoint = run_dir / "checkpoint.pt"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    return checkpoint


def image_bytes(color, size=(16, 16), fmt="PNG") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()
