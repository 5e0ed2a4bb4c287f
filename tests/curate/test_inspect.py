"""curate inspect: tables, charts and a gallery; untrusted captions are escaped."""

from __future__ import annotations

import re

import polars as pl
import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.pool import write_meta
from tierclip.curate.selection.config import FilterConfig
from tierclip.curate.selection.inspect_page import write_report
from tierclip.curate.selection.inspect_rows import InspectConfig
from tierclip.curate.selection.query import write_filtered
from tierclip.curate.subset import pool_ref, write_subset

from tests.curate.selection_pools import add_sidecar, all_uids, meta_pool
from tests.tiny import make_pool, png_bytes

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def hostile_pool(tmp_path):
    """6 image rows with script captions; one marked corrupt, a gt flag and a clip sidecar."""
    pairs = [(png_bytes((40 * i, 0, 0)), f"{EVIL} caption {i}") for i in range(3)]
    pool = make_pool(tmp_path / "pool", [pairs, pairs[:2] + [(b"not an image", EVIL)]], name="hostile")
    for shard in pool.shard_ids():
        meta = pool.meta(shard)
        status = ["corrupt_image" if caption == EVIL else "success" for caption in meta["caption"]]
        write_meta(pool.root, shard, meta.with_columns(
            pl.Series("status", status), pl.Series("error", [f"<b>{s}</b>" for s in status]),
            (pl.col("key").str.slice(-1).cast(pl.Int32) % 2 == 0).alias("gt_misaligned")))
    add_sidecar(pool, "clip", {"clip_score": [0.1, 0.5, 0.9, 0.2, 0.6, None]})
    return pool


def test_report_escapes_captions_and_has_tables_charts_gallery(hostile_pool, tmp_path):
    page = write_report(hostile_pool.root, tmp_path / "report", InspectConfig(per_reason=10))
    text = page.read_text()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "<script" not in text.lower() and "onerror=alert" not in text.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    assert "&lt;b&gt;corrupt_image&lt;/b&gt;" in text and "<b>corrupt_image</b>" not in text
    assert "Rows per status" in text and re.search(r"<td>corrupt_image</td><td class=\"n\">1</td>", text)
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 5  # the corrupt row shows no thumbnail
    for chart in ("reasons.png", "hist_clip_score.png", "hist_clip_score_gt_misaligned.png"):
        assert (tmp_path / "report" / chart).stat().st_size > 1000 and f'src="{chart}"' in text


def test_report_of_a_subset_names_the_clause_that_dropped_each_row(hostile_pool, tmp_path):
    write_filtered(hostile_pool, FilterConfig(min_score=0.55, where="NOT gt_misaligned"), tmp_path / "sub")
    text = write_report(tmp_path / "sub", tmp_path / "report", InspectConfig()).read_text()
    assert "Drop counts per clause" in text
    assert "<h3>kept (" in text and "<h3>where (" in text and "<h3>min_score (" in text and "<h3>corrupt_image (" in text
    assert "<script" not in text.lower()


def test_metadata_only_pool_and_bad_targets(tmp_path):
    pool = meta_pool(tmp_path / "meta", [{"caption": EVIL}, {"status": "failed_to_download"}])
    text = write_report(pool.root, tmp_path / "r", InspectConfig()).read_text()
    assert "no image" in text and "<script" not in text.lower()
    with pytest.raises(UserError, match="neither a pool"):
        write_report(tmp_path / "r", tmp_path / "r2", InspectConfig())
    other = meta_pool(tmp_path / "other", [{}], name="other")
    subset = write_subset(tmp_path / "s", all_uids(pool), {"pool": pool_ref(pool)})
    with pytest.raises(UserError, match="built from pool 'metapool', not 'other'"):
        write_report(subset.path, tmp_path / "r3", InspectConfig(), pool_path=other.root)
