"""Token-wise evaluation of FILIP runs: the head travels in checkpoint.pt, zero-shot by s_I checked by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.train.helpers import color_evalset


def tiny_filip():
    from tierclip.train.methods import build_method, method_config
    from tierclip.train.models import create_model

    torch.manual_seed(0)
    model, _, preprocess = create_model("tc-vit-tiny")
    method = build_method("filip", model, method_config("filip", {"filip_dim": 16, "filip_topk": 4}))
    return model.eval(), method.eval(), preprocess


def test_the_head_round_trips_through_checkpoint_pt_which_open_clip_still_loads(tmp_path):
    import open_clip
    from tierclip.train import checkpoint
    from tierclip.train.eval_tokenwise import load_token_head

    model, method, _ = tiny_filip()
    checkpoint.save(tmp_path / "checkpoint.pt", checkpoint.model_checkpoint(model, "tc-vit-tiny", 3, method.checkpoint_extras()))
    head = load_token_head(tmp_path / "checkpoint.pt", model)
    assert head.cfg == method.filip.cfg and head.topk == 4
    assert all(torch.equal(a, b) for a, b in zip(head.state_dict().values(), method.filip.state_dict().values(), strict=True))
    loaded, _, _ = open_clip.create_model_and_transforms("tc-vit-tiny", pretrained=str(tmp_path / "checkpoint.pt"))
    assert torch.equal(loaded.logit_scale, model.logit_scale)
    checkpoint.save(tmp_path / "plain.pt", checkpoint.model_checkpoint(model, "tc-vit-tiny", 3))
    assert load_token_head(tmp_path / "plain.pt", model) is None


def test_token_wise_zero_shot_is_the_mean_max_similarity_averaged_over_templates(tmp_path, monkeypatch):
    from tierclip.curate.evalset import read_evalset
    from tierclip.curate.images import decode_image
    from tierclip.train import eval_tokenwise
    from tierclip.train.evaluate import evaluate_model
    from tierclip.train.methods.towers import encode_image_tokens, encode_text_tokens, text_valid_mask
    from tierclip.train.models import get_tokenizer

    monkeypatch.setattr(eval_tokenwise, "PAIRS_PER_CHUNK", 1)  # one query per block: the blocks are stitched right
    model, method, preprocess = tiny_filip()
    head, tokenizer = method.filip, get_tokenizer("tc-vit-tiny")
    root = color_evalset(tmp_path / "eval")
    rows = {row["metric"]: row["value"] for row in evaluate_model(model, preprocess, tokenizer, root, token_head=head)}
    evalset = read_evalset(root)
    task = evalset.tasks[0]
    with torch.no_grad():
        images = torch.stack([preprocess(decode_image(evalset.image_path(f).read_bytes())) for f in evalset.samples["file"]])
        patches = F.normalize(head.image_proj(encode_image_tokens(model, images)[1]), dim=-1)
        scores = torch.zeros(len(images), len(task["classnames"]))
        for c, name in enumerate(task["classnames"]):
            for template in task["templates"]:
                ids = tokenizer([template.format(name)])
                tokens = F.normalize(head.text_proj(encode_text_tokens(model, ids)[1]), dim=-1)[0, text_valid_mask(ids)[0]]
                scores[:, c] += (patches @ tokens.T).max(-1).values.mean(-1) / len(task["templates"])
    labels = torch.tensor([task["classnames"].index(c) for c in evalset.samples[task["label_column"]]])
    assert rows["tokenwise_top1"] == pytest.approx((scores.argmax(1) == labels).float().mean().item())
    assert "top1" in rows  # the pooled rows stay


def test_both_directions_from_one_interaction_equal_the_loss_s_late_interaction(monkeypatch):
    from tierclip.train import eval_tokenwise
    from tierclip.train.methods.filip import late_interaction

    torch.manual_seed(1)
    images, texts = F.normalize(torch.randn(7, 5, 8), dim=-1), F.normalize(torch.randn(4, 6, 8), dim=-1)
    text_valid = torch.tensor([[1, 1, 1, 0, 0, 0], [1] * 6, [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    image_valid = torch.ones(7, 5, dtype=torch.bool)
    monkeypatch.setattr(eval_tokenwise, "PAIRS_PER_CHUNK", 300)  # blocks of 2 images: stitched in both directions
    s_image, s_text = eval_tokenwise.tokenwise_both(images, texts, text_valid)
    assert torch.allclose(s_image, late_interaction(images, image_valid, texts, text_valid), atol=1e-6)
    assert torch.allclose(s_text, late_interaction(texts, text_valid, images, image_valid), atol=1e-6)
    assert s_image.shape == (7, 4) and s_text.shape == (4, 7)


def test_a_defilip_run_keeps_its_token_head_for_token_wise_evaluation(tmp_path):
    from tierclip.train import checkpoint
    from tierclip.train.eval_tokenwise import load_token_head
    from tierclip.train.methods import build_method, method_config
    from tierclip.train.models import create_model

    model, _, _ = create_model("tc-vit-tiny")
    method = build_method("defilip", model, method_config("defilip", {"filip_dim": 16}))
    checkpoint.save(tmp_path / "checkpoint.pt", checkpoint.model_checkpoint(model, "tc-vit-tiny", 3, method.checkpoint_extras()))
    head = load_token_head(tmp_path / "checkpoint.pt", model)
    assert head is not None and head.cfg == method.filip.cfg
    assert all(torch.equal(a, b) for a, b in zip(head.state_dict().values(), method.filip.state_dict().values(), strict=True))
