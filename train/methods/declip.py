"""DeCLIP (Li et al. 2022, "Supervision Exists Everywhere", arXiv:2110.05208) and DeFILIP (CLIP-benchmark,
Cui et al. 2022, arXiv:2203.05796): CLIP plus self-, multi-view and nearest-neighbour supervision.

After Sense-GVT/DeCLIP (`prototype/model/declip.py`, `defilip.py`, `prototype/solver/declip_solver.py`, the
yfcc15m configs). Loss = 0.4 L_mv + 0.2 L_simsiam + 0.2 L_mlm + 0.2 L_nn (weights `--declip-*-weight`):

- L_mv (`clip_loss`): two MoCo v2 image views (`image_moco1/2`) x two captions (`text_mlm`, the masked caption,
  and `text_eda`, its EDA augmentation): four symmetric CLIP losses (open_clip `ClipLoss`), averaged. As in the
  reference the caption's embedding comes from the masked tokens, in the same pass as the MLM prediction.
- L_simsiam (`simsiam_loss`): SimSiam on the two image views' projected, unnormalised embeddings; projector
  Linear(d,1024)-BN-ReLU-Linear-BN-ReLU-Linear-BN, predictor Linear(1024,512)-BN-ReLU-Linear(512,1024);
  -1/2 [cos(p1, sg z2) + cos(p2, sg z1)].
- L_mlm (`mlm_loss`): cross-entropy of Linear(text width, vocabulary) on the text tower's final token outputs at
  the masked positions (train/text_views.py chooses them; the vocabulary is read from the model).
- L_nn (`nn_loss`): a bank of detached, L2-normalised caption embeddings (random unit vectors at start); each
  caption's (and each EDA caption's) nearest banked neighbour is an extra positive for both image views: CE(image, NN(text)), averaged
  over the four pairs. The neighbours are detached, so the gradient reaches the image tower (and the shared
  temperature) only. Both caption views of the all-gathered batch are banked after the look-up, EDA view first.

DeFILIP adds `--defilip-filip-weight` (0.2) x FILIP's token-wise loss on image view 1 and the masked caption.

Distributed: every loss is computed over the whole gathered batch on each rank (gradients through the gather),
the SimSiam head runs on the gathered embeddings (so its BatchNorm sees the global batch) and the queue is
filled from the gathered captions in rank order: two processes compute what one process computes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

from tierclip.curate.fields import Checked, option
from tierclip.train.augment import ViewConfig
from tierclip.train.methods.clip import Clip
from tierclip.train.methods.common import DECLIP_RUN_DEFAULTS, capped_scale, gather_all, normalized_clip_loss, unwrap
from tierclip.train.methods.filip import FilipHead, FilipHeadConfig, check_vit_config, token_counts, token_head_extras
from tierclip.train.methods.modules import LazyModule
from tierclip.train.methods.towers import encode_image_tokens, encode_text_tokens, text_valid_mask, text_width, vision_token_width
from tierclip.train.methods.towers import vocab_size as model_vocab_size
from tierclip.train.text_views import IGNORE


@dataclass(frozen=True)
class DeclipConfig(Checked):
    """DeCLIP's options (the Sense-GVT/DeCLIP yfcc15m configs): used by `declip` and by `defilip`."""

    prefix: ClassVar[str] = "declip"
    clip_weight: float = option(0.4, "weight of the multi-view CLIP loss (clip_loss).", ge=0)
    simsiam_weight: float = option(0.2, "weight of the SimSiam image loss (simsiam_loss).", ge=0)
    mlm_weight: float = option(0.2, "weight of the masked-language loss (mlm_loss).", ge=0)
    nn_weight: float = option(0.2, "weight of the nearest-neighbour loss (nn_loss).", ge=0)
    queue_size: int = option(65536, "caption embeddings kept in the nearest-neighbour queue.", ge=1)
    mask_rate: float = option(0.15, "share of caption tokens masked for the MLM loss (BERT's).", gt=0, lt=1)
    simsiam_dim: int = option(1024, "SimSiam projector width (and output).", ge=1)
    simsiam_pred_dim: int = option(512, "SimSiam predictor bottleneck width.", ge=1)


@dataclass(frozen=True)
class DefilipConfig(Checked):
    """DeFILIP: DeCLIP's options and FILIP's head options (the same `--declip-*` and `--filip-*`), and its own weight."""

    prefix: ClassVar[str] = "defilip"
    filip_weight: float = option(0.2, "weight of the token-wise loss beside the DeCLIP loss.", ge=0)
    declip: DeclipConfig = DeclipConfig()
    filip: FilipHeadConfig = FilipHeadConfig()


