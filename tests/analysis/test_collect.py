"""collect: tidy frame from run folders; incomplete and malformed runs listed, the rest still collected."""

import json

import polars as pl
import pytest
from tierclip.analysis.cli import app
from tierclip.analysis.collect import collect
from typer.testing import CliRunner

from tests.analysis.fake_runs import write_grid, write_run


def one_run(root, name, **kw):
    args = dict(tier="top10", method="clip", subset_size=1000, samples_seen=3000, seed=0, shape_top1=0.5, name=name)
    return write_run(root, **{**args, **kw})


def test_collect_tidy_frame(tmp_path):
    write_grid(tmp_path / "runs", tiers=("top10", "full"), sizes=(1000, 3000), methods=("clip",), seeds=(0,))
    table, problems = collect([tmp_path / "runs"])
    assert problems == []
    assert table.height == 4 * 2  # 4 runs x 2 eval rows
    for column in ("run", "tier", "method", "model", "subset", "subset_size", "unique_samples", "samples_seen",
                   "repetitions", "gflops", "seed", "task", "metric", "value", "random_score", "tier_set", "rule"):
        assert column in table.columns
    row = table.filter((pl.col("tier") == "top10") & (pl.col("subset_size") == 1000) & (pl.col("task") == "shape")).row(0, named=True)
    assert row["repetitions"] == pytest.approx(30.0) and row["gflops"] == pytest.approx(1500.0)
    assert row["random_score"] == 0.125 and row["tier_set"] == "tiers"
    assert row["share_gt_clean"] == pytest.approx(0.95)
    assert table.filter(pl.col("tier") == "top10")["share_gt_attribute_swap"].null_count() == 4


def test_incomplete_runs_listed_and_left_out(tmp_path):
    one_run(tmp_path, "finished")
    one_run(tmp_path, "unfinished", done=False)
    table, problems = collect([tmp_path])
    assert table["run"].unique().to_list() == ["finished"]
    assert [(p.kind, p.path.endswith("unfinished")) for p in problems] == [("incomplete", True)]


def test_malformed_and_missing_files_named_rest_collected(tmp_path):
    one_run(tmp_path, "good")
    bad_json = one_run(tmp_path, "bad_json")
    (bad_json / "results.json").write_text('{"method": "clip",\n "samples_seen": }')
    missing = one_run(tmp_path, "missing_results")
    (missing / "results.json").unlink()
    bad_line = one_run(tmp_path, "bad_eval_line")
    with open(bad_line / "eval.jsonl", "a") as handle:
        handle.write("{not json\n")
    wrong_type = one_run(tmp_path, "wrong_type")
    results = json.loads((wrong_type / "results.json").read_text())
    (wrong_type / "results.json").write_text(json.dumps({**results, "samples_seen": "lots"}))
    table, problems = collect([tmp_path])
    messages = [str(p) for p in problems]
    assert sorted(table["run"].unique().to_list()) == ["bad_eval_line", "good"]
    assert any(str(bad_json / "results.json") + ": line 2" in m for m in messages)
    assert any(str(missing / "results.json") in m and "missing" in m for m in messages)
    assert any(str(bad_line / "eval.jsonl") + ": line 3" in m for m in messages)
    assert any(str(wrong_type / "results.json") in m and "samples_seen" in m for m in messages)
    assert table.filter(pl.col("run") == "bad_eval_line").height == 2  # its two good lines kept


def test_missing_eval_falls_back_to_results_metrics(tmp_path):
    run = one_run(tmp_path, "no_eval")
    (run / "eval.jsonl").unlink()
    table, problems = collect([run])
    assert sorted(table["task"].to_list()) == ["color", "shape"] and table["random_score"].null_count() == 2
    assert any("eval.jsonl" in str(p) for p in problems)


def test_globs_and_missing_paths(tmp_path):
    one_run(tmp_path / "sweep", "a")
    one_run(tmp_path / "sweep", "b", seed=1)
    table, problems = collect([str(tmp_path / "sweep" / "*"), tmp_path / "nope"])
    assert table["run"].n_unique() == 2
    assert [p.kind for p in problems] == ["path"]


def test_cli_collect_writes_parquet(tmp_path):
    one_run(tmp_path / "runs", "a")
    out = tmp_path / "table.parquet"
    result = CliRunner().invoke(app, ["collect", str(tmp_path / "runs"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out)["run"].to_list() == ["a", "a"]


def test_data_card_names_the_pool_and_its_source(tmp_path):
    run = one_run(tmp_path, "emoji")
    config = json.loads((run / "config.json").read_text())
    source = "packages: emoji-datasource-google (Apache-2.0), openclipart-png (public domain)"
    (run / "config.json").write_text(json.dumps({**config, "pool_info": {"name": "real", "source": source}}))
    table, problems = collect([tmp_path])
    assert problems == [] and set(table["pool_source"].to_list()) == {source}
    from tierclip.analysis.tables import data_cards

    card = data_cards(table).row(0, named=True)
    assert (card["pool"], card["pool_source"]) == ("synthetic", source)
