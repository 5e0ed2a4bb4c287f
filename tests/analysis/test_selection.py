"""The headline compares tiers at one size over the same seeds, and a tier's best size is chosen without the runs
it reports (the winner's curse of picking the best of one-seed points and reporting that same point)."""

import polars as pl
import pytest
from tierclip.analysis.collect import collect
from tierclip.analysis.selection import best_sizes, headlines
from tierclip.analysis.study import StudyConfig, build_study

from tests.analysis.fake_runs import write_run

BUDGET = 6016


def demo_like(root, top30_at_350=0.60, extra=()):
    """The default demo's shape: both tiers at 1,400 with seeds 0 and 1 (the headline), and a data-size axis at 350,
    700 and 2,800 with seed 0 only. top30's one run at 350 is lucky (noise): picking the best size on these very
    runs would crown it."""
    values = {("top30", 1400, 0): 0.44, ("top30", 1400, 1): 0.46, ("top100", 1400, 0): 0.40, ("top100", 1400, 1): 0.41,
              ("top30", 350, 0): top30_at_350, ("top30", 700, 0): 0.43, ("top30", 2800, 0): 0.47,
              ("top100", 350, 0): 0.33, ("top100", 700, 0): 0.37, ("top100", 2800, 0): 0.42, **dict(extra)}
    for (tier, size, seed), value in values.items():
        write_run(root, tier=tier, method="clip", subset_size=size, samples_seen=BUDGET, seed=seed, shape_top1=value,
                  manifest={"fraction": 1.0 if tier == "top100" else 0.3})
    table, problems = collect([root])
    return table


def study_of(table, **cfg):
    return build_study(table, [], StudyConfig(task="shape", metric="top1", n_boot=5, **cfg))


def test_headline_uses_one_size_and_the_seeds_every_tier_has(tmp_path):
    study = study_of(demo_like(tmp_path))
    (headline,) = study.headlines
    assert (headline.subset_size, headline.seeds, headline.tiers) == (1400, (0, 1), ("top100", "top30"))
    assert study.reference_tier == "top100"  # fraction 1.0: every candidate
    means = {r["tier"]: r for r in study.headline_means.iter_rows(named=True)}
    assert {tier: r["n"] for tier, r in means.items()} == {"top30": 2, "top100": 2}
    assert means["top30"]["mean"] == pytest.approx(0.45) and means["top100"]["mean"] == pytest.approx(0.405)
    line = study.conclusions[0]
    assert "every tier at subset size 1,400, seeds 0, 1" in line and "top30 0.450 vs top100 0.405: +4.5 points" in line
    assert "single seed" not in line and "95 % interval" in line


def test_best_size_is_not_the_lucky_one_seed_point(tmp_path):
    study = study_of(demo_like(tmp_path))
    best = {r["tier"]: r for r in study.best.iter_rows(named=True)}
    # seed 0 picks 350 for top30 (0.60): it has no other seed, so the tier is reported at the headline size
    assert best["top30"]["subset_size"] == 1400 and best["top30"]["n"] == 2
    assert best["top30"]["mean"] == pytest.approx(0.45)  # not 0.60
    assert best["top30"]["rule"].startswith("headline size: the size chosen on seed 0 (350) has no other seed")
    assert "0.600" not in " ".join(study.conclusions)


def test_best_size_reported_on_held_out_seeds(tmp_path):
    # top30 at 700 gets seeds 1 and 2: seed 0 picks 700 (0.70), the report gives the mean of seeds 1 and 2 only
    extra = {("top30", 700, 0): 0.70, ("top30", 700, 1): 0.48, ("top30", 700, 2): 0.50}
    table = demo_like(tmp_path, top30_at_350=0.30, extra=extra)
    study = study_of(table)
    top30 = study.best.filter(pl.col("tier") == "top30").row(0, named=True)
    assert (top30["subset_size"], top30["n"], top30["seeds"]) == (700, 2, "seeds 1, 2")
    assert top30["mean"] == pytest.approx(0.49) and top30["ci_lo"] is not None
    assert "reported on the other 2 seed(s)" in top30["rule"]


def test_a_tier_with_one_size_reports_every_seed(tmp_path):
    for seed, value in ((0, 0.5), (1, 0.6), (2, 0.7)):
        write_run(tmp_path, tier="top30", method="clip", subset_size=1000, samples_seen=BUDGET, seed=seed, shape_top1=value)
    for seed in (0, 1):
        write_run(tmp_path, tier="full", method="clip", subset_size=1000, samples_seen=BUDGET, seed=seed, shape_top1=0.4)
    table, _ = collect([tmp_path])
    study = study_of(table)
    best = {r["tier"]: r for r in study.best.iter_rows(named=True)}
    assert best["top30"]["n"] == 3 and best["top30"]["rule"] == "only size trained: every seed"
    # the headline: the seeds both tiers have (0 and 1): equal seed counts, top30's seed 2 left out
    assert study.headlines[0].seeds == (0, 1)
    means = {r["tier"]: r["n"] for r in study.headline_means.iter_rows(named=True)}
    assert means == {"top30": 2, "full": 2}


def test_declared_headline_size_and_a_size_missing_at_a_budget(tmp_path):
    table = demo_like(tmp_path)
    points = study_of(table).points
    (declared,) = headlines(points, declared=700)
    assert (declared.subset_size, declared.seeds, declared.declared) == (700, (0,), True)
    (fallback,) = headlines(points, declared=123)
    assert fallback.subset_size == 1400 and not fallback.declared and "declared headline size 123" in fallback.note
    study = study_of(table, headline_size=700)
    assert "every tier at subset size 700 (declared), seed 0" in study.conclusions[0]
    assert "one seed each: no interval" in study.conclusions[0]


def test_no_tier_can_be_reported_without_a_held_out_or_headline_run(tmp_path):
    for tier in ("a", "b"):
        for size, value in ((100, 0.3), (200, 0.5)):
            write_run(tmp_path, tier=tier, method="clip", subset_size=size, samples_seen=BUDGET, seed=0, shape_top1=value,
                      name=f"{tier}-{size}")
    write_run(tmp_path, tier="c", method="clip", subset_size=300, samples_seen=BUDGET, seed=0, shape_top1=0.2, name="c")
    table, _ = collect([tmp_path])
    points = study_of(table).points
    found = headlines(points.filter(pl.col("tier") != "c"), declared=100)
    best, notes = best_sizes(points, found)
    # a and b: seed 0 picks 200, no other seed there: reported at the (declared) headline size 100 instead
    assert set(best["subset_size"].to_list()) == {100, 300} and not notes
    best, notes = best_sizes(points.filter(pl.col("tier") != "c"), [])
    assert best.is_empty() and len(notes) == 2 and "no unbiased best size is reported" in notes[0]
