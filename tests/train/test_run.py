"""`train run` end to end: run folder contents, open_clip-loadable checkpoint, results.json, clear errors."""

from __future__ import annotations

import json

import polars as pl
import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.subset import pool_ref, write_subset
from tierclip.train.cli import app
from typer.testing import CliRunner

from tests.tiny import make_pool
from tests.train.helpers import clip_scores_with_checkpoint, color_evalset, color_pairs, color_pool

RESULT_KEYS = {"run", "method", "model", "pool", "subset", "tier", "subset_size", "unique_samples", "samples_seen",
               "repetitions", "gflops_per_sample", "gflops", "wall_time_s", "device", "seed", "metrics"}


def _refused(*args: str) -> str:
    """The one-line reason `train run` refuses these arguments (a UserError, or a value refused when parsed)."""
    result = CliRunner().invoke(app, ["run", "--scale", "debug", "--loader-workers", "0", *args])
    if isinstance(result.exception, UserError):
        return str(result.exception)
    assert result.exit_code == 2, result.output + repr(result.exception)
    return " ".join(result.output.split())


def _train(*args: str):
    result = CliRunner().invoke(app, ["run", "--scale", "debug", "--loader-workers", "0", *args], catch_exceptions=True)
    if isinstance(result.exception, UserError):
        raise result.exception
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    pool = color_pool(tmp / "pool", shards=2, per_shard=12)
    uids = pl.concat([pool.meta(0)["uid"][:8], pool.meta(1)["uid"][:4]])
    write_subset(tmp / "subset", uids, {"pool": pool_ref(pool), "rule": "test", "tier": "top-half"})
    evalset = color_evalset(tmp / "eval")
    _train(str(pool.root), "--subset", str(tmp / "subset"), "--out", str(tmp / "run"), "--samples-seen", "40",
           "--batch-size", "8", "--eval", str(evalset), "--checkpoint-every", "2")
    return tmp


def test_run_folder_has_everything_and_results_add_up(finished_run):
    run = finished_run / "run"
    assert {p.name for p in run.iterdir()} >= {"config.json", "metrics.jsonl", "checkpoint.pt", "resume.pt", "results.json",
                                               "eval.jsonl", "DONE", "model_configs"}
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "tc-rn-tiny" and config["subset_manifest"]["tier"] == "top-half"
    assert config["run"]["batch_size"] == 8 and config["data_counts"]["usable"] == 12
    assert json.loads((run / "model_configs" / "tc-rn-tiny.json").read_text())["vision_cfg"]["width"] == 16
    results = json.loads((run / "results.json").read_text())
    assert RESULT_KEYS <= set(results)
    assert results["samples_seen"] == 40 and results["subset_size"] == 12 and results["unique_samples"] == 12
    assert results["repetitions"] == pytest.approx(40 / 12) and results["tier"] == "top-half"
    assert results["gflops"] == pytest.approx(results["gflops_per_sample"] * 40) and results["gflops_per_sample"] > 0
    assert set(results["metrics"]) == {"color/top1"} and 0 <= results["metrics"]["color/top1"] <= 1
    assert (run / "DONE").stat().st_mtime >= (run / "results.json").stat().st_mtime


def test_checkpoint_loads_in_a_fresh_open_clip_process(finished_run):
    import subprocess
    import sys

    run = finished_run / "run"
    code = ("import open_clip, sys; open_clip.add_model_config(sys.argv[1] + '/model_configs');"
            "m, _, _ = open_clip.create_model_and_transforms('tc-rn-tiny', pretrained=sys.argv[1] + '/checkpoint.pt');"
            "print(round(float(m.logit_scale.exp()), 4))")
    out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, check=True)
    import torch

    saved = torch.load(run / "checkpoint.pt", weights_only=True)["state_dict"]["logit_scale"].exp().item()
    assert float(out.stdout.strip()) == pytest.approx(saved, abs=1e-3)