def simsiam_head(in_dim: int, dim: int, pred_dim: int):
    """DeCLIP's SimSiam projector and predictor (the SimSiam paper's, on the CLIP embedding)."""
    from torch import nn

    projector = nn.Sequential(OrderedDict([
        ("layer1", nn.Linear(in_dim, dim)), ("bn1", nn.BatchNorm1d(dim)), ("relu1", nn.ReLU(inplace=True)),
        ("layer2", nn.Linear(dim, dim)), ("bn2", nn.BatchNorm1d(dim)), ("relu2", nn.ReLU(inplace=True)),
        ("layer3", nn.Linear(dim, dim)), ("bn3", nn.BatchNorm1d(dim)),
    ]))
    predictor = nn.Sequential(OrderedDict([
        ("layer1", nn.Linear(dim, pred_dim)), ("bn1", nn.BatchNorm1d(pred_dim)), ("relu1", nn.ReLU(inplace=True)),
        ("layer2", nn.Linear(pred_dim, dim)),
    ]))
    return nn.ModuleDict({"projector": projector, "predictor": predictor})


def simsiam_loss(p1, p2, z1, z2):
    """-1/2 [cos(p1, sg z2) + cos(p2, sg z1)], averaged over the batch."""
    import torch.nn.functional as F

    return -0.5 * (F.cosine_similarity(p1, z2.detach(), dim=-1).mean() + F.cosine_similarity(p2, z1.detach(), dim=-1).mean())


