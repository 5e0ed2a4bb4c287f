"""FLOP accounting: an exact hand count on a tiny ViT, scaling, patch dropout, no side effects on the model."""

from __future__ import annotations

import json

import pytest
import torch
from tierclip.train.flops import forward_gflops_per_sample, gflops_per_sample

EMBED, WIDTH, PATCH, IMAGE, CONTEXT = 32, 64, 8, 32, 16


def vit_config(layers: int, width: int = WIDTH) -> dict:
    return {"embed_dim": EMBED,
            "vision_cfg": {"image_size": IMAGE, "layers": layers, "width": width, "patch_size": PATCH, "head_width": 32},
            "text_cfg": {"context_length": CONTEXT, "vocab_size": 49408, "width": width, "heads": 2, "layers": layers}}


@pytest.fixture(scope="module")
def make_model(tmp_path_factory):
    import open_clip

    folder = tmp_path_factory.mktemp("flops_configs")

    def make(name: str, config: dict, **overrides):
        (folder / f"{name}.json").write_text(json.dumps(config))
        open_clip.add_model_config(folder / f"{name}.json")
        return open_clip.create_model_and_transforms(name, **overrides)[0]

    return make


def transformer_flops(tokens: int, width: int, layers: int, mlp_ratio: int = 4) -> int:
    """2 FLOPs per multiply-add: qkv and output projections, the MLP, and the two attention products."""
    per_layer = 2 * tokens * width * 3 * width + 2 * tokens * width * width + 2 * 2 * tokens * width * mlp_ratio * width
    return layers * (per_layer + 2 * 2 * tokens * tokens * width)


def test_forward_count_matches_a_hand_count(make_model):
    model = make_model("flopstest-vit-2", vit_config(layers=2))
    patches = (IMAGE // PATCH) ** 2
    image = 2 * patches * (3 * PATCH * PATCH) * WIDTH + transformer_flops(patches + 1, WIDTH, 2) + 2 * WIDTH * EMBED
    text = transformer_flops(CONTEXT, WIDTH, 2) + 2 * WIDTH * EMBED
    assert forward_gflops_per_sample(model, IMAGE, CONTEXT) * 1e9 == pytest.approx(image + text, rel=1e-9)


def test_forward_plus_backward_is_three_forwards_and_bigger_models_cost_more(make_model):
    small = make_model("flopstest-vit-2", vit_config(layers=2))
    deep = make_model("flopstest-vit-4", vit_config(layers=4))
    wide = make_model("flopstest-vit-2w", vit_config(layers=2, width=128))
    total = gflops_per_sample(small, IMAGE, CONTEXT)
    assert total > 0
    assert total == pytest.approx(3 * forward_gflops_per_sample(small, IMAGE, CONTEXT))
    assert gflops_per_sample(deep, IMAGE, CONTEXT) > 1.8 * total  # ~2x the layers, embeddings aside
    assert gflops_per_sample(wide, IMAGE, CONTEXT) > 3 * total  # ~4x the width squared


def test_patch_dropout_halves_the_image_tokens(make_model):
    full = make_model("flopstest-vit-2", vit_config(layers=2))
    masked = make_model("flopstest-vit-2", vit_config(layers=2), force_patch_dropout=0.5)
    masked.eval()
    patches = (IMAGE // PATCH) ** 2
    # the transformer sees 1 + 8 tokens instead of 1 + 16; the patch embedding still runs on all 16 patches
    saved = transformer_flops(patches + 1, WIDTH, 2) - transformer_flops(patches // 2 + 1, WIDTH, 2)
    difference = forward_gflops_per_sample(full, IMAGE, CONTEXT) - forward_gflops_per_sample(masked, IMAGE, CONTEXT)
    assert difference * 1e9 == pytest.approx(saved, rel=1e-9)
    assert not masked.training  # the model's own mode is restored


def test_counting_leaves_the_model_untouched():
    """A ResNet tower's BatchNorm statistics and the train/eval flags are as before the count."""
    from tierclip.train.models import create_model

    model = create_model("tc-rn-tiny")[0]
    model.train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    assert gflops_per_sample(model, 32, 16) > 0
    assert model.training and all(module.training for module in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_method_count_includes_extra_views_and_heads(make_model):
    """SLIP's two SimCLR views and MLP head cost more than CLIP; CLIP's method count is the model count plus its tiny loss."""
    from tierclip.train.flops import method_gflops_per_sample
    from tierclip.train.methods import build_method, method_config

    model = make_model("flopstest-vit-2", vit_config(layers=2))
    model_count = gflops_per_sample(model, IMAGE, CONTEXT)
    clip = method_gflops_per_sample(build_method("clip", model), model, IMAGE, CONTEXT)
    slip_method = build_method("slip", model, method_config("slip", {"slip_mlp_dim": 64, "slip_emb_dim": 16}))
    slip_method.train()
    slip = method_gflops_per_sample(slip_method, model, IMAGE, CONTEXT)
    assert all(module.training for module in slip_method.modules())  # modes restored
    assert model_count <= clip < 1.01 * model_count
    assert slip > clip + 1.5 * (clip - 3 * transformer_flops(CONTEXT, WIDTH, 2) / 1e9)  # at least ~2 more image towers