def test_finished_and_unfinished_runs_are_protected(finished_run):
    with pytest.raises(UserError, match="finished"):
        _train(str(finished_run / "pool"), "--out", str(finished_run / "run"))
    (finished_run / "run" / "DONE").rename(finished_run / "run" / "DONE.bak")
    try:
        with pytest.raises(UserError, match="--resume"):
            _train(str(finished_run / "pool"), "--out", str(finished_run / "run"))
        with pytest.raises(UserError, match="different method"):
            _train(str(finished_run / "pool"), "--subset", str(finished_run / "subset"), "--out",
                   str(finished_run / "run"), "--resume", "--method", "clip-aug", "--samples-seen", "40", "--batch-size", "8")
    finally:
        (finished_run / "run" / "DONE.bak").rename(finished_run / "run" / "DONE")


def test_bad_inputs_are_clear_errors(tmp_path):
    pool = color_pool(tmp_path / "pool", shards=1, per_shard=4)
    other = make_pool(tmp_path / "other", [color_pairs(4, offset=100)], name="other")
    write_subset(tmp_path / "empty", [], {"pool": pool_ref(pool)})
    write_subset(tmp_path / "foreign", other.meta(0)["uid"], {"pool": pool_ref(other)})
    write_subset(tmp_path / "disjoint", other.meta(0)["uid"], {"pool": pool_ref(pool)})
    out = str(tmp_path / "run")
    cases = [
        (["--subset", str(tmp_path / "empty")], "empty subset"),
        (["--subset", str(tmp_path / "foreign")], "built from pool 'other'"),
        (["--subset", str(tmp_path / "disjoint")], "no usable samples"),
        (["--method", "dino"], "--method dino: must be one of clip, clip-aug"),
        (["--model", "no-such-model"], "--model no-such-model: unknown open_clip model"),
        (["--scale", "huge"], "--scale huge: must be one of debug"),
        (["--samples-seen", "10", "--epochs", "1"], "either --samples-seen or --epochs"),
        (["--batch-size", "6", "--accum-steps", "4"], "must divide evenly"),
        (["--flip-mask-ratio", "0.7"], "--flip-mask-ratio: not an option of method clip"),
    ]
    for args, message in cases:
        assert message in _refused(str(pool.root), "--out", out, *args)
    pool.tar_path(0).unlink()
    with pytest.raises(UserError, match="missing shard"):
        _train(str(pool.root), "--out", out)
    assert not (tmp_path / "run" / "DONE").exists()


def test_checkpoint_scores_a_pool_with_the_curate_clip_stage(finished_run):
    scores = clip_scores_with_checkpoint(finished_run / "pool", finished_run / "run" / "checkpoint.pt", "tc-rn-tiny")
    assert scores.height == 24 and scores["clip_score"].is_not_null().all()
    assert scores["clip_score"].min() >= -1 and scores["clip_score"].max() <= 1


def test_epochs_become_samples_seen_over_the_usable_samples(tmp_path):
    from tierclip.train.config import make_run_config
    from tierclip.train.run import resolve_budget

    cfg = resolve_budget(make_run_config(tmp_path / "run", "pool", scale="debug", epochs=2.5, batch_size=8), usable=13)
    assert cfg.samples_seen == 33 and cfg.steps == 5 and cfg.epochs == 2.5


def test_no_keep_resume_deletes_the_optimizer_state_once_done(tmp_path):
    pool = color_pool(tmp_path / "pool", shards=1, per_shard=8)
    _train(str(pool.root), "--out", str(tmp_path / "run"), "--samples-seen", "16", "--batch-size", "8",
           "--no-keep-resume")
    assert (tmp_path / "run" / "DONE").exists() and (tmp_path / "run" / "checkpoint.pt").exists()
    assert not (tmp_path / "run" / "resume.pt").exists()


def test_pool_is_the_positional_argument(tmp_path):
    assert "Missing argument" in _refused("--out", str(tmp_path / "none"))
    assert "No such option: --pool" in _refused("--pool", str(tmp_path / "p"), "--out", str(tmp_path / "none"))
    result = CliRunner().invoke(app, ["run", "--help"])
    assert "POOL" in result.output and "--pool" not in result.output
    assert "--loader-workers" in result.output and "--torch-threads" in result.output
    assert "--workers" not in result.output.replace("--loader-workers", "")
    assert not (tmp_path / "none").exists()
