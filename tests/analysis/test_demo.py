"""The demo driver end to end on a micro grid: every step's command runs and the report says who won."""

import json
import sys

import pytest

from analysis.demo import GRIDS, DemoGrid, run_demo

MICRO = DemoGrid(pool_size=400, seed_size=200, image_size=32, filter_samples=256, sizes=(40, 80), fractions="0.5,1.0",
                 methods=("clip", "clip-aug"), method_sizes=(80,), seeds=(0,), samples_seen=64, n_boot=10,
                 scale="debug", eval_n=64)


def test_micro_demo_runs_every_step_and_writes_the_report(tmp_path, capsys):
    report = run_demo(tmp_path / "demo", MICRO)
    printed = capsys.readouterr().out
    for command in ("curate synth", "curate score", "train run", "curate tiers", "train sweep", "analysis report"):
        assert f"$ {command}" in printed
    runs = sorted(p.name for p in (tmp_path / "demo" / "runs").iterdir())
    assert runs == sorted([f"n{n}-{tier}-clip-n64-s0" for n in (40, 80) for tier in ("top50", "top100")]
                          + [f"n80-{tier}-clip-aug-n64-s0" for tier in ("top50", "top100")])
    assert all((tmp_path / "demo" / "runs" / run / "DONE").exists() for run in runs)
    assert (report / "index.html").stat().st_size > 0 and "Summary" in (report / "summary.md").read_text()
    timings = json.loads((tmp_path / "demo" / "timings.json").read_text())
    assert {"synth", "filter_net", "clip_score", "sweep", "report"} <= set(timings)

    # A second run skips every finished step and re-runs only the (idempotent) sweeps and the report.
    run_demo(tmp_path / "demo", MICRO)
    assert "already done" in capsys.readouterr().out


def test_grids_fit_their_tiers():
    """Each size must fit in the smallest tier: fraction x usable pool (94% usable: 3% corrupt, 3% empty captions)."""
    for grid in GRIDS.values():
        smallest_fraction = min(float(f) for f in grid.fractions.split(","))
        assert max(grid.sizes) <= 0.94 * smallest_fraction * grid.pool_size
        assert set(grid.method_sizes) <= set(grid.sizes) and grid.methods[0] == "clip"


def test_a_failing_step_stops_the_demo_with_its_name(tmp_path):
    from analysis.demo import step

    with pytest.raises(SystemExit, match="step 'boom' failed"):
        step("boom", [sys.executable, "-c", "raise SystemExit(3)"])
