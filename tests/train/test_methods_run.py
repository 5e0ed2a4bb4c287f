"""`train run --method defilip` end to end: every loss part logged, the checkpoint a plain open_clip model that the
curate `clip` stage scores with, the whole method's compute in results.json."""

from __future__ import annotations

import json

import pytest
import torch
from tierclip.train.cli import app
from typer.testing import CliRunner

from tests.train.helpers import clip_scores_with_checkpoint, color_pool


@pytest.fixture(scope="module")
def defilip_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("defilip")
    pool = color_pool(tmp / "pool", shards=2, per_shard=8)
    result = CliRunner().invoke(app, ["run", str(pool.root), "--out", str(tmp / "run"), "--method", "defilip",
                                      "--model", "tc-vit-tiny", "--scale", "debug", "--samples-seen", "32", "--batch-size", "8",
                                      "--log-every", "1", "--loader-workers", "0", "--declip-queue-size", "16", "--filip-topk", "8"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "view image_moco1, image_moco2: MoCo v2 (Sense-GVT/DeCLIP MOCOV2) [moco_crop_scale=0.2,1 flip_p=0.5" in result.output
    assert "view text_mlm: BERT-masked caption [mask_rate=0.15]" in result.output
    return tmp


def test_every_loss_part_is_logged_and_the_queue_is_saved(defilip_run):
    rows = [json.loads(line) for line in (defilip_run / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for row in rows:
        assert {"loss", "clip_loss", "simsiam_loss", "mlm_loss", "nn_loss", "filip_loss"} <= set(row)
    assert all(row["nn_loss"] > 0 for row in rows)  # the bank starts with random unit vectors
    config = json.loads((defilip_run / "run" / "config.json").read_text())["run"]["method_cfg"]
    assert config["declip_queue_size"] == 16 and config["filip_topk"] == 8 and config["declip_clip_weight"] == 0.4
    method_state = torch.load(defilip_run / "run" / "resume.pt", weights_only=True)["method"]
    assert int(method_state["nn_queue.next_row"]) == 4 * 2 * 8 % 16 and "filip.logit_scale" in method_state


def test_checkpoint_is_a_plain_open_clip_model(defilip_run):
    import open_clip
    from tierclip.train.models import create_model

    saved = torch.load(defilip_run / "run" / "checkpoint.pt", weights_only=True)["state_dict"]
    plain = create_model("tc-vit-tiny")[0].state_dict()
    assert {k: v.shape for k, v in saved.items()} == {k: v.shape for k, v in plain.items()}  # no head, no grown vocabulary
    open_clip.add_model_config(defilip_run / "run" / "model_configs")
    model, _, _ = open_clip.create_model_and_transforms("tc-vit-tiny", pretrained=str(defilip_run / "run" / "checkpoint.pt"))
    assert torch.equal(model.state_dict()["logit_scale"], saved["logit_scale"])


def test_checkpoint_scores_a_pool_with_the_clip_stage(defilip_run):
    scores = clip_scores_with_checkpoint(defilip_run / "pool", defilip_run / "run" / "checkpoint.pt", "tc-vit-tiny")
    assert scores.height == 16 and scores["clip_score"].is_not_null().all()


def test_results_count_the_whole_method(defilip_run):
    """DeFILIP costs more than two CLIP passes (two image and two text views, heads, token interaction)."""
    from tierclip.train.flops import gflops_per_sample
    from tierclip.train.models import create_model

    results = json.loads((defilip_run / "run" / "results.json").read_text())
    clip = gflops_per_sample(create_model("tc-vit-tiny")[0], 32, 16)
    assert results["gflops_per_sample"] > 2 * clip
    assert results["gflops"] == pytest.approx(results["gflops_per_sample"] * 32)
