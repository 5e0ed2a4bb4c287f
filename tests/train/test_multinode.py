"""Training across nodes: two torchrun launchers ("nodes") on this machine meet at a c10d rendezvous (gloo).

Each launcher runs one process (`--nnodes 2 --nproc-per-node 1`), so both processes have LOCAL_RANK 0 and the
global ranks 0 and 1. They give one process's losses step by step on the same global batch; only global rank 0
writes (each node here has its own working folder and a relative `--out`, so a write by rank 1 would show); a
launcher killed with SIGKILL (a lost node) takes its worker with it, and `--resume` ends with the weights of an
uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from tierclip.curate.errors import UserError
from tierclip.curate.procs import RunLock
from tierclip.train.config import make_run_config
from tierclip.train.distributed import from_env
from tierclip.train.run import RUN_LOCK, run_training

from tests.procs import children, free_ports, gone
from tests.train.helpers import assert_same_losses, color_pool, node_launcher, queue_option, queue_values

COMMON = dict(scale="debug", model="tc-vit-tiny", samples_seen=32, batch_size=8, seed=5)  # ViT: no BatchNorm (docs/train.md)


def train_args(pool, out, method: str, samples_seen: int = 32, extra: tuple[str, ...] = ()) -> list[str]:
    return [str(pool), "--out", str(out), "--scale", "debug", "--method", method, "--model", "tc-vit-tiny",
            "--samples-seen", str(samples_seen), "--batch-size", "8", "--seed", "5", "--log-every", "1",
            "--loader-workers", "0", "--device", "cpu", *queue_option(method, 16), *extra]


def two_nodes(args: list[str], folders: list[Path], timeout: float = 500) -> list:
    [port] = free_ports(1)
    launchers = [node_launcher(args, port, folder) for folder in folders]
    for launcher in launchers:
        launcher.communicate(timeout=timeout)
    return launchers


def test_the_device_comes_from_the_local_rank_and_the_node_count_from_the_local_world_size(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the device name only: nothing runs on it
    second_node = {"TORCHELASTIC_RUN_ID": "x", "WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    ctx = from_env(second_node, "cuda")
    assert (ctx.rank, ctx.local_rank, ctx.device, ctx.nodes, ctx.is_main) == (3, 1, "cuda:1", 2, False)
    assert from_env({}, "cpu").nodes == 1 and not from_env({}, "cpu").distributed


def test_ranks_probing_the_run_lock_at_once_do_not_refuse_each_other_but_a_holder_refuses_them(tmp_path):
    lock = tmp_path / "run" / RUN_LOCK
    with RunLock(lock, "`train run`", probe=True), RunLock(lock, "`train run`", probe=True):  # rank 0 and rank 1 checking
        with pytest.raises(UserError, match="another `train run`"):
            RunLock(lock, "`train run`").__enter__()  # rank 0 cannot take it while a probe is in progress
    with RunLock(lock, "`train run`"):  # global rank 0 writing: a probe is refused and leaves the holder's PID
        with pytest.raises(UserError, match=f"pid {os.getpid()}"):
            RunLock(lock, "`train run`", probe=True).__enter__()
    assert lock.read_text() == f"{os.getpid()}\n"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("method", ["clip", pytest.param("filip", marks=pytest.mark.slow)])
def test_two_nodes_match_one_process_and_only_global_rank_0_writes(tmp_path, one_thread, method):
    pool = color_pool(tmp_path / "pool", shards=2, per_shard=8)
    folders = [tmp_path / "node-a", tmp_path / "node-b"]
    launchers = two_nodes(train_args(pool.root, "run", method), folders)  # a relative --out: each node's own folder
    assert [launcher.returncode for launcher in launchers] == [0, 0], launchers[0].stderr[-3000:] + launchers[1].stderr[-3000:]
    written = [folder / "run" for folder in folders if (folder / "run").exists()]
    assert len(written) == 1, "rank 1 wrote into its node's folder too"
    run_training(make_run_config(tmp_path / "single", pool.root, log_every=1, loader_workers=0, device="cpu", method=method,
                                 **queue_values(method, 16), **COMMON))

    assert_same_losses(written[0], tmp_path / "single", steps=4)
    results, config = (json.loads((written[0] / name).read_text()) for name in ("results.json", "config.json"))
    assert (results["world_size"], config["nodes"], results["samples_seen"]) == (2, 2, 32)


@pytest.mark.slow  # three 2-node runs: ~2 min on a loaded 2-core box
@pytest.mark.timeout(900)
def test_resume_after_one_nodes_launcher_is_killed_gives_the_uninterrupted_weights(tmp_path):
    pool = color_pool(tmp_path / "pool", shards=2, per_shard=8)
    every = ("--checkpoint-every", "2")
    straight = two_nodes(train_args(pool.root, tmp_path / "straight", "clip", 64, every), [tmp_path, tmp_path])
    assert [launcher.returncode for launcher in straight] == [0, 0], straight[0].stderr[-3000:]

    out = tmp_path / "resumed"
    [port] = free_ports(1)
    survivor, lost = (node_launcher(train_args(pool.root, out, "clip", 64, every), port, tmp_path) for _ in range(2))
    deadline = time.monotonic() + 400
    while not (out / "resume.pt").exists() and time.monotonic() < deadline and survivor.poll() is None and lost.poll() is None:
        time.sleep(0.05)
    workers = children(lost.pid)
    assert workers and lost.poll() is None, "the run ended before a node was lost"
    os.kill(lost.pid, signal.SIGKILL)  # the launcher only, by its PID
    lost.communicate(timeout=60)
    assert gone(workers, 60), "the killed launcher's worker outlived it"
    survivor.communicate(timeout=400)
    assert survivor.returncode != 0 and not (out / "DONE").exists()
    killed_at = torch.load(out / "resume.pt", weights_only=True)["step"]
    assert 0 < killed_at < 8

    resumed = two_nodes(train_args(pool.root, out, "clip", 64, (*every, "--resume")), [tmp_path, tmp_path])
    assert [launcher.returncode for launcher in resumed] == [0, 0], resumed[0].stderr[-3000:]
    assert json.loads((out / "results.json").read_text())["resumed_from_step"] == killed_at
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))
    a = torch.load(out / "checkpoint.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)["state_dict"]
    assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)
