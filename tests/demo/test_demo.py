"""The demo driver (tierclip.demo) end to end on micro grids: every step's command runs and the report says who won."""

import dataclasses
import json
import subprocess
import sys

import pytest
from tierclip.analysis.augmentation import augmentation_of

from tierclip.demo.grids import FULL_METHODS, GRIDS, DemoGrid, PackagesPool, SynthPool
from tierclip.demo.steps import augmented_methods, trainable_methods
from tierclip.demo.study import run_demo

MICRO = DemoGrid(pool=SynthPool(pool_size=400, seed_size=200, eval_n=64), filter_samples=256, sizes=(40, 80),
                 fractions="0.5,1.0", headline_size=80, budgets=(16, 32, 48), seeds=(0, 1), size_budget=32, size_seeds=(0,),
                 random_control=True, control_budgets=(48,), n_boot=10, scale="debug", task="shape", metric="top1")
# The real-image pool, small: one emoji style and Tux Paint, 5 % of concepts held out.
MICRO_REAL = DemoGrid(pool=PackagesPool(sources="emoji-twitter,tuxpaint", holdout=0.05, trusted_n=100), filter_samples=64,
                      fractions="0.3,1.0", sizes=(200,), headline_size=200, budgets=(16, 32), seeds=(0, 1),
                      random_control=True, control_budgets=(32,), n_boot=10, scale="debug", task="heldout_retrieval",
                      metric="i2t_recall_merged@1")
MICRO_FULL = dataclasses.replace(MICRO, axis_fraction="0.5", arch_models=("tc-vit-xs",), arch_sizes=(40, 80),
                                 method_models=("tc-rn-tiny", "tc-vit-xs"), methods=("clip-aug", "no-such-method"), noaug=True,
                                 text_models=("tc-rn-tiny-text1",), size_seeds=(0, 1),
                                 budgets=(16, 48, 96), size_budget=96,  # 96 seen > both sizes: 2 data sizes
                                 natural_fractions="0.5,1.0", natural_budgets=(96,))


def test_micro_demo_runs_every_step_and_writes_the_report(tmp_path, capsys):
    report = run_demo(tmp_path / "demo", MICRO)
    printed = capsys.readouterr().out
    for command in ("curate synth", "curate score", "train run", "curate tiers", "train sweep", "analysis report"):
        assert f"$ {command}" in printed
    runs = sorted(p.name for p in (tmp_path / "demo" / "runs").iterdir())
    headline = [f"{tier}-clip-n{budget}-s{seed}" for tier in ("top50", "top100") for budget in (16, 32, 48) for seed in (0, 1)]
    controls = [f"random_top50-clip-n48-s{seed}" for seed in (0, 1)]
    assert runs == sorted(headline + controls + [f"n40-{tier}-clip-n32-s0" for tier in ("top50", "top100")])
    assert all((tmp_path / "demo" / "runs" / run / "DONE").exists() for run in runs)
    assert not list((tmp_path / "demo" / "runs").glob("*/resume.pt"))  # the demo keeps no resume state once done
    summary = (report / "summary.md").read_text()
    assert (report / "index.html").stat().st_size > 0 and "Summary" in summary
    # the headline has 2 seeds per point and 3 budgets: compute fits are attempted (not left out) and the
    # quality finding has an interval
    fits = json.loads((report / "fits.json").read_text())
    assert len([f for f in fits["fits"] if f["x"] == "gflops"]) == 2  # one per tier at the headline size
    quality = next(f for f in fits["findings"] if f["key"] == "quality")
    assert quality["interval"] is not None and "48 samples seen" in quality["measured"]
    control = next(f for f in fits["findings"] if f["key"] == "quality_random")  # the size-matched random control
    assert control["interval"] is not None and "top50" in control["measured"] and "random_top50" in control["measured"]
    timings = json.loads((tmp_path / "demo" / "timings.json").read_text())
    assert {"synth", "filter_net", "clip_score", "sweeps", "report"} <= set(timings)

    # A second run skips every finished step and re-runs only the (idempotent) sweeps and the report.
    run_demo(tmp_path / "demo", MICRO)
    assert "already done" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_micro_demo_on_the_real_pool_has_the_random_control_and_names_its_sources(tmp_path, capsys):
    """Slow: the micro real pool still holds 4,400 pictures that the filtering network scores."""
    report = run_demo(tmp_path / "demo", MICRO_REAL)
    printed = capsys.readouterr().out
    assert "$ curate ingest packages" in printed and "$ train sweep" in printed
    runs = sorted(p.name for p in (tmp_path / "demo" / "runs").iterdir())
    headline = [f"{tier}-clip-n{budget}-s{seed}" for tier in ("top30", "top100") for budget in (16, 32) for seed in (0, 1)]
    assert runs == sorted(headline + [f"random_top30-clip-n32-s{seed}" for seed in (0, 1)])
    rows = [json.loads(line) for line in (tmp_path / "demo" / "runs" / runs[0] / "eval.jsonl").read_text().splitlines()]
    assert {"heldout_retrieval"} <= {row["task"] for row in rows}
    recipe = json.loads((tmp_path / "demo" / "pool" / "packages.json").read_text())
    assert set(recipe["sources"]) == {"emoji-twitter", "tuxpaint"} and recipe["sources"]["tuxpaint"]["license"] == "GPL-2.0"
    summary = (report / "summary.md").read_text()
    assert "heldout_retrieval" in summary and "i2t_recall_merged@1" in summary
    findings = {f["key"]: f for f in json.loads((report / "fits.json").read_text())["findings"]}
    assert "subset size 200, 2 seed(s) each" in findings["quality_random"]["measured"]
    assert "emoji-twitter" in (report / "index.html").read_text()  # the data card names the sources