class NNQueue(LazyModule):
    """The reference's memory bank of detached, L2-normalised caption embeddings (buffers: saved in resume.pt).

    Starts full of random unit vectors (the reference's bank: normal draws normalised per row), so the look-up
    has neighbours from the first step. `push` writes rows FIFO from `next_row` and wraps the remainder to the
    start of the bank, as the bank of Sense-GVT/DeCLIP (`memory_bank_cuda.py`) does; a push larger than the
    bank keeps its last rows.
    """

    def __init__(self, size: int, dim: int):
        import torch
        import torch.nn.functional as F

        super().__init__()
        self.register_buffer("queue", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("next_row", torch.zeros((), dtype=torch.long))

    def nearest(self, queries):
        """Each query's most similar banked embedding (cosine: both sides are unit vectors)."""
        return self.queue[(queries.to(self.queue.dtype) @ self.queue.T).argmax(dim=1)]

    def push(self, embeddings) -> None:
        import torch

        with torch.no_grad():
            size = self.queue.shape[0]
            rows = (self.next_row + torch.arange(len(embeddings), device=embeddings.device)) % size
            self.queue[rows[-size:]] = embeddings[-size:].to(self.queue.dtype)
            self.next_row.copy_((self.next_row + len(embeddings)) % size)


class Declip(Clip):
    config = DeclipConfig
    run_defaults = DECLIP_RUN_DEFAULTS
    views: tuple[str, ...] = ("image_moco1", "image_moco2", "text_mlm", "text_eda")

    def __init__(self, model, cfg):
        from torch import nn

        super().__init__(model, cfg)
        declip = self.declip_config(cfg)
        embed = int(unwrap(model).visual.output_dim)
        self.simsiam = simsiam_head(embed, int(declip.simsiam_dim), int(declip.simsiam_pred_dim))
        self.mlm_head = nn.Linear(text_width(model, "declip"), model_vocab_size(model))
        self.nn_queue = NNQueue(int(declip.queue_size), embed)

    @staticmethod
    def declip_config(cfg) -> DeclipConfig:
        """The DeCLIP part of this method's config (DeFILIP's holds one)."""
        return cfg

    def view_config(self, aug=None) -> ViewConfig:
        return ViewConfig(aug=aug, mask_rate=self.declip_config(self.cfg).mask_rate)

    def weights(self) -> dict[str, float]:
        """Loss part -> its weight in the total."""
        declip = self.declip_config(self.cfg)
        return {"clip_loss": declip.clip_weight, "simsiam_loss": declip.simsiam_weight, "mlm_loss": declip.mlm_weight,
                "nn_loss": declip.nn_weight}

    def encode_images(self, model, batch: dict) -> tuple:
        """(view 1, view 2) projected image embeddings; DeFILIP also keeps view 1's tokens."""
        bare = unwrap(model)
        return bare.encode_image(batch["image_moco1"]), bare.encode_image(batch["image_moco2"]), None

    def forward(self, model, batch: dict) -> dict:
        parts, _ = self.losses(model, batch)
        return self.total(parts)

    def losses(self, model, batch: dict) -> tuple[dict, tuple]:
        """The four DeCLIP parts, and (view 1's image tokens or None, the caption's tokens, their validity) for DeFILIP."""
        import torch

        bare = unwrap(model)
        image1, image2, image1_tokens = self.encode_images(model, batch)
        ids, labels = batch["text_mlm"][:, 0], batch["text_mlm"][:, 1]
        caption, caption_tokens = encode_text_tokens(model, ids)
        eda = bare.encode_text(batch["text_eda"])
        scale = bare.logit_scale
        mv = torch.stack([normalized_clip_loss(i, t, scale, self.cfg) for i in (image1, image2) for t in (caption, eda)])
        parts = {"clip_loss": mv.mean(), "simsiam_loss": self.simsiam_loss(image1, image2),
                 "mlm_loss": self.mlm_loss(caption_tokens, labels), "nn_loss": self.nn_loss((image1, image2), (caption, eda), scale)}
        return parts, (image1_tokens, caption_tokens, text_valid_mask(ids))

    def total(self, parts: dict) -> dict:
        weights = self.weights()
        loss = sum(float(weights[name]) * value for name, value in parts.items())
        return {"loss": loss, **parts}

    def simsiam_loss(self, image1, image2):
        z1, z2 = (self.simsiam["projector"](gather_all(view, self.cfg)) for view in (image1, image2))
        p1, p2 = self.simsiam["predictor"](z1), self.simsiam["predictor"](z2)
        return simsiam_loss(p1, p2, z1, z2)

    def mlm_loss(self, tokens, labels):
        """Mean cross-entropy over the masked tokens of the whole (gathered) batch; the head runs on those only."""
        import torch
        import torch.nn.functional as F

        chosen = labels != IGNORE
        logits = self.mlm_head(tokens[chosen])
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # float32 at least (bf16 autocast)
        local_sum = F.cross_entropy(logits, labels[chosen], reduction="sum")
        total = gather_all(local_sum[None], self.cfg).sum()
        count = gather_all(chosen.sum()[None], self.cfg, with_grad=False).sum()
        return total / count.clamp(min=1)

    def nn_loss(self, images, captions, scale):
        """CE(image view, NN(caption)) over the four (image view, caption view) pairs, averaged. Both caption views
        are banked after the look-up, the EDA view first, as the reference does (2 x batch rows per step)."""
        import torch
        import torch.nn.functional as F

        texts = [gather_all(F.normalize(t.detach().to(self.nn_queue.queue.dtype), dim=-1), self.cfg, with_grad=False) for t in captions]
        neighbours = [self.nn_queue.nearest(t) for t in texts]
        if self.training:
            self.nn_queue.push(torch.cat([texts[1], texts[0]]))
        gathered = [gather_all(F.normalize(i, dim=-1), self.cfg) for i in images]
        labels = torch.arange(gathered[0].shape[0], device=gathered[0].device)
        multiplier = capped_scale(scale.exp())
        losses = [F.cross_entropy(multiplier * image.to(nn_text.dtype) @ nn_text.T, labels) for image in gathered for nn_text in neighbours]
        return torch.stack(losses).mean()


class Defilip(Declip):
    """DeCLIP + `--defilip-filip-weight` x FILIP on (image view 1, masked caption); needs a ViT tower."""

    config = DefilipConfig

    def __init__(self, model, cfg: DefilipConfig):
        super().__init__(model, cfg)
        self.filip = FilipHead(vision_token_width(model, "defilip"), text_width(model, "defilip"), cfg.filip)

    @staticmethod
    def declip_config(cfg: DefilipConfig) -> DeclipConfig:
        return cfg.declip

    def weights(self) -> dict[str, float]:
        return {**super().weights(), "filip_loss": self.cfg.filip_weight}

    @classmethod
    def check_model_config(cls, model_name: str, model_cfg: dict) -> None:
        check_vit_config("defilip", model_name, model_cfg)

    def encode_images(self, model, batch: dict) -> tuple:
        image1, tokens = encode_image_tokens(model, batch["image_moco1"], self.cfg.filip.ln_post_tokens)
        return image1, unwrap(model).encode_image(batch["image_moco2"]), tokens

    def forward(self, model, batch: dict) -> dict:
        parts, tokens = self.losses(model, batch)
        parts["filip_loss"] = self.filip(*tokens)
        return self.total(parts)

    def checkpoint_extras(self) -> dict:
        return token_head_extras(self.filip)

    def pairwise_flops(self, batch: int, model) -> int:
        return self.filip.pairwise_flops(batch, *token_counts(model))
