"""Findings rows: the paper's effect, the seeds an interval narrower than it would take (from the measured spread),
and the augmentation row (each augmented method with and without its augmentation at equal samples seen)."""

import polars as pl
import pytest
from tierclip.analysis import findings
from tierclip.analysis.augmentation import augmentation_of
from tierclip.analysis.claims import MARGIN, PAPER_EFFECTS
from tierclip.analysis.collect import collect
from tierclip.analysis.stats import combination, expected_width, pooled_sd, seeds_needed
from tierclip.analysis.study import StudyConfig, build_study

from tests.analysis.fake_runs import write_run


def test_seeds_needed_by_hand():
    # two groups, sd 0.01 each: width(n) = 2 t(2(n-1)) sqrt(2e-4 / n): n=5 -> 0.0292, n=6 -> 0.0257 < 0.026
    assert expected_width([0.01, 0.01], 5) == pytest.approx(0.02917, abs=1e-4)
    assert expected_width([0.01, 0.01], 6) == pytest.approx(0.02573, abs=1e-4)
    assert seeds_needed([0.01, 0.01], 0.026) == 6
    assert seeds_needed([0.01, 0.01, 0.01, 0.01], 0.026) > 6  # an interaction sums four variances
    assert seeds_needed([0.0, 0.0], 0.026) is None  # no spread: nothing to scale
    assert seeds_needed([0.5, 0.5], 1e-4) is None  # more than the cap
    assert pooled_sd([0.1, None, 0.2], [2, 1, 3]) == pytest.approx(((0.01 + 2 * 0.04) / 3) ** 0.5)


def evidence(retrieval=False, pooled=None):
    empty = pl.DataFrame()
    return findings.Evidence(empty, "full", set(), empty, empty, None, None, None, retrieval=retrieval, pooled_sd=pooled)


def test_seeds_text_enough_more_and_borrowed_spread():
    quality = PAPER_EFFECTS["quality"]
    narrow = combination([(0.60, 0.002, 3, 1.0), (0.55, 0.002, 3, -1.0)])
    assert findings.seeds_text(narrow, quality, evidence()).startswith("enough: the interval (0.009 wide) is narrower than "
                                                                       "the paper's effect (0.026)")
    wide = combination([(0.60, 0.01, 2, 1.0), (0.55, 0.01, 2, -1.0)])
    text = findings.seeds_text(wide, quality, evidence())
    assert text == ("about 6 seeds per group for an interval narrower than the paper's effect (0.026), from the measured "
                    "seed sd 0.01, 0.01; now 2")
    # retrieval: DataComp's retrieval effect is +0.005
    assert "the paper's retrieval effect (0.005)" in findings.seeds_text(wide, quality, evidence(retrieval=True))
    # a paper without a number: the margin
    assert f"the {MARGIN} margin" in findings.seeds_text(wide, PAPER_EFFECTS["aug_half"], evidence())
    one_seed = combination([(0.60, None, 1, 1.0), (0.55, 0.01, 2, -1.0)])
    assert "with the seed sd pooled over the study (0.01)" in findings.seeds_text(one_seed, quality, evidence(pooled=0.01))
    assert findings.seeds_text(one_seed, quality, evidence()).startswith("unknown: a group has one seed")


@pytest.mark.parametrize("config, expected", [
    ({"method": "clip", "run": {"method_cfg": {"aug": {"jitter": 0.0}}}}, "none"),
    ({"method": "slip", "run": {"method_cfg": {"aug": {}}}}, "default"),
    ({"method": "slip", "run": {"method_cfg": {"aug": {"blur_p": 0.0}}}}, "custom: blur_p=0"),
    ({"method": "slip", "run": {"method_cfg": {"aug": {"ssl_crop_scale": [1.0, 1.0], "slip_crop_scale": [1.0, 1.0],
                                                       "jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": 0.0, "flip_p": 0.0}}}}, "off"),
    ({"method": "slip", "run": {"method_cfg": {"aug": {"ssl_crop_scale": [1.0, 1.0], "jitter_p": 0.0, "grayscale_p": 0.0,
                                                       "blur_p": 0.0, "flip_p": 0.0}}}},  # its CLIP branch still crops
     "custom: blur_p=0, flip_p=0, grayscale_p=0, jitter_p=0, ssl_crop_scale=1,1"),
    ({"method": "clip-aug", "run": {"method_cfg": {"aug": {"crop_scale": "1,1", "jitter": 0, "grayscale_p": 0,
                                                           "blur_p": 0}}}}, "off"),  # no flip in CLIP+Aug's view
    ({"method": "declip", "run": {"method_cfg": {"aug": {"enabled": False}}}}, "off"),
    ({"method": "declip", "run": {"method_cfg": {"declip": {"aug": "off"}}}}, "off"),  # nested deeper, a switch value
    ({"method": "defilip", "run": {"method_cfg": {"augment": False, "aug": {}}}}, "off"),
    ({"method": "declip", "run": {"method_cfg": {"aug": {"moco_crop_scale": [0.5, 1.0]}}}}, "custom: moco_crop_scale=0.5,1"),
    ({}, None),
])
def test_augmentation_of_reads_config_json_defensively(config, expected):
    assert augmentation_of(config) == expected


