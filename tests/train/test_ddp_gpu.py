"""The CUDA training paths (`pytest -m gpu` on a GPU machine): bf16 autocast, and torchrun's nccl process group + DDP.

torchrun takes every GPU there is; on a one-GPU machine that is one process, which still runs the whole DDP
path (train.distributed sets the process group up under torchrun even for one process). Its losses must equal
a plain single-process run on the same global batch, up to bf16 noise.
"""

from __future__ import annotations

import json

import pytest
from tierclip.train.config import make_run_config
from tierclip.train.run import run_training

from tests.train.helpers import color_evalset, color_pool, metrics, queue_option, queue_values, torchrun_train

pytestmark = pytest.mark.gpu


def gpus() -> int:
    import torch

    assert torch.cuda.is_available(), "the gpu tests need CUDA: run them with `pytest -m gpu` on a GPU machine"
    return torch.cuda.device_count()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("method", ["clip", "filip"])  # FILIP: token interaction over the gathered batch
def test_torchrun_nccl_matches_one_cuda_process(tmp_path, method):
    n = gpus()
    pool = color_pool(tmp_path / "pool", shards=2, per_shard=16)
    args = [str(pool.root), "--out", str(tmp_path / "ddp"), "--scale", "debug", "--method", method, "--model", "tc-vit-tiny",
            "--samples-seen", "64", "--batch-size", "16", "--seed", "5", "--log-every", "1", "--loader-workers", "1",
            "--device", "cuda", *queue_option(method, 16)]
    done = torchrun_train(args, n)
    assert done.returncode == 0, done.stderr[-3000:]
    run_training(make_run_config(tmp_path / "single", pool.root, scale="debug", method=method, model="tc-vit-tiny",
                                 samples_seen=64, batch_size=16, seed=5, log_every=1, loader_workers=1, device="cuda",
                                 **queue_values(method, 16)))
    ddp, single = metrics(tmp_path / "ddp"), metrics(tmp_path / "single")
    assert len(ddp) == len(single) == 4
    assert ddp == pytest.approx(single, rel=2e-2)  # bf16 autocast on both sides: reductions differ in order
    results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert results["world_size"] == n and results["samples_seen"] == 64
    assert "cpu" not in results["device"].lower()  # the GPU's name, not the CPU fallback


@pytest.mark.timeout(600)
def test_cuda_run_evaluates_like_cpu_and_its_checkpoint_loads_on_cpu(tmp_path):
    import open_clip
    import torch
    from tierclip.train.evaluate import evaluate_run

    gpus()
    pool = color_pool(tmp_path / "pool", shards=2, per_shard=16)
    evalset = color_evalset(tmp_path / "eval")
    run_training(make_run_config(tmp_path / "run", pool.root, scale="debug", model="tc-vit-tiny", samples_seen=256,
                                 batch_size=32, seed=1, log_every=1, loader_workers=1, device="cuda"))
    state = torch.load(tmp_path / "run" / "checkpoint.pt", map_location="cpu", weights_only=False)
    state = state.get("state_dict", state)
    assert all(t.dtype == torch.float32 for t in state.values() if torch.is_tensor(t) and t.is_floating_point())
    on_gpu = {row["task"] + row["metric"]: row["value"] for row in evaluate_run(tmp_path / "run", [evalset], "cuda")}
    on_cpu = {row["task"] + row["metric"]: row["value"] for row in evaluate_run(tmp_path / "run", [evalset], "cpu")}
    assert on_gpu.keys() == on_cpu.keys() and on_gpu  # bf16 image/text features vs fp32: same predictions here
    assert on_gpu == pytest.approx(on_cpu, abs=1 / 8 + 1e-9)  # at most one of the 8 images flips
    open_clip.add_model_config(tmp_path / "run" / "model_configs")
    model, _, _ = open_clip.create_model_and_transforms("tc-vit-tiny", pretrained=str(tmp_path / "run" / "checkpoint.pt"))
    assert model.logit_scale.item() > 0
