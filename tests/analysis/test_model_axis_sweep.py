"""A real micro sweep over two models (a ConvNet and a ViT) and two seeds, through `train sweep`,
`analysis collect` and `analysis report`: the model columns come from the instantiated models and the
ConvNet-vs-ViT section's numbers are the runs' own evaluation results."""

from __future__ import annotations

import json
import statistics

import polars as pl
import pytest
from tierclip.analysis.cli import app as analysis_app
from tierclip.train.cli import app as train_app
from typer.testing import CliRunner

from tests.train.helpers import COLORS, color_pool

MODELS = ("tc-rn-xs", "tc-vit-xs")
METRIC = "text_retrieval_recall@1"  # image->text hits over 8 images: differs between seeds even when barely trained


def retrieval_evalset(root):
    """8 single-colour images (2 shades per colour) with their captions: a zero-shot and a retrieval task."""
    from PIL import Image
    from tierclip.curate.evalset import write_evalset

    (root / "images").mkdir(parents=True)
    names = [list(COLORS)[i % 4] for i in range(8)]
    for i, name in enumerate(names):
        Image.new("RGB", (32, 32), tuple(max(0, c - 40 * (i // 4)) for c in COLORS[name])).save(root / f"images/{i}.png")
    samples = pl.DataFrame({"file": [f"images/{i}.png" for i in range(8)], "caption": [f"a photo of a {n} shape" for n in names],
                            "color": names})
    tasks = [{"name": "color", "kind": "zeroshot", "label_column": "color", "classnames": list(COLORS),
              "templates": ["a photo of a {} shape."]},
             {"name": "retrieval", "kind": "retrieval", "caption_column": "caption"}]
    write_evalset(root, "colors", tasks, samples)
    return root


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("model-axis")
    pool = color_pool(root / "pool", shards=1, per_shard=12)
    evalset = retrieval_evalset(root / "eval")
    args = ["sweep", "--pool", str(pool.root), "--scale", "debug", "--samples-seen", "64", "--eval", str(evalset),
            "--out", str(root / "runs")]
    args += [part for model in MODELS for part in ("--model", model)] + ["--seed", "0", "--seed", "1"]
    spec = root / "sweep.toml"
    spec.write_text("[options]\nbatch_size = 8\nlr = 0.01\nloader_workers = 0\ntorch_threads = 1\n")
    result = CliRunner().invoke(train_app, [args[0], str(spec), *args[1:]])
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = CliRunner().invoke(analysis_app, ["report", str(root / "runs"), "--out", str(root / "report"), "--task", "retrieval",
                                               "--metric", METRIC, "--n-boot", "5"])
    assert report.exit_code == 0, report.output + repr(report.exception)
    return root


def _results(root) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (root / "runs").glob("*/results.json")}


def test_run_names_and_results_record_the_model(swept):
    from tierclip.train.models import create_model, describe_model

    results = _results(swept)
    assert sorted(results) == sorted(f"all-clip-{m}-n64-s{s}" for m in MODELS for s in (0, 1))
    for model_name, family in zip(MODELS, ("convnet", "vit"), strict=True):
        model, _, _ = create_model(model_name)
        expected = describe_model(model, 32)
        recorded = results[f"all-clip-{model_name}-n64-s0"]
        assert recorded["model_family"] == family and recorded["text_depth"] == 3 and recorded["vocab_size"] == 49408
        assert {k: recorded[k] for k in expected} == expected
        assert recorded["image_params"] == sum(p.numel() for p in model.visual.parameters())
        assert recorded["samples_per_s"] > 0


def test_collect_groups_by_the_model_columns(swept, tmp_path):
    out = tmp_path / "table.parquet"
    result = CliRunner().invoke(analysis_app, ["collect", str(swept / "runs"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(out).filter(pl.col("metric") == METRIC)
    by_family = table.group_by("model_family").agg(pl.col("run").n_unique(), pl.col("image_params").first())
    assert dict(by_family.select("model_family", "run").iter_rows()) == {"convnet": 2, "vit": 2}
    params = dict(by_family.select("model_family", "image_params").iter_rows())
    assert params["convnet"] > params["vit"] > 0  # tc-rn-xs 0.36 M vs tc-vit-xs 0.12 M image parameters


def test_family_section_numbers_are_the_runs_means(swept):
    summary = (swept / "report" / "summary.md").read_text()
    assert "## ConvNet vs ViT per method" in summary and "## Architecture vs data size" not in summary
    fits = json.loads((swept / "report" / "fits.json").read_text())
    assert any(f["key"] == "supervision" and f["verdict"] == "not tested by these runs" for f in fits["findings"])
    family_table = summary[summary.index("## ConvNet vs ViT per method"):summary.index("## Fit table")]
    means = {}
    for model_name in MODELS:
        values = [_metric(swept, f"all-clip-{model_name}-n64-s{s}") for s in (0, 1)]
        means[model_name] = statistics.mean(values)
        cell = f"{means[model_name]:.3f} ± {statistics.stdev(values):.3f} "  # then its interval, or why it is not shown
        assert cell in family_table, (cell, family_table)
    assert f"{means['tc-vit-xs'] - means['tc-rn-xs']:.3f} [" in family_table  # the ViT - ConvNet column


def _metric(root, run: str) -> float:
    """The run's own eval.jsonl value of METRIC."""
    rows = [json.loads(line) for line in (root / "runs" / run / "eval.jsonl").read_text().splitlines() if line.strip()]
    return next(r["value"] for r in rows if r["metric"] == METRIC)
