"""DDP: two CPU processes under torchrun (gloo) give the losses of one process on the same global batch."""

from __future__ import annotations

import json

import pytest
from tierclip.train.config import make_run_config
from tierclip.train.run import run_training

from tests.train.helpers import color_pool, metrics, queue_option, queue_values, torchrun_train

# A ViT tower: LayerNorm only. (A ResNet tower's BatchNorm normalises each process's share of the batch,
# so its loss under DDP differs from one process's by design; see docs/train.md.)
# DeCLIP/DeFILIP: every loss over the gathered batch, the SimSiam head (BatchNorm) on the gathered embeddings, the
# NN queue filled from the gathered captions; FILIP: the token interaction over the gathered batch. A queue of 16
# so that the NN loss is on from step 2 and the queue wraps.
COMMON = dict(scale="debug", model="tc-vit-tiny", samples_seen=32, batch_size=8, seed=5)
METHODS = ["clip", pytest.param("declip", marks=pytest.mark.slow), pytest.param("filip", marks=pytest.mark.slow),
           pytest.param("defilip", marks=pytest.mark.slow)]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("method", METHODS)
def test_two_gloo_processes_match_one_process(tmp_path, method):
    pool = color_pool(tmp_path / "pool", shards=2, per_shard=8)
    args = [str(pool.root), "--out", str(tmp_path / "ddp"), "--scale", "debug", "--method", method,
            "--model", "tc-vit-tiny", "--samples-seen", "32", "--batch-size", "8", "--seed", "5", "--log-every", "1",
            "--loader-workers", "0", "--device", "cpu", *queue_option(method, 16)]
    done = torchrun_train(args, 2, {"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    run_training(make_run_config(tmp_path / "single", pool.root, log_every=1, loader_workers=0, device="cpu", method=method,
                                 **queue_values(method, 16), **COMMON))

    assert len(metrics(tmp_path / "ddp")) == len(metrics(tmp_path / "single")) == 4
    assert metrics(tmp_path / "ddp") == pytest.approx(metrics(tmp_path / "single"), rel=1e-4)
    for part in set(json.loads((tmp_path / "single" / "metrics.jsonl").read_text().splitlines()[-1])) - {"loss"}:
        if part.endswith("_loss"):
            # parts near 0 (SimSiam) carry float noise of the gather and the reduction: an absolute tolerance
            assert metrics(tmp_path / "ddp", part) == pytest.approx(metrics(tmp_path / "single", part), rel=1e-4, abs=1e-3), part
    ddp_results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert ddp_results["world_size"] == 2 and ddp_results["samples_seen"] == 32


def test_torchrun_with_one_process_still_runs_the_process_group_path(monkeypatch):
    """`torchrun --nproc_per_node 1` takes the DDP path (what one GPU can check of a multi-GPU run); a plain process does not."""
    import socket

    import torch.distributed as dist
    from tierclip.train import distributed

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for name, value in {"TORCHELASTIC_RUN_ID": "one", "WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)
    ctx = distributed.setup("cpu")
    try:
        assert ctx.distributed and ctx.world_size == 1 and dist.is_initialized() and dist.get_backend() == "gloo"
        assert distributed.all_sum(ctx, 2.5) == 2.5 and distributed.gather_objects(ctx, {"a": 1}) == [{"a": 1}]
    finally:
        distributed.teardown(ctx)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID")
    plain = distributed.setup("cpu")
    assert not plain.distributed and not dist.is_initialized()
