"""curate filter: each clause, DataComp's top-k and basic rules, drop counts, and every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from tierclip.curate.cli import app
from tierclip.curate.errors import UserError
from tierclip.curate.selection.config import FilterConfig
from tierclip.curate.selection.query import filter_pool, write_filtered
from tierclip.curate.subset import read_subset
from typer.testing import CliRunner

from tests.curate.selection_pools import add_sidecar, all_uids, datacomp_pool, meta_pool


def _kept(pool, **options) -> set[str]:
    return set(filter_pool(pool, FilterConfig(**options))[1].uids.to_list())


def datacomp_top_k(scores: np.ndarray, fraction: float) -> tuple[np.ndarray, float]:
    """DataComp baselines/utils.py get_threshold + load_uids_with_threshold_helper, verbatim in numpy."""
    n = int(len(scores) * fraction)
    threshold = -np.sort(-scores)[n]
    return scores >= threshold, threshold


@pytest.fixture
def scored_pool(tmp_path):
    """8 rows: two failed downloads, a clip sidecar with a null score, lang, dedup and cluster sidecars."""
    rows = [{"status": "failed_to_download", "error": "404"} if i in (1, 6) else {} for i in range(8)]
    pool = meta_pool(tmp_path / "pool", rows)
    add_sidecar(pool, "clip", {"clip_score": [0.9, 0.8, 0.7, None, 0.5, 0.4, 0.3, 0.2]}, {"clip_score": pl.Float32})
    add_sidecar(pool, "lang", {"lang": ["en", "en", "de", "en", "en", "en", "fr", "en"],
                               "lang_prob": [0.9, 0.9, 0.9, 0.9, 0.4, 0.9, 0.9, 0.9]})
    add_sidecar(pool, "text_dedup", {"dup_group": list(range(8)), "dup_keep": [True, True, True, True, True, False, True, True]})
    add_sidecar(pool, "image_dedup", {"image_dup_group": list(range(8)), "image_sha1": ["x"] * 8,
                                      "image_dup_keep": [True, True, True, True, True, True, True, False]})
    add_sidecar(pool, "cluster", {"cluster_id": [0] * 8, "cluster_dist": [0.1] * 8,
                                  "semdedup_keep": [False, True, True, True, True, True, True, True]})
    return pool, all_uids(pool)


def test_min_score_keeps_successful_rows_at_or_above_the_score(scored_pool):
    pool, uids = scored_pool
    assert _kept(pool, min_score=0.5) == {uids[0], uids[2], uids[4]}  # 0.8 failed, null score never passes


def test_each_clause_and_drop_counts_applied_in_order(scored_pool, tmp_path):
    pool, uids = scored_pool
    config = FilterConfig(lang="en", min_lang_prob=0.5, dedup=("text", "image"), semdedup=True, min_score=0.1)
    selection, subset = write_filtered(pool, config, tmp_path / "sub")
    # row: 0 semdedup, 1 status, 2 lang de, 3 null score, 4 lang_prob 0.4, 5 dup text, 6 status, 7 dup image
    assert selection.drop_counts == {"status": 2, "lang": 2, "dedup_text": 1, "dedup_image": 1, "semdedup": 1, "min_score": 1}
    assert subset.n == 0 and sum(selection.drop_counts.values()) + subset.n == 8
    manifest = json.loads((tmp_path / "sub" / "manifest.json").read_text())
    assert manifest["drop_counts"] == selection.drop_counts and manifest["pool"]["name"] == "metapool"
    assert manifest["clause_order"] == ["status", "lang", "dedup_text", "dedup_image", "semdedup", "min_score"]
    assert 'lang == "en" and lang_prob >= 0.5' in manifest["rule"] and manifest["thresholds"]["min_score"] == 0.1


def test_lang_and_dedup_keep_the_right_rows(scored_pool):
    pool, uids = scored_pool
    assert _kept(pool, lang="en") == {uids[i] for i in (0, 3, 4, 5, 7)}
    assert _kept(pool, lang="en", min_lang_prob=0.5) == {uids[i] for i in (0, 3, 5, 7)}
    assert _kept(pool, dedup=("text",)) == {uids[i] for i in (0, 2, 3, 4, 7)}
    assert _kept(pool, dedup=("text", "image"), semdedup=True) == {uids[i] for i in (2, 3, 4)}


def test_where_uses_meta_and_sidecar_columns(scored_pool):
    pool, uids = scored_pool
    assert _kept(pool, where="lang_prob < 0.5 OR clip_score >= 0.85") == {uids[0], uids[4]}
    assert _kept(pool, where="caption LIKE '%dog%' AND width >= 256") == {uids[i] for i in (0, 2, 3, 4, 5, 7)}


def test_fraction_equals_datacomp_top_k_on_datacomp_scores(tmp_path):
    pool, l14 = datacomp_pool(tmp_path / "dc", n=1000)
    expected_mask, expected_threshold = datacomp_top_k(l14, 0.3)
    plan, selection = filter_pool(pool, FilterConfig(score="clip_l14_similarity_score", fraction=0.3))
    uids = np.array(all_uids(pool))
    assert set(selection.uids) == set(uids[expected_mask])
    assert selection.thresholds["fraction"] == pytest.approx(float(expected_threshold), abs=0)
    assert len(selection.uids) > int(1000 * 0.3) + 1  # scores rounded to 0.01: ties at the threshold are all kept
    assert selection.drop_counts == {"status": 0, "fraction": 1000 - len(selection.uids)}


def test_fraction_of_pool_differs_from_fraction_of_remaining(tmp_path):
    pool, l14 = datacomp_pool(tmp_path / "dc", n=300)
    where = "clip_b32_similarity_score >= 0.3"
    remaining = filter_pool(pool, FilterConfig(score="clip_l14_similarity_score", fraction=0.5, where=where))[1]
    whole = filter_pool(pool, FilterConfig(score="clip_l14_similarity_score", fraction=0.5, where=where,
                                           fraction_of="pool"))[1]
    b32 = pool.scan_scores("datacomp").collect()["clip_b32_similarity_score"].to_numpy()
    pool_mask, _ = datacomp_top_k(l14, 0.5)
    remaining_mask, _ = datacomp_top_k(l14[b32 >= 0.3], 0.5)
    uids = np.array(all_uids(pool))
    assert set(whole.uids) == set(uids[pool_mask & (b32 >= 0.3)])
    assert set(remaining.uids) == set(uids[b32 >= 0.3][remaining_mask])


def test_fraction_one_keeps_every_scored_row(scored_pool):
    pool, uids = scored_pool
    assert _kept(pool, fraction=1.0) == {uids[i] for i in (0, 2, 4, 5, 7)}


# Hand-made rows for DataComp's basic filter, with the boundary of each condition.
BASIC_ROWS = [
    ("a red dog runs", 200, 600, "en"),      # keep: short side 200, aspect exactly 3
    ("a red dog", 300, 300, "en"),           # keep: exactly 3 words, 9 chars
    ("red dog", 300, 300, "en"),             # 2 words
    ("a b c", 300, 300, "en"),               # 5 characters
    ("a b cd", 300, 300, "en"),              # keep: 6 characters, 3 words
    ("a red dog runs", 199, 400, "en"),      # short side 199
    ("a red dog runs", 200, 601, "en"),      # aspect 3.005
    ("ein roter hund", 300, 300, "de"),      # not English
    ("  a\tred\ndog  ", 300, 300, "en"),     # keep: any whitespace separates words, padding counts as characters
    ("a\x1cred\x1fdog", 300, 300, "en"),     # keep: U+001C..U+001F are whitespace for str.split()
    ("a\u00a0red\u3000dog", 300, 300, "en"),  # keep: Unicode spaces split words too
    ("éèà ü ö", 300, 300, "en"),             # keep: 7 code points (more bytes), 3 words
    ("", 300, 300, "en"),                    # empty
    (None, 300, 300, "en"),                  # no caption
    ("a red dog runs", None, 300, "en"),     # unknown size
    ("a red dog runs", 300, 300, None),      # no language
]


def datacomp_basic(text, width, height, lang) -> bool:
    """DataComp's load_uids_with_basic_filter_helper for one row (None where DataComp would have NaN)."""
    if text is None or width is None or height is None:
        return False
    caption_ok = len(text.split()) > 2 and len(text) > 5
    image_ok = min(width, height) >= 200 and max(width, height) / min(width, height) <= 3.0
    return lang == "en" and caption_ok and image_ok


