"""Every bench script runs on a tiny input and says what it measured (bench/ is code too).

The scripts run as their users run them (`python bench/NAME.py ...`, this checkout's code); each test checks
the figures a script exists to produce are there and plausible, not their values (those depend on the machine).
The ones that train several runs or build the curation-quality recipe are `slow`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run(script: str, *args: object) -> str:
    done = subprocess.run([sys.executable, str(BENCH / script), *map(str, args)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def benchlib_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def positive(value) -> bool:
    return isinstance(value, int | float) and value > 0


def test_bench_speed_prints_every_limit_and_both_ratios(tmp_path):
    out = run("bench_speed.py", "--out", tmp_path, "--pairs", 48, "--shard-size", 24, "--image-size", 64, "--model", "tc-vit-xs",
              "--workers", 1, "--threads", 1, "--batch-size", 8, "--model-batches", 1, "--decode-pairs", 24,
              "--train-batch", 8, "--steps", 3, "--skip", 1, "--bare-steps", 2, "--draft-pairs", 8,
              "--baseline", BENCH.parent)  # this checkout as its own baseline: the S0 row
    for row in ("D decode limit", "M model limit", "S clip stage", "S' clip stage after its first shard", "L training loader",
                "T `train run`", "B bare training step", "S0 clip stage", "S/min(D,M)", "T/min(L,B)", "S/shared(D,M)",
                "T/shared(L,B)", "S/S0"):
        assert f"| {row}" in out
    result = json.loads((tmp_path / "bench_speed.json").read_text())
    best = result["best"]
    assert all(positive(best[k]["pairs_per_s"]) for k in "DMS") and all(positive(best[k]["samples_per_s"]) for k in "LTB")
    assert all(positive(best[k]["cpu_s_per_1000"]) for k in "DMSLBT") and positive(best["start_up_cpu_s"]["S"])
    assert set(best["cpu_s_per_1000_without_start_up"]) == {"S", "T"}
    assert best["S"]["scored"] == best["S"]["pairs"] == 48 and best["S0"]["score_mean"] == best["S"]["score_mean"]
    run_losses = [row["loss"] for row in benchlib_metrics(tmp_path / "run")]
    assert best["B"]["losses"] == pytest.approx(run_losses[:2], abs=1e-5)  # the bare step is the run's step, on its batches
    draft = result["draft"]
    assert draft["draft_to"] == 32 and draft["stored_side"] == 64 and 0.9 < draft["image_cosine_min"] <= 1.0001


@pytest.mark.slow
def test_bench_stages_times_a_baseline_and_the_clip_ceiling(tmp_path):
    out = run("bench_stages.py", "--n", 40, "--work", tmp_path, "--baseline-rows", 20, "--workers", 1, "--batch-size", 16,
              "--torch-threads", 1, "--model", "tc-rn-xs",
              "--only", "text_dedup baseline: per-caption MinHash.update loop;clip ceiling: bare model forward on pre-decoded tensors")
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r[1].strip() for r in rows] == ["text_dedup baseline: per-caption MinHash.update loop",
                                            "clip ceiling: bare model forward on pre-decoded tensors"]
    assert [int(r[2]) for r in rows] == [20, 40] and all(float(r[4].replace(",", "")) > 0 for r in rows)


def test_bench_scale_times_a_stage_on_a_datacomp_style_pool(tmp_path):
    out = run("bench_scale.py", "--sizes", 2000, "--stages", "basic", "--work", tmp_path, "--workers", 1)
    assert "| basic | 2,000 |" in out and "whole score (basic) at 2,000 rows" in out


def test_bench_filter_times_curate_filter_on_a_metadata_pool(tmp_path):
    out = run("bench_filter.py", "--pool", tmp_path / "pool", "--rows", 3000, "--shard-rows", 1000, "--out", tmp_path / "subsets")
    assert "pool " in out and "3000 rows, 3 shards" in out
    for label in ("fraction 0.3 (L/14)", "basic + fraction 0.3 (L/14)", "min-score 0.28 (B/32)"):
        assert f"{label}: wall" in out
    manifest = json.loads((tmp_path / "subsets" / "fraction_0_3_L_14_" / "manifest.json").read_text())
    assert 900 <= manifest["n"] < 1000  # the top 30 % of 3,000 rows, ties at the threshold kept


def test_bench_pool_checks_times_opening_and_fingerprinting(tmp_path):
    out = run("bench_pool_checks.py", "--rows", 2000, "--shards", 4)
    assert out.startswith("2,000 rows in 4 shards: open without checks") and "fingerprint" in out


def test_bench_vocab_times_both_vocabularies():
    out = run("bench_vocab.py", "--steps", 2, "--rounds", 1, "--batch", 8, "--threads", 1)
    lines = out.strip().splitlines()
    assert [line.split(":")[0].strip() for line in lines] == ["vocab 49,408", "vocab  1,024".strip()]


@pytest.mark.slow
def test_bench_gpu_runs_every_part_on_the_cpu(tmp_path):
    run("bench_gpu.py", "--out", tmp_path, "--device", "cpu", "--pool-size", 32, "--steps", 3, "--batch-size", 8, "--skip", 1,
        "--workers", 1, "--models", "tc-rn-xs")
    result = json.loads((tmp_path / "bench_gpu.json").read_text())
    parts = ("train_run/tc-rn-xs", "bare_step/tc-rn-xs", "torchrun/tc-rn-xs", "clip_stage/tc-rn-xs")
    assert all("error" not in result[p] for p in parts), {p: result[p].get("error") for p in parts}
    assert result["torchrun/tc-rn-xs"]["first_loss"] == result["train_run/tc-rn-xs"]["first_loss"]
    assert result["clip_stage/tc-rn-xs"]["scored"] == 32 - 0 or result["clip_stage/tc-rn-xs"]["pairs"] == 32


@pytest.mark.slow
def test_bench_train_compares_the_run_with_the_bare_step_and_flip(tmp_path):
    run("bench_train.py", "--out", tmp_path, "--pool-size", 64, "--steps", 4, "--vit-steps", 3, "--batch-size", 16, "--skip", 1,
        "--repeats", 1)
    result = json.loads((tmp_path / "bench_train.json").read_text())
    for model in ("tc-rn-tiny", "tc-vit-tiny"):
        assert positive(result[model]["bare_step"]) and positive(result[model]["train_run"])
    assert positive(result["flip"]["speedup_image_tower"])


@pytest.mark.slow
def test_bench_methods_trains_the_grid_and_tables_it(tmp_path):
    out = run("bench_methods.py", "--out", tmp_path, "--pool-size", 64, "--eval-n", 16, "--samples-seen", 32, "--batch-size", 16,
              "--seeds", 0, "--aug-off", "--lanes", 2)
    assert "| tc-rn-tiny | clip | on | 1 |" in out and "| tc-vit-xs | defilip (tw) | on | 1 |" in out
    assert "| tc-rn-tiny | declip | off | 1 |" in out and "| tc-rn-tiny | clip | off |" not in out  # CLIP has no augmentation
    assert "not run yet" not in out and "| tc-rn-tiny | filip" not in out  # FILIP needs a ViT tower


@pytest.mark.slow
def test_curation_quality_reports_on_a_scored_synthetic_pool(tmp_path):
    sys.path.insert(0, str(BENCH))
    import benchlib

    pool = benchlib.synth_pool(tmp_path / "pool", 200, 32, 1, profile="web", eval_n=16)
    checkpoint = benchlib.save_random_checkpoint(tmp_path / "run", "tc-rn-xs")
    options = {**benchlib.stage_options("clip", model="tc-rn-xs", pretrained=checkpoint, loader_workers=0),
               **benchlib.stage_options("cluster", k=4, reference=pool / "eval")}
    benchlib.run_command(benchlib.command("curate", "score", pool, stages="basic,lang,text_dedup,clip,image_dedup,cluster",
                                          workers=1, **options))
    out = run("curation_quality.py", "--pool", pool, "--filter-run", tmp_path / "run")
    assert out.startswith("## Curation quality on the synthetic pool") and "clip_score" in out


def test_bench_demo_sums_the_memory_of_a_process_and_its_children(tmp_path):
    """Two children holding ~60 MB each: the summed peak sees both, the largest single process one."""
    child = "import time; x = bytearray(60_000_000); x[::4096] = b'1' * len(x[::4096]); time.sleep(3)"
    parent = f"import subprocess, sys; ps = [subprocess.Popen([sys.executable, '-c', {child!r}]) for _ in range(2)]; [p.wait() for p in ps]"
    script = tmp_path / "two.py"
    script.write_text(parent)
    out = json.loads(run("bench_demo.py", "--out", tmp_path, "--interval", 0.2, "--command", f"{sys.executable} {script}"))
    assert out["peak_rss_total_mb"] >= 2 * 55 and 55 <= out["peak_rss_process_mb"] < out["peak_rss_total_mb"]
    assert 2 * 55 <= out["peak_pss_total_mb"] <= out["peak_rss_total_mb"]
    assert out["wall_s"] >= 3 and positive(out["machine"]["cpu_cores"])
    children = [p for p in out["at_peak"] if p["command"].startswith("-c import time")]
    assert len(children) == 2 and all(p["pss_mb"] >= 55 for p in children)  # the peak names who holds it
