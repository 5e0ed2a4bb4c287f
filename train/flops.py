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
image-tower passes and projection MLP are included; for CLIP, CLIP+Aug and FLIP
the two agree up to the (tiny) loss. Its losses gather across ranks under DDP:
call it on every rank together, or outside a process group.
"""

from __future__ import annotations

from contextlib import contextmanager


def gflops_per_sample(model, image_size, context_length: int) -> float:
    """Forward + backward GFLOPs per (image, caption) pair: 3 × the counted forward of both towers."""
    return 3 * forward_gflops_per_sample(model, image_size, context_length)


def forward_gflops_per_sample(model, image_size, context_length: int, batch: int = 2) -> float:
    """Forward GFLOPs per pair, counted on a batch of `batch` blank images and captions, divided by `batch`."""
    inputs = _blank_batch(model, image_size, context_length, batch, ("image",))
    return _count(lambda: (model.encode_image(inputs["image"]), model.encode_text(inputs["text"])), model) / batch / 1e9


def method_gflops_per_sample(method, model, image_size, context_length: int, batch: int = 2) -> float:
    """Forward + backward GFLOPs per sample of `method(model, batch)`: 3 × the counted forward of every view it uses."""
    inputs = _blank_batch(model, image_size, context_length, batch, tuple(v for v in method.views if v != "text"))
    return 3 * _count(lambda: method(model, inputs), model, method) / batch / 1e9


def _blank_batch(model, image_size, context_length: int, batch: int, image_views: tuple[str, ...]) -> dict:
    """Zero images for each image view and zero token ids for "text", on the model's device and dtype."""
    import torch

    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    parameter = next(model.parameters())
    inputs = {view: torch.zeros((batch, 3, height, width), device=parameter.device, dtype=parameter.dtype) for view in image_views}
    inputs["text"] = torch.zeros((batch, context_length), device=parameter.device, dtype=torch.long)
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
