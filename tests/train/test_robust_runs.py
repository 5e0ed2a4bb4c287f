"""Runs never leave their folder, never lose data silently, never share a folder, and a damaged checkpoint or a full
disk is one line naming the file: tier names from tiers.json, a cut shard tar, a run folder in use, a cut or
damaged checkpoint.pt / resume.pt, ENOSPC while a checkpoint is written."""

from __future__ import annotations

import builtins
import errno
import json
from pathlib import Path

import pytest
from tierclip.curate import atomic
from tierclip.curate.cli import main as curate_main
from tierclip.curate.errors import UserError
from tierclip.curate.procs import RunLock
from tierclip.curate.subset import pool_ref, write_subset
from tierclip.train.cli import main as train_main
from tierclip.train.sweep import load_spec, plan_runs

from tests.curate.robust_util import one_error_line, run_main
from tests.train.helpers import color_evalset, color_pool

RUN_LOCK = ".run.lock"  # the lock file of a run folder (train/run.py)
RUN = ["--scale", "debug", "--loader-workers", "0", "--batch-size", "8", "--samples-seen", "16"]


def train(args, monkeypatch, capsys) -> tuple[int, str, str]:
    return run_main(train_main, args, monkeypatch, capsys, "train")


def refused(args, monkeypatch, capsys) -> str:
    code, _, err = train(args, monkeypatch, capsys)
    assert code == 2, err
    return one_error_line(err)


# -- names and paths from tiers.json ---------------------------------------------------------------------
@pytest.mark.parametrize("entry, message", [({"name": "/../../../../tmp/ESCAPED", "path": "top"}, "not a plain folder name"),
                                            ({"name": "..", "path": "top"}, "not a plain folder name"),
                                            ({"name": "top", "path": "../../elsewhere"}, "climbs out of the folder"),
                                            ({"name": "top", "path": "/tmp"}, "is an absolute path")])
def test_tier_names_and_paths_from_tiers_json_stay_inside(tmp_path, entry, message):
    pool = color_pool(tmp_path / "pool", shards=1, per_shard=8)
    write_subset(tmp_path / "tiers" / "top", pool.meta(0)["uid"][:4], {"pool": pool_ref(pool)})
    atomic.write_json(tmp_path / "tiers" / "tiers.json", {"tiers": [entry], "controls": []})
    spec = load_spec(None, pool=str(pool.root), subsets=[str(tmp_path / "tiers")])
    with pytest.raises(UserError, match=message) as caught:  # today: a run folder outside --out
        plan_runs(spec, tmp_path / "runs")
    assert str(tmp_path / "tiers" / "tiers.json") in str(caught.value)


def test_a_method_name_from_the_sweep_file_cannot_leave_out(tmp_path):
    with pytest.raises(UserError, match=r"--method \.\./\.\./x: must be one of clip, "):
        plan_runs(load_spec(None, pool="p", methods=["../../x"]), tmp_path / "runs")


# -- a cut shard tar --------------------------------------------------------------------------------------
@pytest.fixture(params=["in-data", "in-header"])
def cut_pool(tmp_path, request):
    """Shard 1's tar cut inside the data of its 7th sample's image, or inside the header that follows it."""
    import tarfile

    pool = color_pool(tmp_path / "pool", shards=2, per_shard=12)
    tar = pool.tar_path(1)
    with tarfile.open(tar) as opened:
        member = [m for m in opened.getmembers() if m.name.endswith(".png")][6]
    end = member.offset_data + (member.size // 2 if request.param == "in-data" else -(-member.size // 512) * 512 + 100)
    tar.write_bytes(tar.read_bytes()[:end])
    return pool


def test_train_refuses_a_cut_shard_naming_it(cut_pool, tmp_path, monkeypatch, capsys):
    line = refused(["run", str(cut_pool.root), "--out", str(tmp_path / "run"), *RUN], monkeypatch, capsys)
    assert line.startswith(f"error: {cut_pool.tar_path(1)}: ") and "--allow-damaged-shards" in line, line
    assert not (tmp_path / "run" / "config.json").exists()  # today: trains on fewer rows, without a word


def test_allow_damaged_shards_trains_on_and_prints_the_count(cut_pool, tmp_path, monkeypatch, capsys):
    code, _, err = train(["run", str(cut_pool.root), "--out", str(tmp_path / "run"), *RUN, "--allow-damaged-shards"], monkeypatch, capsys)
    assert code == 0, err
    counts = json.loads((tmp_path / "run" / "config.json").read_text())["data_counts"]
    assert counts["missing_in_shard"] > 0 and counts["usable"] + counts["missing_in_shard"] == 24
    assert f"WARNING: training without {counts['missing_in_shard']} usable samples of 1 damaged shard(s)" in err


def test_curate_validate_and_score_name_a_cut_shard_in_one_line(cut_pool, monkeypatch, capsys):
    code, out, err = run_main(curate_main, ["validate", str(cut_pool.root)], monkeypatch, capsys)
    assert code == 1 and "Traceback" not in err, err
    assert [line for line in out.splitlines() if line.startswith("problem:")] == [
        line for line in out.splitlines() if str(cut_pool.tar_path(1)) in line and "damaged shard" in line]
    code, _, err = run_main(curate_main, ["score", str(cut_pool.root), "--stages", "basic", "--workers", "1"], monkeypatch, capsys)
    assert code == 2 and one_error_line(err).startswith(f"error: {cut_pool.tar_path(1)}: damaged shard")


# -- one run per folder ------------------------------------------------------------------------------------
def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path, monkeypatch, capsys):
    pool = color_pool(tmp_path / "pool", shards=1, per_shard=8)
    out = tmp_path / "run"
    with RunLock(out / RUN_LOCK, "`train run`"):  # what a running `train run` holds
        for extra in ([], ["--resume"]):
            line = refused(["run", str(pool.root), "--out", str(out), *RUN, *extra], monkeypatch, capsys)
            assert "another `train run`" in line and str(out / RUN_LOCK) in line, line
    assert sorted(p.name for p in out.iterdir()) == [RUN_LOCK]  # today: both runs write config, metrics, checkpoints
    code, _, err = train(["run", str(pool.root), "--out", str(out), *RUN], monkeypatch, capsys)  # released: runs
    assert code == 0, err


