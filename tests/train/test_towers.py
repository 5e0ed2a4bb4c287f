"""train.methods.towers reads ViT tokens through open_clip's public `forward_intermediates`: the same numbers as the
tower's own forward, computed here step by step (conv, class token, positions, ln_pre, blocks, ln_post)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from tierclip.train.methods.towers import encode_image_tokens, vit_trunk_features
from tierclip.train.models import create_model

from tests.train.test_methods import VIT, tiny_model_configs  # noqa: F401  (autouse fixture)

ROOT = Path(__file__).resolve().parents[2]


def by_hand(visual, images):
    """(last block output with the class token, its ln_post) of an open_clip VisionTransformer, step by step."""
    x = visual.conv1(images).flatten(2).transpose(1, 2)
    cls = visual.class_embedding.expand(x.shape[0], 1, -1)
    x = visual.ln_pre(torch.cat([cls, x], dim=1) + visual.positional_embedding)
    for block in visual.transformer.resblocks:
        x = block(x)
    return x, visual.ln_post(x)


def vit():
    torch.manual_seed(0)
    model = create_model(VIT)[0]
    model.eval()
    size = model.visual.image_size
    return model, torch.randn(3, 3, *(size if isinstance(size, tuple) else (size, size)))


@pytest.mark.parametrize("after_ln_post", [False, True])
def test_image_tokens_and_embedding_equal_the_towers_own_computation(after_ln_post):
    model, images = vit()
    pooled, tokens = encode_image_tokens(model, images, after_ln_post)
    hidden, normed = by_hand(model.visual, images)
    torch.testing.assert_close(tokens, (normed if after_ln_post else hidden)[:, 1:], rtol=0, atol=1e-6)
    torch.testing.assert_close(pooled, model.visual(images), rtol=0, atol=0)
    torch.testing.assert_close(pooled, normed[:, 0] @ model.visual.proj, rtol=0, atol=1e-6)


def test_slip_trunk_is_the_class_token_after_ln_post_without_the_projection():
    model, images = vit()
    trunk = vit_trunk_features(model.visual, images)
    torch.testing.assert_close(trunk, by_hand(model.visual, images)[1][:, 0], rtol=0, atol=1e-6)
    assert trunk.shape[-1] == model.visual.transformer.width


def test_no_private_open_clip_name_in_the_package():
    private = re.compile(r"\.(_pool|_embeds|_global_pool|_encode_image|_MODEL_CONFIG_PATHS|_MODEL_CONFIGS)\b")
    hits = [f"{path.relative_to(ROOT)}:{n}" for folder in ("curate", "train", "analysis", "tierclip", "bench")
            for path in sorted((ROOT / folder).rglob("*.py"))
            for n, line in enumerate(path.read_text().splitlines(), 1) if private.search(line)]
    assert hits == []
