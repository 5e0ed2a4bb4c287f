"""The stage runner: aligned sidecars, skip on re-run, resume after SIGKILL, Ray engine, and clear errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.scoring.runner import StageOutputError, score_pool
from tierclip.curate.stages import STAGES
from tierclip.curate.stages.text_dedup import TextDedupConfig

from tests.tiny import make_pool, png_bytes

CURATE = [sys.executable, "-m", "tierclip.curate.cli"]
WORDS = "red green blue small large circle square photo of a the on table cat chien chat le la est sur".split()


def caption(shard: int, row: int) -> str:
    words = [WORDS[(shard * 7 + row * 3 + i * 5) % len(WORDS)] for i in range(4 + row % 5)]
    return " ".join(words) if row % 9 else "le chat est sur la table"


def pool_with(root: Path, n_shards: int, rows: int) -> Path:
    image = png_bytes((10, 200, 30))
    make_pool(root, [[(image if r % 4 else None, caption(s, r) if r % 6 else None) for r in range(rows)] for s in range(n_shards)])
    return root


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_sidecars_aligned_with_meta_and_stats(tmp_path):
    pool = pool_with(tmp_path / "pool", 2, 7)
    reports = score_pool(pool, ["lang", "basic"], workers=1, progress=False)
    assert [r.stage for r in reports] == ["lang", "basic"]
    for shard in (0, 1):
        meta = pl.read_parquet(pool / "meta" / f"0000{shard}.parquet")
        for stage in ("basic", "lang"):
            sidecar = pl.read_parquet(pool / "scores" / stage / f"0000{shard}.parquet")
            assert sidecar["uid"].to_list() == meta["uid"].to_list()
            assert sidecar.columns == ["uid", *STAGES[stage].produces]
            assert (pool / "scores" / stage / "_done" / f"0000{shard}").exists()
        stats = json.loads((pool / "scores" / "lang" / "_stats" / f"0000{shard}.json").read_text())
        assert stats["rows"] == 7 and stats["nulls"]["lang"] == meta["caption"].null_count()


def test_completed_shards_are_skipped_and_missing_ones_redone(tmp_path):
    pool = pool_with(tmp_path / "pool", 3, 5)
    score_pool(pool, ["basic"], workers=1, progress=False)
    before = {p: p.stat().st_mtime_ns for p in (pool / "scores" / "basic").glob("*.parquet")}
    (pool / "scores" / "basic" / "_done" / "00001").unlink()
    time.sleep(0.01)
    [report] = score_pool(pool, ["basic"], workers=1, progress=False)
    assert (report.shards_done, report.shards_skipped) == (1, 2)
    after = {p: p.stat().st_mtime_ns for p in (pool / "scores" / "basic").glob("*.parquet")}
    assert [p.name for p in before if before[p] != after[p]] == ["00001.parquet"]


@pytest.mark.parametrize("kill_after", ["basic/_done/00000", "text_dedup/_global/_tasks/buckets/000-000-001.json"])
def test_resume_after_sigkill_is_byte_identical(tmp_path, kill_after):
    pool = pool_with(tmp_path / "killed", 16, 20)
    reference = tmp_path / "reference"
    shutil.copytree(pool, reference)
    score_pool(reference, ["basic", "lang", "text_dedup"], workers=1, progress=False)

    command = [*CURATE, "score", str(pool), "--stages", "basic,lang,text_dedup", "--workers", "2"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_marker = pool / "scores" / kill_after  # a shard of the first stage, or a task of text_dedup's global phase
    deadline = time.monotonic() + 300
    while not first_marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the runner and its worker processes
    process.wait()
    assert first_marker.exists()
    assert not (pool / "scores" / "text_dedup" / "_done" / "00015").exists(), "the run finished before it was killed"

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "already done" in resumed.stdout
    assert tree_bytes(pool / "scores") == tree_bytes(reference / "scores")


def test_missing_dependency_unknown_stage_and_metadata_only_errors(tmp_path):
    pool = pool_with(tmp_path / "pool", 1, 3)
    with pytest.raises(UserError, match=r"needs the 'clip' sidecar.*--stages clip,cluster"):
        score_pool(pool, ["cluster"], workers=1, progress=False)
    with pytest.raises(UserError, match=r"unknown stage 'colour' \(known stages: basic, lang, clip"):
        score_pool(pool, ["basic", "colour"], workers=1, progress=False)
    with pytest.raises(UserError, match="unknown engine"):
        score_pool(pool, ["basic"], engine="spark", progress=False)
    shutil.rmtree(pool / "shards")
    with pytest.raises(UserError, match="needs images but the pool has no image shards"):
        score_pool(pool, ["clip"], workers=1, progress=False)
    [report] = score_pool(pool, ["basic"], workers=1, progress=False)  # basic works without images
    assert report.shards_done == 1
    assert pl.read_parquet(pool / "scores" / "basic" / "00000.parquet")["decodable"].null_count() == 3


def test_cli_prints_one_line_errors(tmp_path):
    pool = pool_with(tmp_path / "pool", 1, 2)
    result = subprocess.run([*CURATE, "score", str(pool), "--stages", "basic,nope"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unknown stage 'nope' (known stages: basic, lang, clip, text_dedup, image_dedup, cluster)"


def test_changed_options_need_force(tmp_path):
    pool = pool_with(tmp_path / "pool", 1, 6)
    score_pool(pool, ["text_dedup"], workers=1, progress=False)
    other = {"text_dedup": TextDedupConfig(threshold=0.5)}
    with pytest.raises(UserError, match=r"_config.json: 'text_dedup' was computed with other options \(threshold\)"):
        score_pool(pool, ["text_dedup"], other, workers=1, progress=False)
    [report] = score_pool(pool, ["text_dedup"], other, workers=1, force=True, progress=False)
    assert report.shards_done == 1
    assert json.loads((pool / "scores" / "text_dedup" / "_config.json").read_text())["options"]["threshold"] == 0.5


def test_runner_rejects_a_stage_that_changes_rows(tmp_path, monkeypatch):
    pool = pool_with(tmp_path / "pool", 1, 4)
    basic = STAGES["basic"]
    monkeypatch.setitem(STAGES, "basic", replace(basic, compute=lambda meta, *rest: basic.compute(meta, *rest).head(3)))
    with pytest.raises(StageOutputError, match="returned 3 rows for 4 meta rows"):
        score_pool(pool, ["basic"], workers=1, progress=False)
    monkeypatch.setitem(STAGES, "basic", replace(basic, compute=lambda meta, *rest: basic.compute(meta, *rest)
                                                 .with_columns(pl.col("caption_chars").cast(pl.Int64))))
    with pytest.raises(StageOutputError, match="dtypes"):
        score_pool(pool, ["basic"], workers=1, progress=False)
    assert not (pool / "scores" / "basic" / "_done").exists()


def test_ray_engine_gives_the_same_sidecars_as_the_local_engine(tmp_path):
    pytest.importorskip("ray")
    from tierclip.curate.stages.clip import ClipConfig
    from tierclip.curate.stages.cluster import ClusterConfig

    from tests.curate.stage_fixtures import TINY_MODEL, save_tiny_checkpoint

    local = pool_with(tmp_path / "local", 3, 8)
    on_ray = tmp_path / "ray"
    shutil.copytree(local, on_ray)
    checkpoint = save_tiny_checkpoint(tmp_path / "run")
    configs = {"clip": ClipConfig(model=TINY_MODEL, pretrained=str(checkpoint), loader_workers=0), "cluster": ClusterConfig(k=2)}
    stages = ["basic", "lang", "text_dedup", "clip", "image_dedup", "cluster"]
    score_pool(local, stages, configs, workers=1, progress=False)
    score_pool(on_ray, stages, configs, engine="ray", workers=2, progress=False)
    assert tree_bytes(on_ray / "scores") == tree_bytes(local / "scores")
    assert tree_bytes(on_ray / "embeddings") == tree_bytes(local / "embeddings")
    assert (local / "scores" / "text_dedup" / "_global" / "_tasks" / "buckets").is_dir()  # the global phases ran as tasks


def test_ray_engine_global_phases_on_imported_embeddings_equal_the_local_engine(tmp_path):
    """image_dedup's inverted lists and cluster's assign/semdedup phases of a metadata-only DataComp pool, on both engines."""
    pytest.importorskip("ray")
    from tierclip.curate.ingest.datacomp import open_datacomp
    from tierclip.curate.ingest.run import run_ingest
    from tierclip.curate.stages.cluster import ClusterConfig
    from tierclip.curate.stages.image_dedup import ImageDedupConfig

    from tests.curate.test_datacomp_embeddings import datacomp_dir

    datacomp_dir(tmp_path / "dc")
    run_ingest(open_datacomp(tmp_path / "dc", "l14"), tmp_path / "local", shard_size=20)
    shutil.copytree(tmp_path / "local", tmp_path / "ray")
    configs = {"image_dedup": ImageDedupConfig(exact_max=10, lists=3), "cluster": ClusterConfig(k=3)}
    stages = ["text_dedup", "image_dedup", "cluster"]
    score_pool(tmp_path / "local", stages, configs, workers=1, progress=False)
    score_pool(tmp_path / "ray", stages, configs, engine="ray", workers=2, progress=False)
    assert (tmp_path / "local" / "scores" / "image_dedup" / "_global" / "_tasks" / "search").is_dir()
    assert tree_bytes(tmp_path / "ray" / "scores") == tree_bytes(tmp_path / "local" / "scores")
