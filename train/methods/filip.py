"""FILIP (Yao et al. 2022, "FILIP: Fine-grained Interactive Language-Image Pre-Training", arXiv:2111.07783).

Token-wise late interaction, after Sense-GVT/DeCLIP `prototype/model/filip.py` and its yfcc15m FILIP config:
- the image is the first MoCo v2 view (`--no-filip-moco-view`: the eval preprocess), the caption the MLM-masked
  one (`--filip-text-mask-rate` 0.5; no MLM loss) for both the pooled and the token-wise features;
- image patch tokens (before `ln_post`, `--filip-ln-post-tokens` for after) and caption tokens (after `ln_final`)
  are projected to `--filip-dim` (256) by two linear heads owned by this module and L2-normalised;
- s_I(i, j) = mean over image i's patch tokens of the max over caption j's tokens of <x, y>;
  s_T(j, i) = mean over caption j's tokens of the max over image i's tokens; padding never counts (the
  reference includes it; the paper excludes it, and so do we);
- each sample keeps its `--filip-topk` (16) best-matching tokens as the *keys* of the max (scored against its
  own pair, as the reference does) before the all-gather; queries are all tokens (0 = keep every token);
- a symmetric InfoNCE over s_I and s_T with its own learnable temperature (init 1/0.07), clamped into the run's
  logit-scale window with the model's (the loop clamps every parameter named `logit_scale`), capped at 100.

The `filip` method trains `clip_weight * clip_loss + filip_weight * filip_loss` (docs/methods.md, "FILIP's
weights"). Under DDP the whole gathered batch is scored on every rank (as `ClipLoss(local_loss=False)`), so the
loss equals one process's. `checkpoint_extras` puts the head into checkpoint.pt for token-wise evaluation.

Needs open_clip's ViT tower: a ResNet's final feature map on the CPU configs is 1x1 (one token), so FILIP on
a ResNet tower is refused up front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from tierclip.curate.errors import UserError
from tierclip.curate.fields import Checked, option
from tierclip.train.augment import ViewConfig
from tierclip.train.methods.clip import Clip
from tierclip.train.methods.common import DECLIP_RUN_DEFAULTS, capped_scale, gather_all, normalized_clip_loss, unwrap
from tierclip.train.methods.modules import LazyModule
from tierclip.train.methods.towers import encode_image_tokens, encode_text_tokens, text_valid_mask, text_width, vision_token_width

FILIP_INIT_SCALE = 1 / 0.07
TOKEN_HEAD_KEY = "filip_head"  # checkpoint.pt's entry holding a FILIP run's token-wise head


@dataclass(frozen=True)
class FilipHeadConfig(Checked):
    """FILIP's token-wise head (projections, temperature, loss): used by `filip` and by `defilip`."""

    prefix: ClassVar[str] = "filip"
    topk: int = option(16, "tokens per sample kept as keys of the token-wise max (0 = all).", ge=0)
    dim: int = option(256, "width the image and caption tokens are projected to.", ge=1)
    ln_post_tokens: bool = option(False, "take the image patch tokens after the tower's ln_post (off: before it, as the "
                                         "reference).")


@dataclass(frozen=True)
class FilipConfig(Checked):
    prefix: ClassVar[str] = "filip"
    clip_weight: float = option(0.0, "weight of the pooled CLIP loss (clip_loss), as the reference FILIP config; > 0 also "
                                     "trains the pooled embeddings (zero-shot rows without tokenwise_, the curate clip stage).",
                                ge=0)
    weight: float = option(1.0, "weight of the token-wise loss (filip_loss).", ge=0)
    text_mask_rate: float = option(0.5, "share of caption tokens masked (BERT's 80/10/10) in the text input of both "
                                        "losses, as the reference FILIP config (mask_rate 0.5, no MLM loss); 0 = the "
                                        "plain caption.", ge=0, lt=1)
    moco_view: bool = option(True, "train on a MoCo v2 view (image_moco1), as the reference FILIP config (MOCOV2 transforms, "
                                   "its forward uses the first view); off: the eval preprocess (view image).")
    head: FilipHeadConfig = FilipHeadConfig()


