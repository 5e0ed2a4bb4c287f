"""`train sweep`: the grid, skipping finished runs, resuming unfinished ones, printed cluster command lines."""

from __future__ import annotations

import json
import subprocess

import pytest
from tierclip.curate import atomic
from tierclip.curate.errors import UserError
from tierclip.curate.subset import pool_ref, write_subset
from tierclip.train.cli import app
from tierclip.train.sweep import load_spec, plan_runs
from typer.testing import CliRunner

from tests.train.helpers import color_pool


def _tier_set(tmp_path):
    pool = color_pool(tmp_path / "pool", shards=1, per_shard=12)
    uids = pool.meta(0)["uid"]
    write_subset(tmp_path / "tiers" / "top50", uids[:6], {"pool": pool_ref(pool), "tier": "top50"})
    write_subset(tmp_path / "tiers" / "random50", uids[6:], {"pool": pool_ref(pool), "tier": "random50"})
    atomic.write_json(tmp_path / "tiers" / "tiers.json", {"tiers": [{"name": "top50", "path": "top50"}],
                                                          "controls": [{"name": "random50", "path": "random50"}]})
    spec = tmp_path / "sweep.toml"
    spec.write_text(f'pool = "{pool.root}"\nscale = "debug"\nsubsets = ["{tmp_path / "tiers"}"]\nmethods = ["clip"]\n'
                    'seeds = [0]\nsamples_seen = [16]\n[options]\nbatch_size = 8\nloader_workers = 0\n')
    return spec


def _sweep(*args):
    result = CliRunner().invoke(app, ["sweep", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_sweep_runs_the_grid_then_skips_finished_and_resumes_unfinished(tmp_path):
    spec = _tier_set(tmp_path)
    output = _sweep(str(spec), "--out", str(tmp_path / "runs"))
    assert "2 runs: 2 started, 0 resumed, 0 already finished" in output
    names = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert names == ["tiers-random50-clip-n16-s0", "tiers-top50-clip-n16-s0"]
    top = json.loads((tmp_path / "runs" / "tiers-top50-clip-n16-s0" / "results.json").read_text())
    assert top["tier"] == "top50" and top["samples_seen"] == 16 and top["subset_size"] == 6

    (tmp_path / "runs" / "tiers-random50-clip-n16-s0" / "DONE").unlink()
    finished_mtime = (tmp_path / "runs" / "tiers-top50-clip-n16-s0" / "results.json").stat().st_mtime_ns
    output = _sweep(str(spec), "--out", str(tmp_path / "runs"))
    assert "2 runs: 0 started, 1 resumed, 1 already finished" in output
    assert (tmp_path / "runs" / "tiers-random50-clip-n16-s0" / "DONE").exists()
    assert (tmp_path / "runs" / "tiers-top50-clip-n16-s0" / "results.json").stat().st_mtime_ns == finished_mtime


def test_flags_replace_the_file_and_print_cluster_lines(tmp_path):
    spec = _tier_set(tmp_path)
    spec.write_text(spec.read_text() + "keep_resume = false\n")
    grid = load_spec(spec, methods=["clip", "flip"], seeds=[1, 2])
    runs = plan_runs(grid, tmp_path / "runs")
    assert len(runs) == 2 * 2 * 2 and {r.method for r in runs} == {"clip", "flip"}
    script = _sweep(str(spec), "--out", str(tmp_path / "runs"), "--print", "sbatch", "--nproc", "4", "--nodes", "3")
    assert script.count("&& sbatch <<'EOF'\n#!/bin/bash\n") == 2 and script.count("\nEOF") == 2  # one job per run
    assert "#SBATCH --nodes=3" in script and "#SBATCH --gpus-per-node=4" in script
    assert 'srun torchrun --nnodes="$SLURM_NNODES" --nproc-per-node=4' in script and "--rdzv-backend=c10d" in script
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0  # valid shell as printed
    torchrun = _sweep(str(spec), "--out", str(tmp_path / "runs"), "--print", "torchrun").splitlines()
    assert torchrun[0].startswith("torchrun --standalone --nproc_per_node=1 -m tierclip.train.cli run")
    assert "--batch-size 8" in torchrun[0] and "--no-keep-resume" in torchrun[0] and "--resume" in torchrun[0]
    assert f"--subset {tmp_path / 'tiers' / 'top50'}" in torchrun[0]
    nodes = _sweep(str(spec), "--out", str(tmp_path / "runs"), "--print", "torchrun", "--nodes", "2").splitlines()
    assert nodes[0].startswith('torchrun --nnodes=2 --nproc-per-node=1 --rdzv-backend=c10d --rdzv-endpoint="$MASTER_ADDR:')


def test_model_axis_from_the_file_or_flags(tmp_path):
    spec = _tier_set(tmp_path)
    spec.write_text(spec.read_text().replace('methods = ["clip"]', 'methods = ["clip"]\nmodels = ["tc-rn-xs", "tc-vit-xs"]'))
    runs = plan_runs(load_spec(spec), tmp_path / "runs")
    assert sorted(r.name for r in runs) == sorted(f"tiers-{tier}-clip-{model}-n16-s0" for tier in ("top50", "random50")
                                                  for model in ("tc-rn-xs", "tc-vit-xs"))
    assert {r.model for r in runs} == {"tc-rn-xs", "tc-vit-xs"}
    flagged = plan_runs(load_spec(spec, models=["ViT-B-32"]), tmp_path / "runs")
    assert {r.name for r in flagged} == {"tiers-top50-clip-ViT-B-32-n16-s0", "tiers-random50-clip-ViT-B-32-n16-s0"}
    lines = _sweep(str(spec), "--out", str(tmp_path / "runs"), "--model", "tc-vit-xs", "--print", "torchrun").splitlines()
    assert len(lines) == 2 and all("--model tc-vit-xs" in line for line in lines)
    # without a model axis the names stay as they were (no model part)
    assert plan_runs(load_spec(_tier_set(tmp_path / "plain")), tmp_path / "runs")[0].model is None


def test_bad_sweep_files_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('pool = "p"\nmodel = ["x"]\n')
    with pytest.raises(UserError, match="unknown keys \\['model'\\]"):
        load_spec(bad)
    bad.write_text('pool = "p"\nmodels = ["a"]\n[options]\nmodel = "b"\n')
    with pytest.raises(UserError, match="either as `models`"):
        load_spec(bad)
    bad.write_text('pool = "p"\n[options]\nlearning_rate = 1\n')
    with pytest.raises(UserError, match="learning_rate"):
        load_spec(bad)
    with pytest.raises(UserError, match="neither a subset"):
        plan_runs(load_spec(None, pool="p", subsets=[str(tmp_path)]), tmp_path / "runs")
