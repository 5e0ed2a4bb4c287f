"""Guarantees (docs/guarantees.md): `--force` replaces outputs only when complete; workers die with `curate score`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.procs import RunLock
from tierclip.curate.scoring.runner import SCORE_LOCK, score_pool
from tierclip.curate.stages import STAGES
from tierclip.curate.stages.text_dedup import TextDedupConfig

from tests.curate.scoring.test_runner import pool_with, tree_bytes

CURATE = [sys.executable, "-m", "tierclip.curate.cli"]


# -- 7. --force keeps the old outputs until the new ones are complete ----------------------------
def test_failed_force_run_keeps_every_old_sidecar(tmp_path, monkeypatch):
    pool = pool_with(tmp_path / "pool", 5, 4)
    score_pool(pool, ["basic"], workers=1, progress=False)
    before = tree_bytes(pool / "scores" / "basic")
    basic = STAGES["basic"]

    def fails_on_shard_3(meta, images, cfg, ctx):
        if ctx.shard == 3:
            raise UserError("simulated failure on shard 3")
        return basic.compute(meta, images, cfg, ctx)

    monkeypatch.setitem(STAGES, "basic", replace(basic, compute=fails_on_shard_3))
    with pytest.raises(UserError, match="shard 3"):
        score_pool(pool, ["basic"], workers=1, force=True, progress=False)
    assert tree_bytes(pool / "scores" / "basic") == before  # today: 3 of 5 sidecars left
    assert not (pool / "scores" / ".previous-basic").exists()


def test_successful_force_replaces_and_a_killed_force_run_is_put_back(tmp_path):
    pool = pool_with(tmp_path / "pool", 2, 6)
    score_pool(pool, ["text_dedup"], workers=1, progress=False)
    old = tree_bytes(pool / "scores" / "text_dedup")
    # What a SIGKILLed forced run leaves: old outputs set aside, a partial new folder.
    (pool / "scores" / "text_dedup").rename(pool / "scores" / ".previous-text_dedup")
    (pool / "scores" / "text_dedup").mkdir()
    (pool / "scores" / "text_dedup" / "00000.parquet").write_bytes(b"half")
    [report] = score_pool(pool, ["text_dedup"], workers=1, progress=False)
    assert report.shards_done == 0 and tree_bytes(pool / "scores" / "text_dedup") == old
    score_pool(pool, ["text_dedup"], {"text_dedup": TextDedupConfig(threshold=0.5)}, workers=1, force=True, progress=False)
    assert tree_bytes(pool / "scores" / "text_dedup") != old
    assert not (pool / "scores" / ".previous-text_dedup").exists()


def test_failed_force_run_keeps_the_old_side_outputs_too(tmp_path, monkeypatch):
    """A stage's side outputs (clip's embeddings) are set aside and put back with its sidecars."""
    pool = pool_with(tmp_path / "pool", 4, 3)
    basic, side = STAGES["basic"], pool / "embeddings" / "side"

    def writes_side_files(tag: bytes, fail_on: int | None):
        def compute(meta, images, cfg, ctx):
            if ctx.shard == fail_on:
                raise UserError(f"simulated failure on shard {fail_on}")
            side.mkdir(parents=True, exist_ok=True)
            (side / f"{ctx.shard:05d}.npy").write_bytes(tag)
            return basic.compute(meta, images, cfg, ctx)
        return compute

    with_side = replace(basic, side_outputs=lambda p, cfg: [p.root / "embeddings" / "side"])
    monkeypatch.setitem(STAGES, "basic", replace(with_side, compute=writes_side_files(b"old", None)))
    score_pool(pool, ["basic"], workers=1, progress=False)
    before = tree_bytes(side)
    monkeypatch.setitem(STAGES, "basic", replace(with_side, compute=writes_side_files(b"new", 2)))
    with pytest.raises(UserError, match="shard 2"):
        score_pool(pool, ["basic"], workers=1, force=True, progress=False)
    assert tree_bytes(side) == before  # without the set-aside: shards 0 and 1 say "new"
    assert sorted(p.name for p in (pool / "embeddings").iterdir()) == ["side"]
    monkeypatch.setitem(STAGES, "basic", replace(with_side, compute=writes_side_files(b"new", None)))
    score_pool(pool, ["basic"], workers=1, force=True, progress=False)
    assert set(tree_bytes(side).values()) == {b"new"}
    assert sorted(p.name for p in (pool / "embeddings").iterdir()) == ["side"]
    assert sorted(p.name for p in (pool / "scores").iterdir() if p.name.startswith(".")) == []


def test_the_clip_stage_declares_its_embeddings_as_side_outputs(tmp_path):
    from tierclip.curate.pool import Pool
    from tierclip.curate.stages.clip import ClipConfig, embeddings_tag

    pool = Pool(pool_with(tmp_path / "pool", 1, 2))
    cfg = ClipConfig(model="RN50", pretrained="openai")
    assert STAGES["clip"].side_outputs(pool, cfg) == [pool.root / "embeddings" / embeddings_tag(cfg)]


# -- 10. one run at a time; workers die with their parent -----------------------------------------
def test_a_second_run_is_refused_while_the_first_holds_the_pool(tmp_path):
    pool = pool_with(tmp_path / "pool", 1, 3)
    with RunLock(pool / SCORE_LOCK, "`curate score`"):
        with pytest.raises(UserError, match=rf"\.score\.lock: another `curate score` \(pid {os.getpid()}\) is writing here"):
            score_pool(pool, ["basic"], workers=1, progress=False)
    (pool / SCORE_LOCK).write_text("999999\n")  # left by a killed run: nobody holds the lock
    [report] = score_pool(pool, ["basic"], workers=1, progress=False)
    assert report.shards_done == 1


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux")
def test_workers_die_within_seconds_of_a_sigkill_of_curate_score(tmp_path):
    pool = pool_with(tmp_path / "pool", 40, 30)
    process = subprocess.Popen([*CURATE, "score", str(pool), "--stages", "basic,lang", "--workers", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while len(workers) < 3 and process.poll() is None and time.monotonic() < deadline:
        workers = children_of(process.pid)  # two spawn workers + multiprocessing's resource tracker
        time.sleep(0.05)
    assert len(workers) >= 3 and process.poll() is None, "the run ended before its workers were seen"
    time.sleep(0.5)  # let the workers reach their initializer
    process.send_signal(signal.SIGKILL)  # the parent only, as `kill -9 PID` does
    process.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in workers if alive(pid)]
    for pid in survivors:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"{len(survivors)} of {len(workers)} worker processes outlived the killed parent"
    rerun = subprocess.run([*CURATE, "score", str(pool), "--stages", "basic,lang", "--workers", "1"],
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_dataloader_worker_init_sets_the_parent_death_signal():
    """The clip stage's and training's DataLoader workers run `loader_worker_init`: read the setting back."""
    import ctypes
    import multiprocessing

    def child(queue):
        from tierclip.curate.procs import loader_worker_init

        loader_worker_init(0)
        value = ctypes.c_int(0)
        ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
        queue.put(value.value)

    queue = multiprocessing.get_context("fork").Queue()
    process = multiprocessing.get_context("fork").Process(target=child, args=(queue,))
    process.start()
    process.join(30)
    assert queue.get(timeout=5) == signal.SIGKILL
