"""Training compute per sample, counted from the model itself.

Convention (as in Kaplan et al. 2020 and Chinchilla's accounting):

- FLOPs of one forward pass are counted by `torch.utils.flop_counter.FlopCounterMode`
  on the image tower (one image of `image_size`) and the text tower (one caption of
  `context_length` tokens). It counts matrix multiplications, convolutions and
  attention (2 FLOPs per multiply-add); element-wise work (norms, activations,
  softmax) is left out, as in those papers.
- Forward + backward = 3 × forward (the backward pass costs about twice the forward).
- The contrastive loss (a B×B logit matrix per batch) is left out: it is not a
  per-sample cost and is negligible beside the towers for the batch sizes used.
- Patch dropout (FLIP): the count is taken with every `PatchDropout` module in
  training mode and everything else in eval mode, so the image tower sees the
  tokens it sees in training (at mask 0.5 about half) and BatchNorm statistics
  are not touched. The count reflects the model's patch-dropout probability at
  the time of the call; FLIP's unmasked tuning phase costs the unmasked count
  (`train run` accounts for both phases).

`gflops_per_sample` × samples seen = the run's `gflops` in results.json.

`gflops_per_sample` counts the open_clip model only (one image, one caption).
`method_gflops_per_sample` counts a training method's whole forward instead
(every view it asks for, its own heads and its loss), so SLIP's two extra
image-tower passes and projection MLP are included, and DeCLIP's two image
views, two text views, SimSiam head, MLM head (on `declip_mask_rate` of the
context: an upper bound for shorter captions) and nearest-neighbour look-up
over the whole queue; for CLIP, CLIP+Aug and FLIP the two agree up to the
(tiny) loss. Parts whose cost per sample grows with the batch (FILIP's token
interaction, batch × tokens × kept tokens × width per sample) are added at
`global_batch` from the method's own `pairwise_flops`; the CLIP logits (batch ×
embedding per sample) stay left out as above. Its losses gather across ranks
under DDP: call it on every rank together, or outside a process group.
"""

from __future__ import annotations

from contextlib import contextmanager


def gflops_per_sample(model, image_size, context_length: int) -> float:
    """Forward + backward GFLOPs per (image, caption) pair: 3 × the counted forward of both towers."""
    return 3 * forward_gflops_per_sample(model, image_size, context_length)


def forward_gflops_per_sample(model, image_size, context_length: int, batch: int = 2) -> float:
    """Forward GFLOPs per pair, counted on a batch of `batch` blank images and captions, divided by `batch`."""
    inputs = _blank_batch(model, image_size, context_length, batch)
    return _count(lambda: (model.encode_image(inputs["image"]), model.encode_text(inputs["text"])), model) / batch / 1e9


def method_gflops_per_sample(method, model, image_size, context_length: int, batch: int = 2,
                             global_batch: int | None = None) -> float:
    """Forward + backward GFLOPs per sample of `method(model, batch)`: 3 × the counted forward of every view it uses.

    With `global_batch`, a method's parts that grow as batch² (`method.pairwise_flops(n, model)`: FILIP's
    token interaction) are counted at that batch instead of the small counting batch.
    """
    views_cfg = method.view_config() if hasattr(method, "view_config") else None
    inputs = _blank_batch(model, image_size, context_length, batch, method.views, views_cfg)
    forward = _count(lambda: method(model, inputs), model, method) / batch
    pairwise = getattr(method, "pairwise_flops", None)
    if pairwise is not None and global_batch is not None:
        forward += pairwise(global_batch, model) / global_batch - pairwise(batch, model) / batch
    return 3 * forward / 1e9


def _blank_batch(model, image_size, context_length: int, batch: int, views: tuple[str, ...] = ("image", "text"),
                 cfg=None) -> dict:
    """Zero images for each image view and zero token ids for each text view, on the model's device and dtype."""
    import torch
    from tierclip.train.data import is_text_view
    from tierclip.train.text_views import blank_text_view

    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    parameter = next(model.parameters())
    inputs = {view: torch.zeros((batch, 3, height, width), device=parameter.device, dtype=parameter.dtype)
              for view in views if not is_text_view(view)}
    for view in {"text", *(v for v in views if is_text_view(v))}:
        inputs[view] = blank_text_view(view, batch, context_length, cfg).to(parameter.device)
    return inputs


def _count(forward, *modules) -> int:
    """FLOPs of `forward()`, with the modules in eval mode except patch dropout (see the module docstring)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping=_cpu_attention_formula())
    # Gradients stay enabled: under no_grad, nn.MultiheadAttention takes a fused fast path whose
    # projections FlopCounterMode does not see (a third of a ViT's FLOPs would go missing).
    with _patch_dropout_as_in_training(*modules), counter:
        forward()
    return counter.get_total_flops()


def _cpu_attention_formula() -> dict:
    """FlopCounterMode knows the CUDA attention kernels but not the CPU one; give it the same formula."""
    import torch
    from torch.utils.flop_counter import sdpa_flop_count

    def cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)

    return {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa_flop}


@contextmanager
def _patch_dropout_as_in_training(*roots):
    """Eval mode for every module except PatchDropout (train mode: it drops tokens); restore afterwards."""
    from open_clip.transformer import PatchDropout

    modes = {module: module.training for root in roots for module in root.modules()}
    for module in modes:
        module.training = isinstance(module, PatchDropout)
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training
