"""basic and lang stages on tiny hand-checked inputs."""

from __future__ import annotations

import polars as pl
import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.stages import basic, lang
from tierclip.curate.stages.base import NoOptions, ShardContext

from tests.curate.stage_fixtures import image_bytes


def meta_of(rows: list[dict]) -> pl.DataFrame:
    from tierclip.curate.pool import meta_frame

    full = [dict(uid=f"{i:032x}", key=f"{i:09d}", shard=0, url=None, error=None, **row) for i, row in enumerate(rows)]
    return meta_frame(full)


def test_basic_caption_and_image_columns(tmp_path):
    meta = meta_of([
        dict(caption="a red cat", width=30, height=10, status="success"),
        dict(caption="  10% off!!\nnow ", width=None, height=None, status="success"),
        dict(caption=None, width=None, height=None, status="corrupt_image"),
        dict(caption="", width=None, height=None, status="failed_to_download"),
    ])
    images = iter([image_bytes((1, 2, 3), (30, 10)), image_bytes((9, 9, 9), (8, 20)), b"not an image", None])
    out = basic.compute(meta, images, NoOptions(), ShardContext(tmp_path, 0))
    assert out.columns == ["uid", *basic.PRODUCES]
    assert out["caption_chars"].to_list() == [9, 16, 0, 0]
    assert out["caption_words"].to_list() == [3, 3, 0, 0]
    # "10%", "off!!", "now": 11 non-space characters, of which 1, 0, %, !, ! are not letters
    assert out["caption_nonalpha_frac"].to_list()[1] == pytest.approx(5 / 11)
    assert out["caption_nonalpha_frac"].to_list()[0] == 0.0
    assert out["caption_nonalpha_frac"].null_count() == 2
    assert out["image_width"].to_list() == [30, 8, None, None]  # row 1 decoded because meta lacks its size
    assert out["image_height"].to_list() == [10, 20, None, None]
    assert out["aspect_ratio"].to_list()[:2] == pytest.approx([3.0, 2.5])
    assert out["aspect_ratio"].to_list()[2:] == [None, None]
    assert out["decodable"].to_list() == [True, True, False, False]


def test_basic_metadata_only_pool_takes_sizes_from_meta(tmp_path):
    meta = meta_of([dict(caption="x", width=200, height=100, status="success")])
    out = basic.compute(meta, None, NoOptions(), ShardContext(tmp_path, 0))
    assert out.row(0, named=True) | {"uid": None} == {
        "uid": None, "caption_chars": 1, "caption_words": 1, "caption_nonalpha_frac": 0.0,
        "image_width": 200, "image_height": 100, "aspect_ratio": 2.0, "decodable": None}


def test_lang_english_french_newlines_and_empty(tmp_path):
    meta = meta_of([dict(caption=c, width=None, height=None, status="success") for c in
                    ["the cat is on the table", "le chat est sur la table", "der Hund\nschläft im Garten", "", None, "  \n "]])
    out = lang.compute(meta, None, lang.LangConfig(), ShardContext(tmp_path, 0))
    assert out["lang"].to_list() == ["en", "fr", "de", None, None, None]
    probs = out["lang_prob"].to_list()
    assert all(0.5 < p <= 1.0 for p in probs[:3])
    assert probs[3:] == [0.0, 0.0, 0.0]
    assert out.schema["lang_prob"] == pl.Float32


def test_lang_model_file_errors(tmp_path):
    with pytest.raises(UserError, match="no such fastText model"):
        lang.load_model(lang.LangConfig(lid_model=str(tmp_path / "missing.bin")))
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a model")
    with pytest.raises(UserError, match="bad.bin"):
        lang.load_model(lang.LangConfig(lid_model=str(bad)))
