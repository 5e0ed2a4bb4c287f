"""FLIP (Li et al. 2023, "Scaling Language-Image Pre-training via Masking", arXiv:2212.00794).

CLIP with a random share of the image patches dropped while training: open_clip's own
`PatchDropout` in its VisionTransformer, switched on by the model override
`force_patch_dropout=mask_ratio` (0.5 by default, 0.75 the paper's other setting). The image tower
sees fewer tokens, so a step costs less. `on_progress` turns the dropout off for the final
`unmasked_tuning` share of training: FLIP's unmasked tuning phase, which closes the gap between
training on masked and evaluating on full images. Evaluation (`model.eval()`) never masks:
PatchDropout is a no-op outside training mode.

Patch dropout exists only in open_clip's own ViT tower (a ResNet has no patches; a timm tower's
patch dropout is timm's and not switched here), so other towers are refused with a UserError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from tierclip.curate.errors import UserError
from tierclip.curate.fields import Checked, option
from tierclip.train.methods.clip import Clip
from tierclip.train.methods.common import unwrap


@dataclass(frozen=True)
class FlipConfig(Checked):
    prefix: ClassVar[str] = "flip"
    mask_ratio: float = option(0.5, "share of image patches dropped while training (FLIP: 0.5, or 0.75).", gt=0, lt=1)
    unmasked_tuning: float = option(0.0, "final share of training run without masking (FLIP's unmasked tuning; 0 = none).",
                                    ge=0, le=1)


def patch_dropouts(model) -> list:
    """The PatchDropout modules of the image tower (open_clip builds one per ViT when asked)."""
    from open_clip.transformer import PatchDropout

    return [module for module in unwrap(model).visual.modules() if isinstance(module, PatchDropout)]


class Flip(Clip):
    config = FlipConfig
    views: tuple[str, ...] = ("image", "text")

    @classmethod
    def overrides_for(cls, cfg: FlipConfig) -> dict:
        return {"force_patch_dropout": float(cfg.mask_ratio)}

    @classmethod
    def check_model_config(cls, model_name: str, model_cfg: dict) -> None:
        vision_cfg = model_cfg.get("vision_cfg", {})
        if isinstance(vision_cfg.get("layers"), (list, tuple)):
            raise UserError(f"flip: model {model_name} has a ResNet image tower; patch dropout needs a ViT tower")
        if vision_cfg.get("timm_model_name") or vision_cfg.get("hf_model_name"):
            raise UserError(f"flip: model {model_name} has a timm/HF image tower; FLIP needs open_clip's own ViT tower")

    def check_model(self, model) -> None:
        if not patch_dropouts(model):
            tower = type(unwrap(model).visual).__name__
            raise UserError(f"flip: the image tower ({tower}) has no patch dropout; FLIP needs an open_clip ViT tower "
                            "created with train.methods.model_overrides('flip', cfg) (force_patch_dropout=mask_ratio)")

    def final_phase_share(self) -> float:
        return float(self.cfg.unmasked_tuning)

    def on_progress(self, model, progress: float) -> None:
        """Mask at `mask_ratio` until the final `unmasked_tuning` share of training, then not at all."""
        tuning = float(self.cfg.unmasked_tuning)
        unmasked = tuning > 0.0 and progress >= 1.0 - tuning
        for module in patch_dropouts(model):
            module.prob = 0.0 if unmasked else float(self.cfg.mask_ratio)