# -- full disk while writing a checkpoint ------------------------------------------------------------------
class FillsUp:
    """A file that takes `room` bytes, then fails as a full disk does (torch's writer swallows the OSError)."""

    def __init__(self, handle, room: int):
        self.handle, self.room = handle, room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def full_after(monkeypatch, saves_that_fit: int) -> None:
    """Checkpoint writes succeed `saves_that_fit` times (checkpoint.pt and resume.pt count one each), then the disk is full."""
    real_open, calls = builtins.open, []

    def opened(path, mode="r", *args, **kw):
        handle = real_open(path, mode, *args, **kw)
        if ".tmp-" in str(path) and str(path).endswith(".pt") and "w" in mode:
            calls.append(path)
            return handle if len(calls) <= saves_that_fit else FillsUp(handle, 4096)
        return handle

    monkeypatch.setattr(builtins, "open", opened)


def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_last_one(tmp_path, monkeypatch, capsys):
    from tierclip.train import checkpoint

    pool = color_pool(tmp_path / "pool", shards=1, per_shard=8)
    out = tmp_path / "run"
    full_after(monkeypatch, 2)  # step 1's checkpoint.pt and resume.pt fit, step 2's do not
    line = refused(["run", str(pool.root), "--out", str(out), *RUN, "--checkpoint-every", "1"], monkeypatch, capsys)
    assert line == f"error: {out / 'checkpoint.pt'}: No space left on device; free some space or choose another --out"
    assert checkpoint.load(out / "checkpoint.pt")["step"] == 1 and checkpoint.load(out / "resume.pt")["step"] == 1
    assert not list(out.glob(".tmp-*"))
    monkeypatch.undo()
    code, _, err = train(["run", str(pool.root), "--out", str(out), *RUN, "--checkpoint-every", "1", "--resume"], monkeypatch, capsys)
    assert code == 0 and (out / "DONE").exists(), err


# -- cut or damaged checkpoints ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    pool = color_pool(root / "pool", shards=1, per_shard=8)
    color_evalset(root / "eval")
    with pytest.MonkeyPatch.context() as patch:
        import sys

        patch.setattr(sys, "argv", ["train", "run", str(pool.root), "--out", str(root / "run"), *RUN])
        with pytest.raises(SystemExit) as done:
            train_main()
    assert done.value.code in (0, None)
    return root


def damaged_copies(path: Path, folder: Path) -> dict[str, Path]:
    data = path.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    copies = {"cut": data[: len(data) // 2], "flipped": bytes(flipped)}
    folder.mkdir(exist_ok=True)
    for name, content in copies.items():
        (folder / f"{name}.pt").write_bytes(content)
    return {name: folder / f"{name}.pt" for name in copies}


def test_a_damaged_checkpoint_is_one_line_in_train_eval(finished, tmp_path, monkeypatch, capsys):
    import shutil

    for name, bad in damaged_copies(finished / "run" / "checkpoint.pt", tmp_path / "bad").items():
        run = tmp_path / f"run-{name}"
        shutil.copytree(finished / "run", run)
        shutil.copy(bad, run / "checkpoint.pt")
        line = refused(["eval", str(run), "--eval", str(finished / "eval")], monkeypatch, capsys)
        assert line.startswith(f"error: {run / 'checkpoint.pt'}: ") and "checkpoint" in line, line


def test_a_damaged_pretrained_checkpoint_is_one_line_before_training(finished, tmp_path, monkeypatch, capsys):
    for bad in damaged_copies(finished / "run" / "checkpoint.pt", tmp_path / "bad").values():
        line = refused(["run", str(finished / "pool"), "--out", str(tmp_path / "run"), *RUN, "--pretrained", str(bad)],
                       monkeypatch, capsys)
        assert line.startswith(f"error: {bad}: ") and "checkpoint" in line, line
        assert not (tmp_path / "run").exists()


def test_a_damaged_resume_file_is_one_line(finished, tmp_path, monkeypatch, capsys):
    import shutil

    for name, bad in damaged_copies(finished / "run" / "resume.pt", tmp_path / "bad").items():
        run = tmp_path / f"run-{name}"
        shutil.copytree(finished / "run", run)
        (run / "DONE").unlink()
        shutil.copy(bad, run / "resume.pt")
        line = refused(["run", str(finished / "pool"), "--out", str(run), *RUN, "--resume"], monkeypatch, capsys)
        assert line.startswith(f"error: {run / 'resume.pt'}: ") and "checkpoint" in line, line
