"""SLIP (Mu et al. 2022, arXiv:2112.12750): CLIP + SimCLR on two augmented views through the image tower.

Mirrors facebookresearch/SLIP (models.py `SLIP`, losses.py `SIMCLRLoss`/`SLIPLoss`):
- the CLIP loss on (`image_crop`, `text`): SLIP's CLIP branch trains on its `train_transform`, a random resized
  crop keeping 50-100% of the image (`--no-slip-clip-crop`: the eval preprocess, view `image`);
- the two SimCLR views `image_ssl1`, `image_ssl2` go through the image tower's *trunk*, i.e. the
  pooled features before the CLIP projection (SLIP's timm ViT with num_classes=0: the class token
  after the final norm), each view in its own call as SLIP does (batch-norm statistics per view);
- a 3-layer projection MLP (Linear-BN-ReLU-Linear-BN-ReLU-Linear) owned by this module, so the
  optimizer picks it up from `method.parameters()`;
- NT-Xent with temperature `ssl_temperature` (0.1) and weight `ssl_scale` (1.0).

open_clip towers: for its VisionTransformer the trunk is the pooled token after `ln_post` without `proj`
(exactly SLIP's choice), read through the public `forward_intermediates`; for ModifiedResNet the CLIP projection lives inside the attention
pool, so the trunk is the last stage's feature map, average-pooled. Other towers (timm, HF) fall back
to the projected image features (`encode_image`), the only output they share.

The MLP uses BatchNorm1d, not SLIP's SyncBatchNorm (which needs CUDA once a process group is up);
on multi-GPU runs the loop may call `torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)` to match
SLIP exactly. Statistics are per process otherwise.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from tierclip.curate.errors import UserError
from tierclip.curate.fields import Checked, option
from tierclip.train.methods.clip import Clip
from tierclip.train.methods.common import clip_loss, rank_world, unwrap
from tierclip.train.methods.towers import vit_trunk_features

# SLIP's head for ViT-S/B/L (CLIP embedding 512): mlp 4096, out 256. Unset dims scale with the CLIP
# embedding width (8x and 1/2, capped at SLIP's values), so a tiny 128-d model gets 1024/64.
SLIP_MLP_DIM, SLIP_EMB_DIM = 4096, 256


@dataclass(frozen=True)
class SlipConfig(Checked):
    prefix: ClassVar[str] = "slip"
    ssl_scale: float = option(1.0, "weight of the SimCLR loss (SLIP's ssl_scale).", ge=0)
    ssl_temperature: float = option(0.1, "SimCLR (NT-Xent) temperature (SLIP's ssl_temp).", gt=0)
    mlp_dim: int | None = option(None, "hidden width of the SimCLR MLP (default: 8x the CLIP embedding width, at most "
                                       "SLIP's 4096).", ge=1)
    emb_dim: int | None = option(None, "output width of the SimCLR MLP (default: half the CLIP embedding width, at most "
                                       "SLIP's 256).", ge=1)
    clip_crop: bool = option(True, "train the CLIP branch on SLIP's random resized crop (view image_crop, --aug "
                                   "slip_crop_scale); off: on the eval preprocess (view image).")


class Trunk(NamedTuple):
    features: Callable  # (visual, images) -> (batch, dim)
    dim: Callable       # (visual) -> dim


def _vit_dim(visual) -> int:
    return visual.proj.shape[0] if visual.proj is not None else visual.output_dim


def _resnet_features(visual, images):
    feature_map = visual.forward_intermediates(images, indices=1, intermediates_only=True)["image_intermediates"][-1]
    return feature_map.mean(dim=(2, 3))


def _resnet_dim(visual) -> int:
    return visual.attnpool.c_proj.in_features


def _projected_features(visual, images):
    return visual(images)


def _projected_dim(visual) -> int:
    return visual.output_dim


def _trunks() -> dict:
    """Tower type -> how to read its pre-projection features (imported lazily: open_clip is heavy)."""
    from open_clip.modified_resnet import ModifiedResNet
    from open_clip.transformer import VisionTransformer

    return {VisionTransformer: Trunk(vit_trunk_features, _vit_dim), ModifiedResNet: Trunk(_resnet_features, _resnet_dim)}


def image_trunk(visual) -> Trunk:
    trunk = _trunks().get(type(visual))
    if trunk is None and not hasattr(visual, "output_dim"):
        raise UserError(f"slip: cannot read features from image tower {type(visual).__name__} (no output_dim)")
    return trunk or Trunk(_projected_features, _projected_dim)


def embed_dim(model) -> int:
    """The CLIP embedding width of an open_clip model."""
    visual = unwrap(model).visual
    return int(visual.output_dim)


def ssl_dims(cfg: SlipConfig, clip_embed_dim: int) -> tuple[int, int]:
    """(mlp_dim, emb_dim) of the SimCLR head: the config's when set, else scaled from the CLIP width."""
    mlp_dim = cfg.mlp_dim or min(SLIP_MLP_DIM, 8 * clip_embed_dim)
    emb_dim = cfg.emb_dim or min(SLIP_EMB_DIM, max(clip_embed_dim // 2, 1))
    return int(mlp_dim), int(emb_dim)


def ssl_mlp(in_dim: int, mlp_dim: int, out_dim: int):
    """SLIP's `_build_mlp`, with BatchNorm1d (see the module docstring)."""
    from torch import nn

    return nn.Sequential(OrderedDict([
        ("layer1", nn.Linear(in_dim, mlp_dim)),
        ("bn1", nn.BatchNorm1d(mlp_dim)),
        ("relu1", nn.ReLU(inplace=True)),
        ("layer2", nn.Linear(mlp_dim, mlp_dim)),
        ("bn2", nn.BatchNorm1d(mlp_dim)),
        ("relu2", nn.ReLU(inplace=True)),
        ("layer3", nn.Linear(mlp_dim, out_dim)),
    ]))


def nt_xent(emb_a, emb_b, temperature: float, rank: int = 0, world_size: int = 1, local_loss: bool = False):
    """SimCLR's NT-Xent between two views, as SLIP's SIMCLRLoss computes it.

    Written here because neither open_clip nor torch ships a SimCLR loss; the gather is open_clip's
    `gather_features` (with gradients). Each row's positive is the same sample's other view; its
    negatives are every other sample of both views (itself masked out). With local_loss=False every
    rank scores the whole gathered batch, so the value equals the single-process loss.
    """
    import torch
    import torch.nn.functional as F
    from open_clip.loss import gather_features

    emb_a, emb_b = F.normalize(emb_a, dim=-1), F.normalize(emb_b, dim=-1)
    all_a, all_b = emb_a, emb_b
    if world_size > 1:
        all_a, all_b = gather_features(emb_a, emb_b, local_loss=local_loss, gather_with_grad=True,
                                       rank=rank, world_size=world_size)
    q_a, q_b = (emb_a, emb_b) if local_loss else (all_a, all_b)
    offset = rank * emb_a.shape[0] if local_loss else 0
    labels = torch.arange(q_a.shape[0], device=q_a.device) + offset
    self_mask = F.one_hot(labels, all_a.shape[0]).bool()
    logits_aa = (q_a @ all_a.T / temperature).masked_fill(self_mask, float("-inf"))
    logits_bb = (q_b @ all_b.T / temperature).masked_fill(self_mask, float("-inf"))
    logits_ab = q_a @ all_b.T / temperature
    logits_ba = q_b @ all_a.T / temperature
    loss_a = F.cross_entropy(torch.cat([logits_ab, logits_aa], dim=1), labels)
    loss_b = F.cross_entropy(torch.cat([logits_ba, logits_bb], dim=1), labels)
    return (loss_a + loss_b) / 2


class Slip(Clip):
    config = SlipConfig
    views: tuple[str, ...] = ("image_crop", "text", "image_ssl1", "image_ssl2")
    image_view = "image_crop"

    def __init__(self, model, cfg):
        super().__init__(model, cfg)
        if not cfg.clip_crop:
            self.image_view = "image"
            self.views = ("image", "text", "image_ssl1", "image_ssl2")
        visual = unwrap(model).visual
        self.trunk = image_trunk(visual)
        mlp_dim, emb_dim = ssl_dims(cfg, embed_dim(model))
        self.image_mlp = ssl_mlp(self.trunk.dim(visual), mlp_dim, emb_dim)

    def ssl_embedding(self, model, images):
        return self.image_mlp(self.trunk.features(unwrap(model).visual, images))

    def forward(self, model, batch: dict) -> dict:
        clip = clip_loss(model(batch[self.image_view], batch["text"]), self.cfg)
        rank, world_size = rank_world(self.cfg)
        ssl = nt_xent(self.ssl_embedding(model, batch["image_ssl1"]), self.ssl_embedding(model, batch["image_ssl2"]),
                      float(self.cfg.ssl_temperature), rank, world_size, bool(getattr(self.cfg, "local_loss", False)))
        return {"loss": clip + float(self.cfg.ssl_scale) * ssl, "clip_loss": clip, "ssl_loss": ssl}
