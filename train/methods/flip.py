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

from tierclip.curate.errors import UserError
from tierclip.train.methods.clip import Clip
from tierclip.train.methods.common import unwrap


def check_mask_ratio(cfg) -> float:
    ratio = float(cfg.mask_ratio)
    if not 0.0 < ratio < 1.0:
        raise UserError(f"flip: mask_ratio must be in (0, 1), got {ratio} (FLIP uses 0.5 or 0.75)")
    return ratio


def check_unmasked_tuning(cfg) -> float:
    share = float(getattr(cfg, "unmasked_tuning", 0.0))
    if not 0.0 <= share <= 1.0:
        raise UserError(f"flip: unmasked_tuning must be a share of training in [0, 1], got {share}")
    return share


def patch_dropouts(model) -> list:
    """The PatchDropout modules of the image tower (open_clip builds one per ViT when asked)."""
    from open_clip.transformer import PatchDropout

    return [module for module in unwrap(model).visual.modules() if isinstance(module, PatchDropout)]


class Flip(Clip):
    views: tuple[str, ...] = ("image", "text")
    model_overrides: dict = {"force_patch_dropout": 0.5}

    @classmethod
    def overrides_for(cls, cfg) -> dict:
        check_unmasked_tuning(cfg)
        return {"force_patch_dropout": check_mask_ratio(cfg)}

    @classmethod
    def check_model_config(cls, model_name: str, model_cfg: dict) -> None:
        vision_cfg = model_cfg.get("vision_cfg", {})
        if isinstance(vision_cfg.get("layers"), (list, tuple)):
            raise UserError(f"flip: model {model_name} has a ResNet image tower; patch dropout needs a ViT tower")
        if vision_cfg.get("timm_model_name") or vision_cfg.get("hf_model_name"):
            raise UserError(f"flip: model {model_name} has a timm/HF image tower; FLIP needs open_clip's own ViT tower")

    def check_model(self, model) -> None:
        check_mask_ratio(self.cfg)
        check_unmasked_tuning(self.cfg)
        if not patch_dropouts(model):
            tower = type(unwrap(model).visual).__name__
            raise UserError(f"flip: the image tower ({tower}) has no patch dropout; FLIP needs an open_clip ViT tower "
                            "created with train.methods.model_overrides('flip', cfg) (force_patch_dropout=mask_ratio)")

    def on_progress(self, model, progress: float) -> None:
        """Mask at `mask_ratio` until the final `unmasked_tuning` share of training, then not at all."""
        tuning = check_unmasked_tuning(self.cfg)
        unmasked = tuning > 0.0 and progress >= 1.0 - tuning
        for module in patch_dropouts(model):
            module.prob = 0.0 if unmasked else float(self.cfg.mask_ratio)