@pytest.mark.slow
@pytest.mark.timeout(2700)
def test_micro_full_demo_trains_every_axis(tmp_path):
    """--full's plumbing on a micro grid: architecture, method x family, text depth, CLIP+Aug at half the data;
    an unknown method is left out; no CLIP run is trained twice."""
    report = run_demo(tmp_path / "demo", MICRO_FULL)
    runs = tmp_path / "demo" / "runs"
    assert sorted(p.name for p in (runs / "arch-n40").iterdir()) == [f"top50-clip-tc-vit-xs-n96-s{s}" for s in (0, 1)]
    assert sorted(p.name for p in (runs / "methods-tc-vit-xs").iterdir()) == [f"top50-clip-aug-tc-vit-xs-n96-s{s}" for s in (0, 1)]
    assert sorted(p.name for p in (runs / "methods-tc-rn-tiny").iterdir()) == [f"top50-clip-aug-tc-rn-tiny-n96-s{s}" for s in (0, 1)]
    assert sorted(p.name for p in (runs / "aug-half").iterdir()) == [f"top50-clip-aug-n96-s{s}" for s in (0, 1)]
    noaug = json.loads((runs / "noaug-tc-rn-tiny" / "top50-clip-aug-tc-rn-tiny-n96-s0" / "config.json").read_text())
    assert augmentation_of(noaug) == "off" and noaug["run"]["aug"]["jitter_p"] == 0
    assert augmentation_of(json.loads((runs / "methods-tc-rn-tiny" / "top50-clip-aug-tc-rn-tiny-n96-s0" / "config.json")
                                      .read_text())) == "default"
    summary = (report / "summary.md").read_text()
    for section in ("## Architecture vs data size", "## ConvNet vs ViT per method", "## Text-encoder depth"):
        assert section in summary
    findings = {f["key"]: f for f in json.loads((report / "fits.json").read_text())["findings"]}
    assert findings["aug_half"]["verdict"] != "not tested by these runs" and findings["aug_half"]["interval"] is not None
    assert findings["text_depth"]["interval"] is not None
    augmentation = [f for f in json.loads((report / "fits.json").read_text())["findings"] if f["key"] == "augmentation"]
    assert sorted(f["measured"].split(",")[0] for f in augmentation) == ["clip-aug on tc-rn-tiny", "clip-aug on tc-vit-xs"]
    assert all(f["interval"] is not None for f in augmentation)  # each with and without its augmentation, 2 seeds
    assert sorted(p.name for p in runs.glob("natural-*")) == [f"natural-{t}-clip-n96-s{s}" for t in ("top100", "top50") for s in (0, 1)]
    assert not findings["crossover"]["why"].startswith("every tier was trained at the same")  # natural sizes differ


# Usable rows a pool gives: synthetic pools 94 % (3 % corrupt, 3 % empty captions); the full real pool (every source)
# 17,222 of 17,317 rows at --max-pixels 4,000,000, 1,400 of them moved to the seed set, 20 % of emoji concepts held out.
USABLE = {"synth": lambda grid: 0.94 * grid.pool.pool_size,
          "real": lambda grid: 15_000 if "openclipart" in grid.pool.sources else 9_200}


