"""curate.quality.metrics: helpers on hand-made arrays, and the benchmark's docs-section replacement."""

import importlib.util
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.quality.metrics import pair_outcomes, parse_floats, precision_recall, roc_auc


def test_precision_recall_by_hand():
    rejected = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    defect = np.array([1, 1, 0, 1, 0, 0], dtype=bool)
    precision, recall = precision_recall(rejected, defect)
    assert precision == pytest.approx(2 / 3)  # 2 of the 3 rejects are defects
    assert recall == pytest.approx(2 / 3)  # 2 of the 3 defects are rejected
    assert precision_recall(np.zeros(3, bool), np.array([1, 0, 0], bool)) == (None, 0.0)
    assert precision_recall(np.array([1, 0, 0], bool), np.zeros(3, bool)) == (0.0, None)


def test_roc_auc_perfect_reversed_ties_and_by_hand():
    assert roc_auc([0.9, 0.8], [0.1, 0.2, 0.3]) == 1.0
    assert roc_auc([0.1], [0.5, 0.6]) == 0.0
    assert roc_auc([0.5, 0.5], [0.5]) == 0.5  # ties count one half
    # pairs (pos > neg): 0.4 beats 0.2 only; 0.7 beats 0.2 and 0.6 -> 3 of 4
    assert roc_auc([0.4, 0.7], [0.2, 0.6]) == pytest.approx(0.75)
    assert roc_auc([0.4, np.nan, 0.7], [0.2, 0.6, np.nan]) == pytest.approx(0.75)  # NaN scores left out
    assert roc_auc([], [0.1]) is None


def test_pair_outcomes_counts_either_copy_kept_as_deduplicated():
    uid = ["a", "b", "c", "d", "e", "f"]
    dup_of = [None, "a", None, "c", None, "e"]
    copy = np.array([0, 1, 0, 1, 0, 1], bool)
    # pair (a,b): original dropped, copy kept -> one kept; (c,d): both kept; (e,f): both rejected
    rejected = np.array([1, 0, 0, 0, 1, 1], bool)
    out = pair_outcomes(uid, dup_of, rejected, copy)
    assert out == pytest.approx({"one_kept": 1 / 3, "both_kept": 1 / 3, "both_rejected": 1 / 3})
    none = pair_outcomes(uid, [None] * 6, rejected, np.zeros(6, bool))
    assert none == {"one_kept": None, "both_kept": None, "both_rejected": None}


def test_parse_floats():
    assert parse_floats("0.5, 0.7") == (0.5, 0.7)
    assert parse_floats("") == ()
    with pytest.raises(UserError, match="not a comma-separated list"):
        parse_floats("0.5,high")


def test_write_docs_replaces_only_its_section(tmp_path, monkeypatch):
    path = Path(__file__).resolve().parents[3] / "bench" / "curation_quality.py"
    monkeypatch.syspath_prepend(str(path.parent))  # the bench scripts import benchlib beside them
    spec = importlib.util.spec_from_file_location("curation_quality", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# Benchmarks\n\n## Ingest\n\nkeep me\n\n{bench.SECTION}\n\nold table\n\n## Training\n\nkeep me too\n")
    bench.write_docs(f"{bench.SECTION}\n\nnew table\n", docs)
    text = docs.read_text()
    assert "old table" not in text and "new table" in text
    assert text.index("## Ingest") < text.index(bench.SECTION) < text.index("## Training")
    assert "keep me\n" in text and "keep me too" in text
    bench.write_docs(f"{bench.SECTION}\n\nnewer\n", docs)  # replaced again, not appended twice
    assert docs.read_text().count(bench.SECTION) == 1 and "newer" in docs.read_text()
    fresh = tmp_path / "fresh.md"
    fresh.write_text("# Benchmarks\n")
    bench.write_docs(f"{bench.SECTION}\n\nfirst\n", fresh)
    assert fresh.read_text().endswith(f"{bench.SECTION}\n\nfirst\n")


def _gt_pool(tmp_path):
    """8 rows: 4 clean, 2 misaligned, 2 non-English (one of them not usable), with lang and clip sidecars."""
    from tests.curate.selection_pools import add_sidecar, meta_pool

    kinds = ["clean", "clean", "clean", "clean", "misaligned", "misaligned", "non_english", "non_english"]
    rows = [{"gt_clean": k == "clean", "gt_misaligned": k == "misaligned", "gt_non_english": k == "non_english",
             "status": "corrupt_image" if i == 7 else "success"} for i, k in enumerate(kinds)]
    pool = meta_pool(tmp_path / "pool", rows)
    add_sidecar(pool, "lang", {"lang": ["en"] * 6 + ["fr", "de"], "lang_prob": [0.9] * 8})
    add_sidecar(pool, "clip", {"clip_score": [0.9, 0.8, 0.7, 0.3, 0.2, 0.1, 0.6, None]}, {"clip_score": pl.Float32})
    return pool


def test_evaluate_on_a_hand_made_pool(tmp_path):
    from tierclip.curate.quality.metrics import FilterSpec, evaluate, score_aucs
    from tierclip.curate.selection.config import FilterConfig

    pool = _gt_pool(tmp_path)
    specs = [FilterSpec("lang", FilterConfig(lang="en"), ("non_english",)),
             FilterSpec("top half", FilterConfig(fraction=0.5, fraction_of="pool"), ("misaligned",)),
             FilterSpec("text dedup", FilterConfig(dedup=("text",)), ("misaligned",))]
    results, skipped = evaluate(pool, specs)
    lang, top = results
    assert list(skipped) == ["text dedup"] and "text_dedup" in skipped["text dedup"]
    # lang rejects rows 6 and 7 only (its own clause; row 7's bad status is the status filter's business)
    assert (lang.n_rejected, lang.precision_target, lang.recall_target, lang.clean_rejected) == (2, 1.0, 1.0, 0.0)
    assert lang.recall == {"misaligned": 0.0, "non_english": 1.0}
    # DataComp top-k over 8 rows: threshold = 5th highest score (0.3) -> keeps 0.9, 0.8, 0.7, 0.6, 0.3
    assert top.n_rejected == 3 and top.recall["misaligned"] == 1.0 and top.recall["non_english"] == 0.5
    assert top.precision_target == pytest.approx(2 / 3) and top.precision_any == 1.0
    assert top.clean_kept == pytest.approx(4 / 5)
    aucs = score_aucs(pool)
    assert aucs["misaligned"] == (1.0, 2)  # every clean row outscores both misaligned rows
    assert aucs["non_english"] == (pytest.approx(0.75), 1)  # 0.6 beats clean 0.3 only; the null score is left out