def test_basic_equals_datacomp_definition_on_hand_made_rows(tmp_path):
    rows = [{"caption": c, "width": w, "height": h} for c, w, h, _ in BASIC_ROWS]
    pool = meta_pool(tmp_path / "pool", rows, n_shards=2)
    add_sidecar(pool, "lang", {"lang": [r[3] for r in BASIC_ROWS], "lang_prob": [0.9] * len(BASIC_ROWS),
                               "lang_datacomp": [r[3] for r in BASIC_ROWS]})
    uids = all_uids(pool)
    expected = {uid for uid, row in zip(uids, BASIC_ROWS, strict=True) if datacomp_basic(*row)}
    assert len(expected) == 7
    assert _kept(pool, basic=True) == expected


def test_gt_shares_are_recorded_for_synthetic_pools(tmp_path):
    rows = [{"gt_misaligned": i % 2 == 0, "gt_clean": i % 2 == 1, "gt_lang": "en"} for i in range(10)]
    pool = meta_pool(tmp_path / "pool", rows)
    add_sidecar(pool, "clip", {"clip_score": [0.1 if i % 2 == 0 else 0.9 for i in range(10)]})
    selection = filter_pool(pool, FilterConfig(min_score=0.05, where="clip_score > 0.5 OR gt_misaligned"))[1]
    assert selection.gt_shares == {"gt_misaligned": 0.5, "gt_clean": 0.5}
    selection = filter_pool(pool, FilterConfig(fraction=0.4))[1]  # DataComp: the 5th best score is the threshold
    assert selection.gt_shares == {"gt_misaligned": 0.0, "gt_clean": 1.0}


