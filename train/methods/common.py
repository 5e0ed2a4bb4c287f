"""Pieces every method shares: unwrapping DDP, the distributed context, open_clip's CLIP loss."""

from __future__ import annotations

import functools


def unwrap(model):
    """The bare open_clip model behind a DistributedDataParallel (or similar) wrapper."""
    return getattr(model, "module", model)


def rank_world(cfg) -> tuple[int, int]:
    """(rank, world_size): torch.distributed's when a process group is up, else the config's."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(getattr(cfg, "rank", 0)), int(getattr(cfg, "world_size", 1))


def clip_outputs(out) -> dict:
    """open_clip's forward output as a dict, whether the model was built with output_dict or not."""
    if isinstance(out, dict):
        return out
    names = ("image_features", "text_features", "logit_scale", "logit_bias")
    return dict(zip(names, out, strict=False))  # logit_bias only for SigLIP-style models


def clip_loss(out, cfg):
    """open_clip's ClipLoss over the whole (gathered) batch.

    gather_with_grad=True lets gradients flow through the all-gather, so under DDP every rank's
    features learn from all negatives; local_loss=False (open_clip's default, overridable with a
    `local_loss` attribute on the config) makes each rank's loss equal the single-process loss on
    the same global batch. Built per call: ClipLoss holds no parameters, and this way the rank and
    world size are read after the loop has set up the process group.
    """
    from open_clip.loss import ClipLoss

    rank, world_size = rank_world(cfg)
    loss_fn = ClipLoss(local_loss=bool(getattr(cfg, "local_loss", False)), gather_with_grad=True,
                       rank=rank, world_size=world_size)
    out = clip_outputs(out)
    return loss_fn(out["image_features"], out["text_features"], out["logit_scale"], logit_bias=out.get("logit_bias"))


def gather_all(tensor, cfg, with_grad: bool = True):
    """Every rank's `tensor` concatenated along dim 0 in rank order (the single-process batch); as is on one process.

    With gradients through `torch.distributed.nn.all_gather` (what open_clip's gather_with_grad uses), so a loss
    computed on the gathered batch on every rank gives, after DDP's averaging, the single-process gradient.
    """
    import torch
    import torch.distributed as dist

    rank, world_size = rank_world(cfg)
    if world_size == 1 or not (dist.is_available() and dist.is_initialized()):
        return tensor
    if with_grad:
        import torch.distributed.nn

        return _contiguous_grad(torch.cat(torch.distributed.nn.all_gather(tensor), dim=0))
    sent = tensor.to(torch.uint8) if tensor.dtype == torch.bool else tensor.contiguous()  # gloo has no bool all_gather
    parts = [torch.empty_like(sent) for _ in range(world_size)]
    dist.all_gather(parts, sent)
    return torch.cat(parts, dim=0).to(tensor.dtype)


def normalized_clip_loss(image_features, text_features, logit_scale, cfg):
    """`clip_loss` on unnormalised embeddings (what the towers return) and the model's learnable log-scale."""
    import torch.nn.functional as F

    return clip_loss({"image_features": F.normalize(image_features, dim=-1),
                      "text_features": F.normalize(text_features, dim=-1), "logit_scale": logit_scale.exp()}, cfg)


@functools.cache
def _contiguous_grad_function():
    """Identity whose gradient is made contiguous on the way back (made on first use: this module imports no torch).

    torch.distributed.nn's all_gather sends the gradient slices back with gloo's all_to_all, which garbles
    non-contiguous tensors: an einsum's gradient (FILIP's token interaction) is a permuted view, and without
    this the ranks' summed gradients were wrong (ClipLoss's matmul gradients happen to be contiguous).
    """
    import torch

    class ContiguousGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            return grad.contiguous()

    return ContiguousGrad


def _contiguous_grad(tensor):
    return _contiguous_grad_function().apply(tensor)
