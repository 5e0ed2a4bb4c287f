"""Named compute scales: one dict, so runs at the same scale are comparable.

DataComp's `small` and `medium` follow its training table (mlfoundations/datacomp
`SCALE_CONFIGS`: ViT-B-32, global batch 4096, lr 5e-4, 500 warmup steps, 12.8M /
128M samples seen) with its optimizer settings (AdamW beta2 0.98, weight decay 0.2).
`cpu-small` is sized from docs measured on the 2-core development box
(tiny ResNet tower, ~800 samples/s): about a minute of training that learns
shape and colour on the synthetic pool. `debug` is a few steps for smoke tests.
Any field can be overridden by a `train run` flag; `config.json` records the
resolved values.
"""

from __future__ import annotations

from dataclasses import dataclass

from tierclip.curate.errors import UserError


@dataclass(frozen=True)
class Scale:
    model: str
    batch_size: int
    lr: float
    warmup_steps: int    # optimizer steps of linear warmup
    samples_seen: int
    weight_decay: float


SCALES: dict[str, Scale] = {
    "debug": Scale(model="tc-rn-tiny", batch_size=16, lr=1e-3, warmup_steps=2, samples_seen=256, weight_decay=0.1),
    "cpu-small": Scale(model="tc-rn-tiny", batch_size=128, lr=2e-3, warmup_steps=38, samples_seen=48_000, weight_decay=0.1),
    "small": Scale(model="ViT-B-32", batch_size=4096, lr=5e-4, warmup_steps=500, samples_seen=12_800_000, weight_decay=0.2),
    "medium": Scale(model="ViT-B-32", batch_size=4096, lr=5e-4, warmup_steps=500, samples_seen=128_000_000, weight_decay=0.2),
}


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise UserError(f"--scale {name}: unknown scale (known: {', '.join(SCALES)})")
    return SCALES[name]
