"""curate tiers: nested top-k tiers, disjoint bins, equal-size draws, random controls, tiers.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tierclip.curate.cli import app
from tierclip.curate.errors import UserError
from tierclip.curate.selection.config import FilterConfig
from tierclip.curate.selection.tiers import TierConfig, write_tier_set
from tierclip.curate.subset import read_subset
from typer.testing import CliRunner

from tests.curate.selection_pools import add_sidecar, all_uids, datacomp_pool, meta_pool


def _uids(path) -> set[str]:
    return set(read_subset(path).uids["uid"])


@pytest.fixture
def synthetic_like(tmp_path):
    """200 rows, every 4th misaligned (low score), 10 failed downloads, a clip sidecar."""
    rng = np.random.default_rng(1)
    rows = [{"gt_misaligned": i % 4 == 0, "gt_clean": i % 4 != 0,
             **({"status": "failed_to_download"} if i % 20 == 7 else {})} for i in range(200)]
    pool = meta_pool(tmp_path / "pool", rows, n_shards=3, name="synthlike")
    scores = [float(rng.uniform(0.0, 0.3) if i % 4 == 0 else rng.uniform(0.2, 0.9)) for i in range(200)]
    add_sidecar(pool, "clip", {"clip_score": scores})
    return pool, np.array(scores)


def test_nested_tiers_follow_datacomp_sizes_and_nest(synthetic_like, tmp_path):
    pool, scores = synthetic_like
    ok = np.array([i % 20 != 7 for i in range(200)])
    index = write_tier_set(pool, TierConfig(FilterConfig(), fractions=(0.5, 0.1, 0.3, 1.0)), tmp_path / "tiers")
    assert [t["name"] for t in index["tiers"]] == ["top10", "top30", "top50", "top100"]
    candidates = np.sort(scores[ok])[::-1]
    for entry, fraction in zip(index["tiers"], (0.1, 0.3, 0.5, 1.0), strict=True):
        threshold = candidates[int(len(candidates) * fraction)] if fraction < 1 else candidates.min()
        assert entry["n"] == int((candidates >= threshold).sum()) == int(len(candidates) * fraction) + (fraction < 1)
        assert entry["threshold"] == pytest.approx(threshold)
    sets = [_uids(tmp_path / "tiers" / t["name"]) for t in index["tiers"]]
    assert all(a < b for a, b in zip(sets, sets[1:], strict=False))
    manifest = read_subset(tmp_path / "tiers" / "top30").manifest
    assert manifest["tier"] == "top30" and manifest["tier_set"] == "tiers" and manifest["tier_rank"] == 1
    assert manifest["gt_shares"]["gt_misaligned"] < 0.25 < read_subset(tmp_path / "tiers" / "top100").manifest["gt_shares"]["gt_misaligned"]
    assert sum(manifest["drop_counts"].values()) + manifest["n"] == 200
    on_disk = json.loads((tmp_path / "tiers" / "tiers.json").read_text())
    assert on_disk["kind"] == "nested" and on_disk["tiers"] == index["tiers"]


def test_bins_are_disjoint_cover_candidates_and_are_ordered(synthetic_like, tmp_path):
    pool, scores = synthetic_like
    index = write_tier_set(pool, TierConfig(FilterConfig(), bins=4), tmp_path / "bins")
    sets = [_uids(tmp_path / "bins" / t["name"]) for t in index["tiers"]]
    success = {u for i, u in enumerate(all_uids(pool)) if i % 20 != 7}
    assert set().union(*sets) == success and sum(len(s) for s in sets) == len(success) == 190
    assert sorted(len(s) for s in sets) == [47, 47, 48, 48]
    mins = [t["min_score"] for t in index["tiers"]]
    maxs = [t["max_score"] for t in index["tiers"]]
    assert all(lo >= hi for lo, hi in zip(mins, maxs[1:], strict=False))  # bin1 is best


def test_equal_size_tiers_and_random_controls(synthetic_like, tmp_path):
    pool, _ = synthetic_like
    config = TierConfig(FilterConfig(), fractions=(0.3, 0.6), equal_size=50, random_control=True, seed=3)
    index = write_tier_set(pool, config, tmp_path / "eq")
    assert [t["n"] for t in index["tiers"]] == [50, 50] and [c["n"] for c in index["controls"]] == [50, 50]
    assert [c["name"] for c in index["controls"]] == ["random_top30", "random_top60"]
    full = write_tier_set(pool, TierConfig(FilterConfig(), fractions=(0.3,)), tmp_path / "full")
    assert _uids(tmp_path / "eq" / "top30") < _uids(tmp_path / "full" / "top30") and full["tiers"][0]["n"] == 58
    again = write_tier_set(pool, config, tmp_path / "eq2")
    assert again["tiers"] == index["tiers"] and _uids(tmp_path / "eq" / "random_top30") == _uids(tmp_path / "eq2" / "random_top30")
    control = read_subset(tmp_path / "eq" / "random_top30").manifest
    assert control["tier_kind"] == "random" and "gt_shares" in control
    with pytest.raises(UserError, match="tier top30 has only 58 rows"):
        write_tier_set(pool, TierConfig(FilterConfig(), fractions=(0.3,), equal_size=100), tmp_path / "big")


def test_base_clauses_apply_before_tiers(synthetic_like, tmp_path):
    pool, scores = synthetic_like
    index = write_tier_set(pool, TierConfig(FilterConfig(where="NOT gt_misaligned"), fractions=(1.0,)), tmp_path / "t")
    manifest = read_subset(tmp_path / "t" / "top100").manifest
    assert index["tiers"][0]["n"] == 140 and manifest["gt_shares"]["gt_misaligned"] == 0.0
    assert manifest["drop_counts"]["where"] == 50 and manifest["drop_counts"]["status"] == 10


def test_cli_tiers_on_datacomp_pool_and_bad_options(tmp_path):
    pool, _ = datacomp_pool(tmp_path / "dc", n=300)
    runner = CliRunner()
    result = runner.invoke(app, ["tiers", str(pool.root), "--score", "clip_b32_similarity_score", "--fractions", "0.1,0.5",
                                 "--random-control", "--out", str(tmp_path / "tiers")])
    assert result.exit_code == 0, result.output
    assert "top10:" in result.output and "random_top50:" in result.output
    assert (tmp_path / "tiers" / "random_top10" / "uids.parquet").is_file()
    bad = runner.invoke(app, ["tiers", str(pool.root), "--score", "clip_b32_similarity_score", "--fractions", "0.1,x",
                              "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--fractions x: must be a number in (0, 1]" in bad.output  # refused when parsed
    with pytest.raises(UserError, match="either --fractions or --bins"):
        TierConfig(FilterConfig(), fractions=(0.1,), bins=3)
    with pytest.raises(UserError, match="unknown column 'nope'"):
        write_tier_set(pool, TierConfig(FilterConfig(score="nope"), bins=2), tmp_path / "y")
