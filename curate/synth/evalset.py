"""The synthetic pool's held-out eval set (format: `curate/evalset.py`).

Single-object images from their own seed stream (`EVAL_STREAM`), balanced
over the 64 shape x colour combinations (row i has shape i mod 8 and colour
(i div 8) mod 8), with random size, position and background. Three tasks:
`shape` and `color` (zero-shot; every word of their prompt templates occurs
in the pool's English caption templates) and `retrieval` (each image with
its canonical caption, e.g. "a small red star at the top left").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from tierclip.curate import atomic
from tierclip.curate.evalset import write_evalset
from tierclip.curate.synth.captions import canonical_caption
from tierclip.curate.synth.config import EVAL_STREAM
from tierclip.curate.synth.draw import encode_png, render
from tierclip.curate.synth.scene import COLOR_NAMES, POSITION_NAMES, SHAPES, Scene, sample_background, sample_object

SHAPE_TEMPLATES = ("a photo of a {}.", "an image of a {}.", "a picture of a {}.", "a {} shape.", "a simple drawing of a {}.")
COLOR_TEMPLATES = ("a photo of a {} shape.", "a {} shape.", "an image of a {} shape.", "a picture of a {} shape.")
TASKS = [
    {"name": "shape", "kind": "zeroshot", "label_column": "shape", "classnames": list(SHAPES), "templates": list(SHAPE_TEMPLATES)},
    {"name": "color", "kind": "zeroshot", "label_column": "color", "classnames": list(COLOR_NAMES), "templates": list(COLOR_TEMPLATES)},
    {"name": "retrieval", "kind": "retrieval", "caption_column": "caption"},
]


def write_synth_evalset(root: Path, n: int, seed: int, image_size: int) -> None:
    root = Path(root)
    rng = np.random.default_rng(np.random.SeedSequence([seed, EVAL_STREAM]))
    rows = []
    for i in range(n):
        obj = sample_object(rng, POSITION_NAMES[int(rng.integers(len(POSITION_NAMES)))],
                            shape=SHAPES[i % len(SHAPES)], color=COLOR_NAMES[(i // len(SHAPES)) % len(COLOR_NAMES)])
        scene = Scene((obj,), sample_background(rng))
        relative = f"images/{i:06d}.png"
        atomic.write_bytes(root / relative, encode_png(render(scene, image_size)))
        rows.append({"file": relative, "caption": canonical_caption(obj), "shape": obj.shape, "color": obj.color,
                     "size": obj.size, "position": obj.position})
    write_evalset(root, f"synth-eval-s{seed}", TASKS, pl.DataFrame(rows))
