"""Token-wise zero-shot and retrieval for runs whose checkpoint carries FILIP's token-wise head.

The reference FILIP solver (Sense-GVT/DeCLIP) scores zero-shot by token-wise similarity when the model returns
dense features: class prompts through the text tower's tokens and FILIP's text projection, images through their
patch tokens and the image projection, score = mean over the image's tokens of the max over the prompt's tokens
(s_I). Here, per class, s_I is averaged over the prompt templates (open_clip averages template embeddings, which
token sets do not allow). Retrieval ranks images for a caption by s_T (mean over the caption's tokens of the max
over the image's) and captions for an image by s_I, FILIP's two directions. Every token counts (no top-k: that is a
training-time saving); padding never does. Rows are the pooled evaluation's metrics prefixed `tokenwise_`.
"""

from __future__ import annotations

from tierclip.train.methods.filip import TOKEN_HEAD_KEY

PREFIX = "tokenwise_"
PAIRS_PER_CHUNK = 2**24  # query x key x tokens x tokens per block of the interaction (~64 MB of float32)


def load_token_head(checkpoint_path, model):
    """FILIP's head from a run's checkpoint.pt (None when it has none), in eval mode on the model's device."""
    from tierclip.curate.cliopts import config_from
    from tierclip.train import checkpoint
    from tierclip.train.methods.filip import FilipHead, FilipHeadConfig
    from tierclip.train.methods.towers import text_width, vision_token_width

    record = checkpoint.load(checkpoint_path).get(TOKEN_HEAD_KEY)
    if record is None:
        return None
    cfg = config_from(FilipHeadConfig, record["config"], FilipHeadConfig.prefix)
    head = FilipHead(vision_token_width(model, "token-wise eval"), text_width(model, "token-wise eval"), cfg)
    head.load_state_dict(record["state_dict"])
    return head.to(next(model.parameters()).device).eval()


def image_tokens(model, head, images):
    """(B, patches, dim) normalised projected patch tokens, as the head was trained on."""
    from tierclip.train.methods.towers import encode_image_tokens

    return head.image_features(encode_image_tokens(model, images, head.cfg.ln_post_tokens)[1]).float()


def text_tokens(model, head, ids):
    """((B, context, dim) normalised projected caption tokens, (B, context) validity)."""
    from tierclip.train.methods.towers import encode_text_tokens, text_valid_mask

    return head.text_features(encode_text_tokens(model, ids)[1]).float(), text_valid_mask(ids)


def _chunks(n: int, size: int):
    return ((start, min(n, start + size)) for start in range(0, n, size))


def tokenwise_scores(images, texts, text_valid, image_major: bool):
    """s_I (images x texts) when `image_major`, else s_T (texts x images), computed in blocks of queries."""
    import torch
    from tierclip.train.methods.filip import late_interaction

    image_valid = torch.ones(images.shape[:2], dtype=torch.bool, device=images.device)
    queries, query_valid, keys, key_valid = ((images, image_valid, texts, text_valid) if image_major
                                             else (texts, text_valid, images, image_valid))
    size = max(1, PAIRS_PER_CHUNK // max(1, keys.shape[0] * queries.shape[1] * keys.shape[1]))
    return torch.cat([late_interaction(queries[a:b], query_valid[a:b], keys, key_valid) for a, b in _chunks(len(queries), size)])


def tokenwise_both(images, texts, text_valid):
    """(s_I images x texts, s_T texts x images) from one token interaction per block of images: retrieval needs
    both directions, and the (images, texts, patches, tokens) block is the whole cost, so it is computed once
    (late_interaction twice would compute it twice). Images have no padding; captions' padding never counts."""
    import torch

    size = max(1, PAIRS_PER_CHUNK // max(1, texts.shape[0] * images.shape[1] * texts.shape[1]))
    weights = text_valid.to(images.dtype)                                   # (B, m)
    s_image, s_text = [], []
    for a, b in _chunks(len(images), size):
        sims = torch.einsum("and,bmd->abnm", images[a:b], texts)            # (a, B, n, m)
        best_patch = sims.amax(dim=2)                                        # each caption token's best patch
        s_text.append(((best_patch * weights).sum(-1) / weights.sum(-1).clamp(min=1)).T)
        s_image.append(sims.masked_fill_(~text_valid[None, :, None, :], float("-inf")).amax(dim=-1).mean(-1))
    return torch.cat(s_image), torch.cat(s_text, dim=1)


def encode_texts(model, head, tokenizer, texts: list[str], device, batch_size):
    import torch

    parts = [text_tokens(model, head, tokenizer(texts[a:b]).to(device)) for a, b in _chunks(len(texts), batch_size)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def tokenwise_zeroshot(model, head, tokenizer, image_features, classnames, templates, device, batch_size):
    """(N images, classes) logits: s_I of each image against each class's prompts, averaged over the templates."""
    prompts = [template.format(name) for name in classnames for template in templates]
    texts, valid = encode_texts(model, head, tokenizer, prompts, device, batch_size)
    scores = tokenwise_scores(image_features.to(device), texts, valid, image_major=True)
    return scores.reshape(len(image_features), len(classnames), len(templates)).mean(-1)


def tokenwise_retrieval(model, head, tokenizer, images, captions, text_ids, image_ids, ks, device, batch_size):
    """retrieval_metrics rows named `tokenwise_...`: caption -> image ranked by s_T, image -> caption by s_I."""
    from tierclip.train.eval_metrics import RETRIEVAL_NAMES, retrieval_metrics

    texts, valid = encode_texts(model, head, tokenizer, captions, device, batch_size)
    images = images.to(device)
    s_image, s_text = tokenwise_both(images, texts, valid)
    by_text = retrieval_metrics(s_text, text_ids, image_ids, ks)
    by_image = retrieval_metrics(s_image.T, text_ids, image_ids, ks)
    text_query = {names[0] for names in RETRIEVAL_NAMES.values()}  # caption queries rank images
    rows = [row for row in by_text if row[0].split("@")[0] in text_query]
    rows += [row for row in by_image if row[0].split("@")[0] not in text_query]
    return [(PREFIX + name, *rest) for name, *rest in rows]
