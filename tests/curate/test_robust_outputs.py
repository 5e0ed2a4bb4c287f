"""Outputs never land in a pool's own files; an empty pool or subset is one line; progress output suits a log and
`--quiet` silences it; a `--where` too large to plan is refused in one line."""

from __future__ import annotations

import subprocess
import sys
import time

import polars as pl
import pytest
from tierclip.curate.cli import main as curate_main
from tierclip.curate.pool import Pool
from tierclip.train.cli import main as train_main

from tests.curate.robust_util import one_error_line, run_main, write_folder
from tests.curate.scoring.test_runner import pool_with, tree_bytes
from tests.tiny import png_bytes

CURATE = [sys.executable, "-m", "tierclip.curate.cli"]


def refused(main, args, monkeypatch, capsys, prog="curate") -> str:
    code, _, err = run_main(main, args, monkeypatch, capsys, prog)
    assert code == 2, err
    return one_error_line(err)


# -- outputs inside a pool ---------------------------------------------------------------------------------
def test_no_command_writes_into_a_pools_own_files(tmp_path, monkeypatch, capsys):
    pool = pool_with(tmp_path / "pool", 2, 6)
    code, _, err = run_main(curate_main, ["filter", str(pool), "--out", str(tmp_path / "s")], monkeypatch, capsys)
    assert code == 0, err
    captions = write_folder(tmp_path / "src", {"a.png": png_bytes()})
    before = tree_bytes(pool)
    cases = {
        "filter": ["filter", str(pool), "--out", str(pool / "meta")],
        "tiers": ["tiers", str(pool), "--out", str(pool / "scores" / "t"), "--fractions", "0.5", "--score", "width"],
        "export": ["subset", "export-npy", str(tmp_path / "s"), "--out", str(pool / "meta" / "00000.parquet")],
        "intersect": ["subset", "intersect", str(tmp_path / "s"), str(tmp_path / "s"), "--out", str(pool / "shards" / "x")],
        "inspect": ["inspect", str(pool), "--out", str(pool / "embeddings" / "report")],
        "root": ["filter", str(pool), "--out", str(pool)],
        "ingest": ["ingest", "folder", str(tmp_path / "src" / "images"), "--captions", str(captions),
                   "--out", str(pool / "meta" / "new")],
    }
    for name, args in cases.items():
        line = refused(curate_main, args, monkeypatch, capsys)
        assert str(pool) in line and ("own files" in line or "is the pool folder" in line), (name, line)
    line = refused(train_main, ["run", str(pool), "--out", str(pool / "scores" / "run")], monkeypatch, capsys, "train")
    assert "own files (scores)" in line
    assert tree_bytes(pool) == before  # today: filter into meta/ leaves a pool every command refuses
    Pool(pool)  # still opens


def test_an_output_beside_the_pool_files_is_fine(tmp_path, monkeypatch, capsys):
    pool = pool_with(tmp_path / "pool", 1, 6)
    code, _, err = run_main(curate_main, ["filter", str(pool), "--out", str(pool / "subsets" / "all")], monkeypatch, capsys)
    assert code == 0, err
    Pool(pool)


# -- empty pools and subsets -----------------------------------------------------------------------------
@pytest.fixture
def empty_pool(tmp_path, monkeypatch, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "c.csv").write_text("path,caption\n")
    args = ["ingest", "folder", str(tmp_path / "images"), "--captions", str(tmp_path / "c.csv"), "--out", str(tmp_path / "pool")]
    code, _, err = run_main(curate_main, args, monkeypatch, capsys)
    assert code == 0, err
    return tmp_path / "pool"


def test_an_empty_pool_is_one_line_that_says_so(empty_pool, tmp_path, monkeypatch, capsys):
    for args in (["score", str(empty_pool), "--stages", "basic"],  # today: "stage needs meta column 'uid'"
                 ["filter", str(empty_pool), "--out", str(tmp_path / "s")],  # today: "missing meta file for shard 0"
                 ["tiers", str(empty_pool), "--out", str(tmp_path / "t"), "--fractions", "0.5", "--score", "width"],
                 ["inspect", str(empty_pool), "--out", str(tmp_path / "r")]):
        line = refused(curate_main, args, monkeypatch, capsys)
        what = "score" if args[0] == "score" else "select or inspect"
        assert line == f"error: {empty_pool}: the pool is empty (0 rows); nothing to {what}"
    line = refused(train_main, ["run", str(empty_pool), "--out", str(tmp_path / "run")], monkeypatch, capsys, "train")
    assert "the pool is empty (0 rows)" in line
    assert not [p for p in ("s", "t", "r", "run") if (tmp_path / p).exists()]