OFF = {"ssl_crop_scale": [1.0, 1.0], "slip_crop_scale": [1.0, 1.0], "jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": 0.0, "flip_p": 0.0}


def test_augmentation_row_with_and_without(tmp_path):
    for seed, (on, off) in enumerate(((0.50, 0.60), (0.52, 0.62), (0.51, 0.61))):
        for method, value in (("clip", 0.45), ("slip", on)):
            write_run(tmp_path, tier="top30", method=method, subset_size=1000, samples_seen=8000, seed=seed, shape_top1=value)
        write_run(tmp_path, tier="top30", method="slip", subset_size=1000, samples_seen=8000, seed=seed, shape_top1=off,
                  aug=OFF, name=f"slip-off-{seed}")
    table, problems = collect([tmp_path])
    assert set(table["augmentation"].to_list()) == {"none", "default", "off"}
    study = build_study(table, problems, StudyConfig(task="shape", metric="top1", n_boot=5))
    assert set(study.points["method"].to_list()) == {"clip", "slip", "slip (aug off)"}  # the variant is its own method
    (row,) = [f for f in study.findings if f.key == "augmentation"]
    assert row.measured.startswith("slip on tiny-rn, top30 at 1,000, 8,000 seen: with its augmentation 0.510 − without 0.610")
    assert row.estimate.value == pytest.approx(-0.10) and row.verdict == "contradicted"
    assert "Scaling (Down) CLIP Fig. 1(b)" in row.paper_effect  # a figure, no number: the 0.02 margin is the target
    assert row.seeds.startswith("about 9 seeds per group for an interval narrower than the 0.02 margin")
    # the supervision and quality rows ignore the variant: it is not the method the papers ran
    assert all("aug off" not in f.measured for f in study.findings if f.key != "augmentation")


def test_augmentation_row_not_tested_without_pairs(tmp_path):
    write_run(tmp_path, tier="top30", method="slip", subset_size=1000, samples_seen=8000, seed=0, shape_top1=0.5)
    table, problems = collect([tmp_path])
    study = build_study(table, problems, StudyConfig(task="shape", metric="top1", n_boot=5))
    (row,) = [f for f in study.findings if f.key == "augmentation"]
    assert row.verdict == "not tested by these runs" and "with and without its augmentation" in row.why


def test_supervision_rows_carry_each_methods_paper_effect():
    assert PAPER_EFFECTS["supervision:slip"].zeroshot == pytest.approx(0.102)
    assert PAPER_EFFECTS["supervision:declip"].zeroshot == pytest.approx(0.032)
    assert PAPER_EFFECTS["supervision:filip"].zeroshot == pytest.approx(0.226)
    # the arithmetic behind them (CLIP-benchmark: ViT-B/32 CLIP 32.8, ResNet50 CLIP 37.2)
    assert (34.3 - 32.8) - (28.5 - 37.2) == pytest.approx(10.2) and (43.2 - 32.8) - (44.4 - 37.2) == pytest.approx(3.2)
    assert (39.5 - 32.8) - (21.3 - 37.2) == pytest.approx(22.6)


def test_random_control_is_never_the_reference_and_gets_its_own_row(tmp_path):
    values = {"top30": (0.50, 0.52, 0.51), "random_top30": (0.40, 0.41, 0.42), "top100": (0.44, 0.45, 0.46)}
    manifests = {"top30": {"fraction": 0.3, "tier_kind": "nested"}, "random_top30": {"tier_kind": "random"},
                 "top100": {"fraction": 1.0, "tier_kind": "nested"}}
    for tier, seeds in values.items():
        for seed, value in enumerate(seeds):
            write_run(tmp_path, tier=tier, method="clip", subset_size=1000, samples_seen=8000, seed=seed, shape_top1=value,
                      manifest=manifests[tier])
    table, problems = collect([tmp_path])
    study = build_study(table, problems, StudyConfig(task="shape", metric="top1", n_boot=5))
    assert study.reference_tier == "top100"  # by its fraction, not by name order among equal sizes
    rows = {f.key: f for f in study.findings if f.key in ("quality", "quality_random")}
    assert rows["quality"].measured.endswith("top30 0.510 − top100 0.450") and rows["quality"].verdict == "reproduced"
    assert rows["quality_random"].measured.endswith("top30 0.510 − random_top30 0.410")
    assert rows["quality_random"].estimate.value == pytest.approx(0.10) and rows["quality_random"].verdict == "reproduced"
    assert [f.key for f in study.findings].count("quality") == 1  # the control is not a filtered tier