@pytest.mark.parametrize("key", sorted(GRIDS))
def test_grids_fit_their_tiers(key):
    """Each size fits in the smallest tier; the headline has >= 2 seeds and >= 3 budgets (the real default: >= 3
    seeds, 4 budgets so that a compute fit has the points it needs, and a random control); the axes train at sizes
    the tier sets have."""
    grid = GRIDS[key]
    smallest_fraction = min(float(f) for f in grid.fractions.split(","))
    assert max(grid.sizes) <= smallest_fraction * USABLE[key[0]](grid) and grid.headline_size in grid.sizes
    assert len(grid.seeds) >= 2 and len(set(grid.budgets)) >= 3
    if key == ("real", False):
        assert len(grid.seeds) >= 3 and len(set(grid.budgets)) >= 4 and grid.random_control
    assert not grid.random_control or (grid.control_budgets and set(grid.control_budgets) <= set(grid.budgets))
    assert set(grid.arch_sizes) <= set(grid.sizes)
    if key[1]:
        assert grid.size_budget in grid.budgets and grid.headline_size in grid.arch_sizes
        assert grid.axis_fraction in grid.fractions.split(",")


def test_the_real_full_grid_trains_every_method_and_each_augmented_one_without_its_augmentation():
    full = GRIDS["real", True]
    assert set(full.methods) | {"clip"} == {"clip", "clip-aug", "slip", "flip", "declip", "filip", "defilip"}
    assert full.noaug and augmented_methods(full.methods) == ("clip-aug", "slip", "declip", "filip", "defilip")


def test_method_list_follows_the_registry_and_what_each_model_can_train():
    """The --full grid's methods per model: what train.methods knows and accepts (FILIP-family: ViT only)."""
    from tierclip.train.methods import METHODS

    trainable = trainable_methods(FULL_METHODS + ("no-such",), ["tc-vit-tiny", "tc-rn-tiny"])
    on_vit, left_out_vit = trainable["tc-vit-tiny"]
    assert on_vit == tuple(m for m in FULL_METHODS if m in METHODS) and set(left_out_vit) == {"no-such"}
    on_resnet, left_out_resnet = trainable["tc-rn-tiny"]
    assert on_resnet == ("clip-aug", "slip", "declip")
    assert set(left_out_resnet) == {"flip", "filip", "defilip", "no-such"}
    assert "ViT" in left_out_resnet["filip"] and "ViT" in left_out_resnet["defilip"]


def test_asking_which_methods_train_keeps_torch_out_of_the_demo_s_own_process():
    """The demo's process lives as long as the demo, beside its lanes: torch/open_clip (~0.5 GB) stay out of it."""
    probe = ("import sys; from tierclip.demo.steps import trainable_methods; "
             "found = trainable_methods(('filip', 'clip-aug'), ['tc-rn-tiny']); "
             "assert found['tc-rn-tiny'][0] == ('clip-aug',), found; print(sorted(m for m in ('torch', 'open_clip') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_failing_step_stops_the_demo_with_its_name(tmp_path):
    from tierclip.demo.steps import step

    with pytest.raises(SystemExit, match="step 'boom' failed"):
        step("boom", [sys.executable, "-c", "raise SystemExit(3)"])


def test_lanes_get_every_subset_and_seed_once_and_about_equal_samples():
    from pathlib import Path

    from tierclip.demo.steps import Sweep, lane_plan

    sweeps = [Sweep("headline", ("--samples-seen", 3000), (Path("top30"), Path("top100")), (0, 1, 2), 28_000),
              Sweep("control", ("--samples-seen", 12000), (Path("random_top30"),), (0, 1, 2), 12_000)]
    plan = lane_plan(sweeps, 2)
    parts = [(argv[argv.index("--subset") + 1], argv[argv.index("--seed") + 1]) for lane in plan for argv in lane]
    assert sorted(parts) == sorted((s, str(seed)) for s in ("top30", "top100", "random_top30") for seed in (0, 1, 2))
    load = [sum(28_000 if "random" not in argv[argv.index("--subset") + 1] else 12_000 for argv in lane) for lane in plan]
    assert sorted(load) == [96_000, 108_000]  # largest first onto the lighter lane: 28+28+28+12 vs 28+28+28+12+12 (k)
    assert all(argv[3:5] == ["sweep", "--samples-seen"] for lane in plan for argv in lane)
    assert len(lane_plan(sweeps[1:], 8)) == 3  # never an empty lane


def test_demo_lanes_option_is_checked_and_reaches_the_grid(tmp_path, monkeypatch, capsys):
    from tierclip.demo import cli

    with pytest.raises(SystemExit) as refused:
        cli.main(["--lanes", "0", "--out", str(tmp_path / "never")])
    assert refused.value.code == 2 and "--lanes 0: must be an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
    seen = {}
    monkeypatch.setattr(cli, "run_demo", lambda out, grid: seen.setdefault("grid", grid) and out)
    cli.main(["--lanes", "1", "--out", str(tmp_path / "demo")])
    assert seen["grid"].lanes == 1 and GRIDS["real", False].lanes == 2
