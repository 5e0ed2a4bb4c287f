"""The clip stage on CUDA in bf16 autocast (`pytest -m gpu` on a GPU machine): the same scores and embeddings as on
the CPU in fp32, up to bf16 rounding, for a tiny tower and for open_clip's ViT-B-32 (random weights saved as a
checkpoint: nothing is downloaded)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from tierclip.curate.cli import app
from typer.testing import CliRunner

from tests.curate.stage_fixtures import TINY_MODEL, image_bytes, save_tiny_checkpoint
from tests.tiny import make_pool

pytestmark = pytest.mark.gpu

PAIRS = [(image_bytes((20 * i, 250 - 20 * i, 90), (16 + i, 16)), f"a shape number {i}") for i in range(12)]


def vit_b32_checkpoint(run_dir):
    import open_clip
    import torch

    run_dir.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save({"state_dict": open_clip.create_model("ViT-B-32").state_dict()}, run_dir / "checkpoint.pt")
    return run_dir / "checkpoint.pt"


def score(tmp_path, model, checkpoint, device):
    pool = tmp_path / f"pool-{device}"
    make_pool(pool, [PAIRS[:6], PAIRS[6:]])
    result = CliRunner().invoke(app, ["score", str(pool), "--stages", "clip", "--clip-model", model, "--clip-pretrained",
                                      str(checkpoint), "--clip-device", device, "--workers", "1", "--clip-batch-size", "4"])
    assert result.exit_code == 0, result.output
    scores = pl.read_parquet(pool / "scores" / "clip" / "*.parquet")["clip_score"].to_numpy()
    embeddings = np.concatenate([np.load(f) for f in sorted((pool / "embeddings").glob("*/*.npy"))]).astype(np.float32)
    return scores, embeddings


@pytest.mark.timeout(600)
@pytest.mark.parametrize("model", [TINY_MODEL, "ViT-B-32"])
def test_clip_stage_on_cuda_matches_cpu(tmp_path, model):
    import torch

    assert torch.cuda.is_available(), "the gpu tests need CUDA: run them with `pytest -m gpu` on a GPU machine"
    checkpoint = save_tiny_checkpoint(tmp_path / "run") if model == TINY_MODEL else vit_b32_checkpoint(tmp_path / "run")
    cpu_scores, cpu_embeddings = score(tmp_path, model, checkpoint, "cpu")
    gpu_scores, gpu_embeddings = score(tmp_path, model, checkpoint, "cuda")
    assert np.isfinite(gpu_scores).all() and len(gpu_scores) == len(PAIRS)
    assert gpu_scores == pytest.approx(cpu_scores, abs=2e-2)  # bf16 keeps ~3 significant digits
    assert gpu_embeddings.shape == cpu_embeddings.shape
    cosines = (gpu_embeddings * cpu_embeddings).sum(-1)  # unit vectors: ~1 when the directions agree
    assert cosines.min() > 0.99
