"""The CPU model families in train/model_configs/: loadable by name with open_clip, graded sizes of each
tower type (>= 3 per family, >= 10x in image-tower parameters), text-depth variants that differ only in
text depth, and what describe_model reads from them."""

from __future__ import annotations

import pytest
from tierclip.train.models import create_model, describe_configs, describe_model

CONVNETS, VITS = ("tc-rn-xs", "tc-rn-tiny", "tc-rn-s"), ("tc-vit-xs", "tc-vit-tiny", "tc-vit-s")
TEXT_DEPTHS = {f"tc-rn-tiny-text{d}": d for d in (1, 2, 4, 8)}


@pytest.fixture(scope="module")
def described():
    return {name: describe_model(create_model(name)[0]) for name in describe_configs()}


def test_graded_families_span_ten_times_in_image_parameters(described):
    for family, names in (("convnet", CONVNETS), ("vit", VITS)):
        sizes = [described[n]["image_params"] for n in names]
        assert [described[n]["model_family"] for n in names] == [family] * 3
        assert sizes == sorted(sizes) and sizes[-1] >= 10 * sizes[0], (family, sizes)
    assert [described[n]["image_width"] for n in CONVNETS] == [8, 16, 32]
    assert [(described[n]["image_width"], described[n]["image_depth"]) for n in VITS] == [(64, 2), (128, 4), (192, 6)]


def test_text_depth_variants_differ_only_in_text_depth(described):
    base = described["tc-rn-tiny"]
    same = ("model_family", "image_params", "image_width", "image_depth", "text_width", "text_context", "vocab_size")
    for name, depth in TEXT_DEPTHS.items():
        assert described[name]["text_depth"] == depth
        assert {k: described[name][k] for k in same} == {k: base[k] for k in same}
    params = [described[name]["text_params"] for name in TEXT_DEPTHS]
    assert params == sorted(params) and len(set(params)) == 4


def test_describe_model_counts_towers_of_the_instantiated_model(described):
    model = create_model("tc-vit-xs")[0]
    info = described["tc-vit-xs"]
    assert info["image_params"] == sum(p.numel() for p in model.visual.parameters())
    assert info["params"] == info["image_params"] + info["text_params"] + 1  # + the logit scale
    assert info["embedding_params"] == 49408 * 128 and info["text_context"] == 16 and info["image_size"] == 32