def late_interaction(queries, query_valid, keys, key_valid):
    """(A, B): for query sample a and key sample b, the mean over a's valid tokens of the max over b's valid tokens
    of the dot product. queries (A, n, D), keys (B, m, D), validity masks (A, n), (B, m)."""
    import torch

    sims = torch.einsum("and,bmd->abnm", queries, keys)
    sims = sims.masked_fill(~key_valid[None, :, None, :], float("-inf"))
    best = sims.amax(dim=-1)                                   # (A, B, n)
    weights = query_valid[:, None, :].to(best.dtype)
    best = torch.where(weights > 0, best, torch.zeros_like(best))  # padded queries: -inf never reaches the mean
    return (best * weights).sum(-1) / weights.sum(-1).clamp(min=1)


def select_keys(tokens, valid, scores, k: int):
    """Each sample's k highest-scoring valid tokens (and their validity): FILIP's token selection before the gather."""
    import torch

    if k <= 0 or k >= tokens.shape[1]:
        return tokens, valid
    with torch.no_grad():
        index = scores.masked_fill(~valid, float("-inf")).topk(k, dim=1).indices
    picked = torch.gather(tokens, 1, index[..., None].expand(-1, -1, tokens.shape[-1]))
    return picked, torch.gather(valid, 1, index)


class FilipHead(LazyModule):
    """FILIP's token projections, temperature and loss."""

    def __init__(self, image_width: int, text_width_: int, cfg: FilipHeadConfig):
        import torch
        from torch import nn

        super().__init__()
        dim, self.topk = int(cfg.dim), int(cfg.topk)
        self.cfg = cfg
        self.image_proj = nn.Linear(image_width, dim)
        self.text_proj = nn.Linear(text_width_, dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(FILIP_INIT_SCALE)))

    def image_features(self, image_tokens):
        """Patch tokens projected to the head's width and L2-normalised."""
        import torch.nn.functional as F

        return F.normalize(self.image_proj(image_tokens), dim=-1)

    def text_features(self, text_tokens):
        import torch.nn.functional as F

        return F.normalize(self.text_proj(text_tokens), dim=-1)

    def similarities(self, image_tokens, text_tokens, text_valid):
        """(s_I, s_T) over this process's batch against the gathered batch's kept tokens (everything on 1 process)."""
        import torch

        x, y = self.image_features(image_tokens), self.text_features(text_tokens)
        image_valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        with torch.no_grad():  # each token's total similarity to its own pair's valid tokens (the reference's rule)
            own = torch.einsum("bnd,bmd->bnm", x, y).masked_fill(~text_valid[:, None, :], 0.0)
        image_keys, image_keys_valid = select_keys(x, image_valid, own.sum(2), self.topk)
        text_keys, text_keys_valid = select_keys(y, text_valid, own.sum(1), self.topk)
        gather = lambda t, grad=True: gather_all(t, self.cfg, with_grad=grad)  # noqa: E731
        x_all, y_all, text_valid_all = gather(x), gather(y), gather(text_valid, grad=False)
        image_valid_all = torch.ones(x_all.shape[:2], dtype=torch.bool, device=x.device)
        s_image = late_interaction(x_all, image_valid_all, gather(text_keys), gather(text_keys_valid, grad=False))
        s_text = late_interaction(y_all, text_valid_all, gather(image_keys), gather(image_keys_valid, grad=False))
        return s_image, s_text

    def forward(self, image_tokens, text_tokens, text_valid):
        import torch
        import torch.nn.functional as F

        s_image, s_text = self.similarities(image_tokens, text_tokens, text_valid)
        scale = capped_scale(self.logit_scale.exp())
        labels = torch.arange(s_image.shape[0], device=s_image.device)
        return (F.cross_entropy(scale * s_image, labels) + F.cross_entropy(scale * s_text, labels)) / 2

    def pairwise_flops(self, batch: int, image_tokens: int, text_tokens: int) -> int:
        """Forward FLOPs of the two token-interaction einsums on a (gathered) batch of `batch` pairs: they grow as
        batch², so a count on a small batch misses them (train/flops.py adds them at the run's global batch)."""
        dim = self.image_proj.out_features
        keep = (lambda n: n if self.topk <= 0 else min(self.topk, n))  # noqa: E731
        return 2 * batch * batch * dim * (image_tokens * keep(text_tokens) + text_tokens * keep(image_tokens))


