"""CLIP+Aug (Li, Xie, Cubuk 2024, "Scaling (Down) CLIP", arXiv:2404.08197): CLIP on a strongly augmented image.

The loss is CLIP's; only the view changes: `image_aug` (random resized crop, colour jitter,
grayscale, Gaussian blur; see train/augment.py and its `AugmentConfig` for the knobs).
"""

from __future__ import annotations

from tierclip.train.methods.clip import Clip


class ClipAug(Clip):
    views: tuple[str, ...] = ("image_aug", "text")
    image_view = "image_aug"
