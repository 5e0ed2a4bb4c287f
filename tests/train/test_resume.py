"""Exact resume: a run killed (SIGKILL) after a checkpoint and resumed ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from tierclip.train.config import make_run_config
from tierclip.train.run import run_training

from tests.train.helpers import color_pool, queue_option, queue_values

# FLIP on the tiny ViT: patch dropout draws from the torch RNG every step, so the RNG restore is exercised too.
# DeCLIP, FILIP, DeFILIP: their heads, FILIP's temperature and DeCLIP's nearest-neighbour queue (method state in
# resume.pt); their random views (MoCo crops, EDA, MLM masks) are seeded by data position. A small queue (64
# embeddings) so that it wraps around within the run.
ARGS = dict(scale="debug", model="tc-vit-tiny", samples_seen=192, batch_size=8, seed=3)
METHODS = ["flip", pytest.param("declip", marks=pytest.mark.slow), pytest.param("filip", marks=pytest.mark.slow),
           pytest.param("defilip", marks=pytest.mark.slow)]
QUEUE = 64


def _cli_args(pool, out, method) -> list[str]:
    return [str(pool), "--out", str(out), "--scale", "debug", "--method", method, "--model", "tc-vit-tiny",
            "--samples-seen", "192", "--batch-size", "8", "--seed", "3", "--checkpoint-every", "3", "--log-every", "1",
            "--loader-workers", "0", *queue_option(method, QUEUE)]


def _kill_after_first_checkpoint(pool, out, method) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tierclip.train.cli", "run", *_cli_args(pool, out, method)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (out / "resume.pt").exists():
            assert proc.poll() is None, "training exited before its first checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    return torch.load(out / "resume.pt", weights_only=True)["step"]


@pytest.fixture
def one_thread():
    """Single-threaded like the killed subprocess (OMP_NUM_THREADS=1): the same float summation order."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("method", METHODS)
def test_killed_and_resumed_run_matches_an_uninterrupted_one(tmp_path, one_thread, method):
    pool = color_pool(tmp_path / "pool", shards=2, per_shard=16)
    killed_at = _kill_after_first_checkpoint(pool.root, tmp_path / "resumed", method)
    assert 0 < killed_at < 24 and not (tmp_path / "resumed" / "DONE").exists()
    if method in ("declip", "defilip"):
        queue = torch.load(tmp_path / "resumed" / "resume.pt", weights_only=True)["method"]
        assert int(queue["nn_queue.filled"]) == min(QUEUE, 8 * killed_at)

    args = dict(ARGS, method=method, **queue_values(method, QUEUE))
    run_training(make_run_config(tmp_path / "resumed", pool.root, resume=True, checkpoint_every=3, log_every=1, loader_workers=0, **args))
    run_training(make_run_config(tmp_path / "straight", pool.root, checkpoint_every=3, log_every=1, loader_workers=0, **args))

    resumed = json.loads((tmp_path / "resumed" / "results.json").read_text())
    straight = json.loads((tmp_path / "straight" / "results.json").read_text())
    assert resumed["resumed_from_step"] == killed_at and straight["resumed_from_step"] is None
    assert resumed["final_loss"] == pytest.approx(straight["final_loss"], rel=1e-5)
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 25))  # lines logged after the checkpoint by the killed process were dropped
    a = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)["state_dict"]
    assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)
