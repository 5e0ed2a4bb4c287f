"""Token outputs of open_clip's towers, for the methods that need more than the pooled embedding.

open_clip 3.3's `CLIP.encode_text` returns the pooled caption only (its text tower's `output_tokens` flag
is not consulted there), so the text side goes through `CLIP.forward_intermediates`, which returns the
projected caption embedding and the last block's token outputs in one pass; `ln_final` applied to those
is the tower's final token output. The image side uses `VisionTransformer.forward_intermediates` the same way:
one pass yields the projected pooled embedding and the last block's patch tokens, before `ln_post` (what
FILIP's reference takes) or, with `normalize_intermediates`, after it. No private open_clip name is used.
"""

from __future__ import annotations

from tierclip.curate.errors import UserError
from tierclip.train.methods.common import unwrap


def vocab_size(model) -> int:
    """Rows of the text tower's token embedding: the model's vocabulary, whatever its config says."""
    bare = unwrap(model)
    embedding = getattr(bare, "token_embedding", None) or getattr(getattr(bare, "text", None), "token_embedding", None)
    if embedding is None:
        raise UserError(f"model {type(bare).__name__} has no token embedding (an HF text tower?); this method needs "
                        "open_clip's own text transformer")
    return int(embedding.num_embeddings)


def _check_clip_text(model, method: str):
    bare = unwrap(model)
    if not hasattr(bare, "ln_final") or not hasattr(bare, "forward_intermediates"):
        raise UserError(f"{method}: needs open_clip's built-in text transformer (CLIP class); "
                        f"{type(bare).__name__} has a separate text tower")
    return bare


def text_width(model, method: str = "this method") -> int:
    return int(_check_clip_text(model, method).transformer.width)


def encode_text_tokens(model, text):
    """(projected caption embedding (B, embed), final token outputs (B, L, width)), one pass through the tower."""
    bare = _check_clip_text(model, "text tokens")
    out = bare.forward_intermediates(text=text, text_indices=1, normalize=False)
    return out["text_features"], bare.ln_final(out["text_intermediates"][-1])


def text_valid_mask(text):
    """True for a caption's own tokens (start to end of text), False for the padding after it.

    open_clip pools the caption at its argmax id (the end-of-text token has the highest id); everything after
    it is padding. Positions rather than `text != 0`: id 0 is also a real token ("!") of CLIP's BPE.
    """
    import torch

    end = text.argmax(dim=-1, keepdim=True)
    return torch.arange(text.shape[-1], device=text.device)[None, :] <= end


def is_vit(visual) -> bool:
    from open_clip.transformer import VisionTransformer

    return isinstance(visual, VisionTransformer)


def vision_token_width(model, method: str) -> int:
    visual = unwrap(model).visual
    if not is_vit(visual):
        raise UserError(f"{method}: the image tower ({type(visual).__name__}) has no patch tokens; "
                        "token-wise similarity needs an open_clip ViT tower")
    return int(visual.transformer.width)


def encode_image_tokens(model, images, after_ln_post: bool = False):
    """(projected image embedding (B, embed), patch tokens (B, N, width)) of an open_clip ViT; the tokens are the
    last block's output before `ln_post` (the class token left out), or after it with `after_ln_post`. Both come
    from open_clip's public `forward_intermediates` in one pass (its `image_features` is what `visual(images)`
    returns)."""
    out = unwrap(model).visual.forward_intermediates(images, indices=1, output_fmt="NLC",
                                                     normalize_intermediates=after_ln_post)
    return out["image_features"], out["image_intermediates"][-1]


def vit_trunk_features(visual, images):
    """A ViT's pooled features before the projection (SLIP's trunk output), through the public
    `forward_intermediates`: the class token (`pool_type` "tok") or the mean patch token ("avg") after `ln_post`,
    which is what open_clip's own pooling computes for those two settings."""
    if visual.attn_pool is not None or visual.final_ln_after_pool or visual.pool_type not in ("tok", "avg"):
        raise UserError(f"the ViT tower pools with attn_pool/final_ln_after_pool/pool_type {visual.pool_type!r}; "
                        "only class-token ('tok') or mean ('avg') pooling has a trunk feature here")
    out = visual.forward_intermediates(images, indices=1, output_fmt="NLC", normalize_intermediates=True,
                                       output_extra_tokens=True, intermediates_only=True)
    if visual.pool_type == "tok":
        return out["image_intermediates_prefix"][-1][:, 0]
    return out["image_intermediates"][-1].mean(dim=1)