def test_missing_sidecar_names_the_stage_and_the_command(scored_pool, tmp_path):
    pool = meta_pool(tmp_path / "bare", [{} for _ in range(4)])
    with pytest.raises(UserError, match=r"text_dedup.*curate score .*--stages text_dedup.*--dedup text"):
        filter_pool(pool, FilterConfig(dedup=("text",)))
    with pytest.raises(UserError, match=r"stage 'clip'.*curate score .*--stages clip"):
        filter_pool(pool, FilterConfig(min_score=0.3))
    with pytest.raises(UserError, match=r"datacomp.*curate ingest datacomp"):
        filter_pool(pool, FilterConfig(score="clip_l14_similarity_score", fraction=0.3))


def test_incomplete_sidecar_is_a_clear_error(scored_pool):
    pool, _ = scored_pool
    pool.done_path("clip", 1).unlink()
    with pytest.raises(UserError, match=r"stage 'clip' is incomplete .*--stages clip"):
        filter_pool(pool, FilterConfig(min_score=0.3))


def test_unknown_score_column_and_bad_where_are_clear_errors(scored_pool):
    pool, _ = scored_pool
    with pytest.raises(UserError, match=r"unknown column 'clip_scor'.*numeric columns here: .*clip_score"):
        filter_pool(pool, FilterConfig(score="clip_scor", min_score=0.1))
    with pytest.raises(UserError, match=r"score column 'lang' is String, not numeric"):
        filter_pool(pool, FilterConfig(score="lang", fraction=0.5))
    with pytest.raises(UserError, match=r"--where: cannot parse"):
        filter_pool(pool, FilterConfig(where="width >="))
    with pytest.raises(UserError, match=r"unknown column 'widht'.*--where"):
        filter_pool(pool, FilterConfig(where="widht > 3"))
    with pytest.raises(UserError, match=r"--where: .* not true/false"):
        filter_pool(pool, FilterConfig(where="width + 1"))
    with pytest.raises(UserError, match=r"unsupported function '__import__'"):
        filter_pool(pool, FilterConfig(where="__import__('os')"))
    with pytest.raises(UserError, match=r"--fraction 1.5: must be a number in \(0, 1\]"):
        FilterConfig(fraction=1.5)
    with pytest.raises(UserError, match=r"--dedup txt: must be one of text, image"):
        FilterConfig(dedup=("txt",))


def test_misaligned_sidecar_is_detected(scored_pool):
    pool, _ = scored_pool
    frame = pool.read_scores("clip", 0)
    pool.write_scores("clip", 0, frame.reverse())
    with pytest.raises(UserError, match="not aligned with meta"):
        filter_pool(pool, FilterConfig(min_score=0.0))


def test_cli_filter_writes_subset_and_prints_counts(tmp_path):
    pool, l14 = datacomp_pool(tmp_path / "dc", n=200)
    result = CliRunner().invoke(app, ["filter", str(pool.root), "--out", str(tmp_path / "top30"),
                                      "--score", "clip_l14_similarity_score", "--fraction", "0.3"])
    assert result.exit_code == 0, result.output
    subset = read_subset(tmp_path / "top30")
    assert subset.n == int(datacomp_top_k(l14, 0.3)[0].sum())
    assert f"kept {subset.n}" in " ".join(result.output.split()) and "threshold fraction" in result.output
    assert subset.manifest["fraction"] == 0.3 and subset.manifest["score_column"] == "clip_l14_similarity_score"


def test_console_prints_one_line_error_for_missing_sidecar(tmp_path):
    pool = meta_pool(tmp_path / "bare", [{} for _ in range(4)])
    done = subprocess.run([sys.executable, "-m", "tierclip.curate.cli", "filter", str(pool.root), "--out", str(tmp_path / "s"),
                           "--dedup", "image"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "image_dedup" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "s").exists()