def check_vit_config(method: str, model_name: str, model_cfg: dict) -> None:
    vision_cfg = model_cfg.get("vision_cfg", {})
    if isinstance(vision_cfg.get("layers"), (list, tuple)):
        raise UserError(f"{method}: model {model_name} has a ResNet image tower; FILIP's token-wise similarity needs "
                        "a ViT tower (a tiny ResNet's final feature map is a single position)")
    if vision_cfg.get("timm_model_name") or vision_cfg.get("hf_model_name"):
        raise UserError(f"{method}: model {model_name} has a timm/HF image tower; FILIP needs open_clip's own ViT tower")


class Filip(Clip):
    config = FilipConfig
    run_defaults = DECLIP_RUN_DEFAULTS
    views: tuple[str, ...] = ("image_moco1", "text_mlm")
    image_view = "image_moco1"

    def __init__(self, model, cfg: FilipConfig):
        super().__init__(model, cfg)
        self.filip = FilipHead(vision_token_width(model, "filip"), text_width(model, "filip"), cfg.head)
        self.text_view = "text_mlm" if cfg.text_mask_rate > 0 else "text"
        self.image_view = "image_moco1" if cfg.moco_view else "image"
        self.views = (self.image_view, self.text_view)

    def view_config(self, aug=None) -> ViewConfig:
        return ViewConfig(aug=aug, mask_rate=self.cfg.text_mask_rate or None)

    def caption_ids(self, batch: dict):
        """The caption's input ids: the masked caption's (its labels are unused: FILIP has no MLM loss) or the plain one."""
        return batch["text_mlm"][:, 0] if self.text_view == "text_mlm" else batch["text"]

    @classmethod
    def check_model_config(cls, model_name: str, model_cfg: dict) -> None:
        check_vit_config("filip", model_name, model_cfg)

    def forward(self, model, batch: dict) -> dict:
        ids = self.caption_ids(batch)
        image_features, image_tokens = encode_image_tokens(model, batch[self.image_view], self.cfg.head.ln_post_tokens)
        text_features, text_tokens = encode_text_tokens(model, ids)
        clip = normalized_clip_loss(image_features, text_features, unwrap(model).logit_scale, self.cfg)
        filip = self.filip(image_tokens, text_tokens, text_valid_mask(ids))
        loss = float(self.cfg.clip_weight) * clip + float(self.cfg.weight) * filip
        return {"loss": loss, "clip_loss": clip, "filip_loss": filip}

    def checkpoint_extras(self) -> dict:
        return token_head_extras(self.filip)

    def pairwise_flops(self, batch: int, model) -> int:
        return self.filip.pairwise_flops(batch, *token_counts(model))


def token_head_extras(head: FilipHead) -> dict:
    """A FILIP head beside the model in checkpoint.pt (open_clip ignores the key): `train eval` scores FILIP and
    DeFILIP runs token-wise with it (train/eval_tokenwise.py)."""
    from tierclip.curate.cliopts import flat_options

    return {TOKEN_HEAD_KEY: {"state_dict": head.state_dict(), "config": flat_options(head.cfg)}}


def token_counts(model) -> tuple[int, int]:
    """(image patch tokens, text context positions) of an open_clip ViT + CLIP text tower."""
    bare = unwrap(model)
    grid = bare.visual.grid_size
    return int(grid[0] * grid[1]), int(bare.context_length)
