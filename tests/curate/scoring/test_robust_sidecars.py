"""Sidecars are checked like meta files (footer, uid column, meta's row count), readers skip the folders a killed
`--force` run set aside, and Ctrl-C stops `curate score` in one line (exit 130)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from tierclip.curate.cli import main as curate_main
from tierclip.curate.pool import Pool
from tierclip.curate.scoring.runner import score_pool

from tests.curate.robust_util import TQDM, one_error_line, run_main
from tests.curate.scoring.test_runner import pool_with, tree_bytes

CURATE = [sys.executable, "-m", "tierclip.curate.cli"]


def cut_sidecar(pool, stage: str = "basic", shard: int = 1) -> str:
    path = pool / "scores" / stage / f"{shard:05d}.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # cut short; its _done marker stays
    return str(path)


def test_a_cut_sidecar_is_computed_again_by_score(tmp_path, monkeypatch, capsys):
    pool = pool_with(tmp_path / "pool", 3, 8)
    score_pool(pool, ["basic"], workers=1, progress=False)
    whole = tree_bytes(pool / "scores" / "basic")
    damaged = cut_sidecar(pool)
    code, out, err = run_main(curate_main, ["score", str(pool), "--stages", "basic", "--workers", "1"], monkeypatch, capsys)
    assert code == 0, err
    assert "basic: 1 shards computed, 2 already done" in out  # today: "0 shards computed, 3 already done"
    assert f"{damaged}: damaged sidecar" in err and "computing it again" in err
    assert tree_bytes(pool / "scores" / "basic") == whole


def test_a_sidecar_with_other_rows_is_computed_again(tmp_path):
    import polars as pl

    pool = pool_with(tmp_path / "pool", 2, 8)
    score_pool(pool, ["basic"], workers=1, progress=False)
    path = pool / "scores" / "basic" / "00000.parquet"
    pl.read_parquet(path).head(5).write_parquet(path)  # readable, but 5 rows for 8 meta rows
    assert Pool(pool).sidecar_problems("basic") == [f"{path}: damaged sidecar (5 rows, its meta file has 8)"]
    [report] = score_pool(pool, ["basic"], workers=1, progress=False)
    assert report.shards_done == 1 and Pool(pool).sidecar_problems("basic") == []


def test_validate_and_filter_name_a_cut_sidecar_in_one_line(tmp_path, monkeypatch, capsys):
    pool = pool_with(tmp_path / "pool", 3, 8)
    score_pool(pool, ["basic"], workers=1, progress=False)
    damaged = cut_sidecar(pool)
    code, out, err = run_main(curate_main, ["validate", str(pool)], monkeypatch, capsys)
    assert code == 1 and "Traceback" not in err, err
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1 and damaged in problems[0], out
    code, _, err = run_main(curate_main, ["filter", str(pool), "--out", str(tmp_path / "s"), "--where", "caption_words > 1"],
                            monkeypatch, capsys)
    assert code == 2 and damaged in one_error_line(err)
    assert not (tmp_path / "s").exists()


def killed_force_run(pool) -> dict[str, bytes]:
    """What a SIGKILLed `curate score --force --stages basic` leaves: the old outputs set aside, one new shard done."""
    score_pool(pool, ["basic"], workers=1, progress=False)
    old = tree_bytes(pool / "scores" / "basic")
    (pool / "scores" / "basic").rename(pool / "scores" / ".previous-basic")
    shutil.copytree(pool / "scores" / ".previous-basic", pool / "scores" / "basic",
                    ignore=lambda folder, names: [n for n in names if n.startswith(("00001", "00002"))])
    return old


def test_readers_skip_a_set_aside_folder_and_the_next_score_puts_it_back(tmp_path, monkeypatch, capsys):
    pool = pool_with(tmp_path / "pool", 3, 8)
    old = killed_force_run(pool)
    args = ["filter", str(pool), "--out", str(tmp_path / "s"), "--where", "caption_words > 1"]
    code, _, err = run_main(curate_main, args, monkeypatch, capsys)
    line = one_error_line(err)  # today: "column 'caption_words' is in several sidecars (.previous-basic, basic)"
    assert code == 2 and "incomplete" in line and ".previous" not in line, line
    assert Pool(pool).stages() == []
    score_pool(pool, ["lang"], workers=1, progress=False)  # any `curate score` run rolls the swap back
    assert not (pool / "scores" / ".previous-basic").exists()
    assert tree_bytes(pool / "scores" / "basic") == old
    code, _, err = run_main(curate_main, args, monkeypatch, capsys)
    assert code == 0, err


def test_ctrl_c_stops_curate_score_in_one_line_with_exit_130(tmp_path):
    pool = pool_with(tmp_path / "pool", 200, 40)
    process = subprocess.Popen([*CURATE, "score", str(pool), "--stages", "basic,lang,text_dedup", "--workers", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list((pool / "scores").glob("basic/_done/*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    started = time.monotonic()
    _, err = process.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip() and not TQDM.search(line)]
    assert process.returncode == 130, err
    assert len(lines) == 1 and lines[0].startswith("interrupted (Ctrl-C)"), err  # today: ~35-70 lines of tracebacks
    assert time.monotonic() - started < 30
    assert "text_dedup" not in Pool(pool).stages()
    rerun = subprocess.run([*CURATE, "score", str(pool), "--stages", "basic,lang", "--workers", "2", "--quiet"],
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0 and rerun.stderr == "", rerun.stderr
