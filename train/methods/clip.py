"""CLIP (Radford et al. 2021, arXiv:2103.00020): the symmetric image–text contrastive loss, open_clip's `ClipLoss`."""

from __future__ import annotations

from tierclip.curate.fields import NoOptions
from tierclip.train.augment import ViewConfig
from tierclip.train.methods.common import clip_loss
from tierclip.train.methods.modules import LazyModule


class Clip(LazyModule):
    """Plain CLIP on the eval-style `image` view. Owns no parameters.

    The base of every method: `config` is the method's config dataclass (its fields are `train run` options,
    `--PREFIX-FIELD` with the config's `prefix`), `views` the loader views it needs.
    """

    config: type = NoOptions
    views: tuple[str, ...] = ("image", "text")
    model_overrides: dict = {}
    image_view = "image"

    def __init__(self, model, cfg):
        super().__init__()
        self.cfg = cfg
        self.check_model(model)

    @classmethod
    def overrides_for(cls, cfg) -> dict:
        """kwargs for open_clip.create_model_and_transforms under this config (default: the class's)."""
        return dict(cls.model_overrides)

    @classmethod
    def check_model_config(cls, model_name: str, model_cfg: dict) -> None:
        """Refuse an open_clip model config this method cannot train (raise UserError); default: any."""

    def check_model(self, model) -> None:
        """Refuse a built model this method cannot train (raise UserError); default: any."""

    def view_config(self, aug=None) -> ViewConfig:
        """What the loader's views need from the run (`aug`: the image augmentation) and from this method's config."""
        return ViewConfig(aug=aug)

    def forward(self, model, batch: dict) -> dict:
        loss = clip_loss(model(batch[self.image_view], batch["text"]), self.cfg)
        return {"loss": loss, "clip_loss": loss}

    def on_progress(self, model, progress: float) -> None:
        """Called by the loop every step with progress in [0, 1]; CLIP has no schedule of its own."""

    def final_phase_share(self) -> float:
        """The final share of training whose cost per sample is the one measured at progress 1 (FLIP's unmasked
        tuning); the rest costs what it costs at progress 0 (train/run.py counts FLOPs per phase)."""
        return 0.0
