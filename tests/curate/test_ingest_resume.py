"""A SIGKILLed ingest, re-run, gives the same pool byte for byte as an uninterrupted one (pool.json's `created` aside)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tierclip.curate.ingest.writer import SHARD_DELAY_ENV

from tests.curate.ingest_data import good_rows, write_captions, write_datacomp, write_images, write_img2dataset_shard

REPO = Path(__file__).resolve().parents[2]
CURATE = str(REPO / ".venv" / "bin" / "curate")


def make_input(kind: str, root: Path) -> list[str]:
    """The source-specific part of a `curate ingest` command line, for an input of 10 shards of 4."""
    if kind == "folder":
        paths = write_images(root / "images", 38)
        rows = [{"path": p, "caption": f"caption {i}" if i % 7 else ""} for i, p in enumerate(paths)]
        rows.append({"path": "gone.png", "caption": "x"})
        write_captions(root / "captions.jsonl", rows)
        return ["folder", str(root / "images"), "--captions", str(root / "captions.jsonl")]
    if kind == "img2dataset":
        for shard in range(3):
            rows = good_rows(13, start=shard * 100)
            rows[5]["status"], rows[5]["image"] = "failed_to_download", None
            write_img2dataset_shard(root / "raw", shard, rows)
        return ["img2dataset", str(root / "raw")]
    import numpy as np

    for name, rows, seed in (("a", 21, 0), ("b", 19, 1)):  # with the .npz features DataComp ships beside each parquet
        write_datacomp(root / "dc" / f"{name}.parquet", rows, seed=seed)
        rng = np.random.default_rng(seed)
        np.savez(root / "dc" / f"{name}.npz", l14_img=rng.normal(size=(rows, 8)).astype(np.float16),
                 l14_txt=rng.normal(size=(rows, 8)).astype(np.float16))
    return ["datacomp", str(root / "dc")]


def options(out: Path) -> list[str]:
    return ["--out", str(out), "--shard-size", "4", "--name", "p"]


def ingest_slowly(args: list[str], out: Path) -> subprocess.Popen:
    """The console command in a subprocess, sleeping 1 s after each shard so it can be killed mid-way."""
    env = {**os.environ, SHARD_DELAY_ENV: "1.0"}
    return subprocess.Popen([CURATE, "ingest", *args, *options(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ingest(args: list[str], out: Path, monkeypatch) -> None:
    """The same command in-process (no delay)."""
    from tierclip.curate.cli import main

    monkeypatch.setattr(sys, "argv", ["curate", "ingest", *args, *options(out)])
    try:
        main()
    except SystemExit as exc:
        assert not exc.code


def files_of(pool: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(pool.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name == "pool.json":
                info = json.loads(data)
                assert info.pop("created")
                data = json.dumps(info, sort_keys=True).encode()
            out[str(path.relative_to(pool))] = data
    return out


@pytest.mark.parametrize("kind", ["folder", "img2dataset", "datacomp"])
def test_killed_ingest_resumes_to_identical_pool(tmp_path, monkeypatch, kind):
    args = make_input(kind, tmp_path)
    killed = ingest_slowly(args, tmp_path / "killed")
    second_meta = tmp_path / "killed" / "meta" / "00001.parquet"
    deadline = time.monotonic() + 120
    while not second_meta.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the ingest finished before it could be killed"
    assert not (tmp_path / "killed" / "pool.json").exists()
    done = sorted(p.name for p in (tmp_path / "killed" / "meta").iterdir())
    assert "00001.parquet" in done and "00009.parquet" not in done
    (tmp_path / "killed" / "meta" / ".tmp-999999-00002.parquet").write_bytes(b"half-written by the killed run")

    ingest(args, tmp_path / "reference", monkeypatch)
    ingest(args, tmp_path / "killed", monkeypatch)
    reference_files, resumed_files = files_of(tmp_path / "reference"), files_of(tmp_path / "killed")
    assert sorted(reference_files) == sorted(resumed_files)
    assert len([f for f in reference_files if f.startswith("meta/")]) == 10
    for name, data in reference_files.items():
        assert resumed_files[name] == data, f"{name} differs after resume"