def test_an_empty_subset_is_one_line_that_says_so(tmp_path, monkeypatch, capsys):
    pool = pool_with(tmp_path / "pool", 1, 6)
    code, out, _ = run_main(curate_main, ["filter", str(pool), "--out", str(tmp_path / "none"), "--where", "width < 0"],
                            monkeypatch, capsys)
    assert code == 0 and "(0 uids)" in out
    line = refused(curate_main, ["reshard", str(tmp_path / "none"), "--out", str(tmp_path / "new")], monkeypatch, capsys)
    assert "empty subset (0 uids); nothing to reshard" in line and not (tmp_path / "new").exists()


# -- progress output --------------------------------------------------------------------------------------
def test_progress_in_a_log_is_a_few_plain_lines_and_quiet_silences_it(tmp_path):
    pool = pool_with(tmp_path / "pool", 60, 4)
    done = subprocess.run([*CURATE, "score", str(pool), "--stages", "basic", "--workers", "1"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr  # today: a tqdm redraw per shard, joined by carriage returns
    lines = done.stderr.splitlines()
    assert 1 <= len(lines) <= 11 and all(line.startswith("basic: ") for line in lines), done.stderr
    assert lines[-1].startswith("basic: 100% 60/60")
    quiet = subprocess.run([*CURATE, "score", str(pool), "--stages", "basic", "--workers", "1", "--force", "--quiet"],
                           capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert "basic: 60 shards computed" in quiet.stdout


def test_progress_is_a_bar_on_a_terminal(monkeypatch):
    from tierclip.curate import progress
    from tqdm import tqdm

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.delenv(progress.QUIET_ENV, raising=False)
    bar = progress.progress(total=3, desc="x")
    assert isinstance(bar, tqdm) and not bar.disable
    bar.close()
    progress.set_quiet(True)
    assert progress.progress(total=3).disable
    progress.set_quiet(False)


# -- --where size ----------------------------------------------------------------------------------------
def test_a_huge_where_is_refused_at_once_and_in_lists_stay_fast(tmp_path, monkeypatch, capsys):
    pool = pool_with(tmp_path / "pool", 1, 8)
    huge = " OR ".join(f"width = {i}" for i in range(2000))
    started = time.monotonic()
    line = refused(curate_main, ["filter", str(pool), "--out", str(tmp_path / "s"), "--where", huge], monkeypatch, capsys)
    assert time.monotonic() - started < 10  # today: 27 s and 1.5 GB
    assert "--where: 3999 operators, more than 512" in line and "IN (" in line and len(line) < 300
    values = ", ".join(str(i) for i in range(5000))
    code, _, err = run_main(curate_main, ["filter", str(pool), "--out", str(tmp_path / "in"), "--where", f"width IN ({values})"],
                            monkeypatch, capsys)
    assert code == 0, err
    short = " OR ".join(f"width = {i}" for i in range(100))
    code, _, err = run_main(curate_main, ["filter", str(pool), "--out", str(tmp_path / "or"), "--where", short], monkeypatch, capsys)
    assert code == 0, err
    uids = [pl.read_parquet(tmp_path / name / "uids.parquet")["uid"].to_list() for name in ("in", "or")]
    assert uids[0] == uids[1] and uids[0]


# -- a full disk while inspect draws ----------------------------------------------------------------------
def test_a_full_disk_while_inspect_draws_a_chart_names_the_file(tmp_path, monkeypatch, capsys):
    import errno

    from matplotlib.figure import Figure

    pool = pool_with(tmp_path / "pool", 1, 6)

    def disk_full(self, fname, **kw):  # what a full disk does to matplotlib's own open/write: no file name in it
        with open(fname, "wb") as handle:
            handle.write(b"\x89PNG")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    line = refused(curate_main, ["inspect", str(pool), "--out", str(tmp_path / "report")], monkeypatch, capsys)
    assert line.startswith(f"error: {tmp_path / 'report'}/") and line.endswith(
        ".png: No space left on device; free some space or choose another --out"), line  # today: "write failed: ..."
    assert not (tmp_path / "report").exists()
