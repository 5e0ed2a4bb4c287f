"""`--basic` is bit-identical to DataComp's basic filter on captions with odd whitespace, with the real lid.176.ftz.

DataComp's rule (mlfoundations/datacomp, baselines/apply_filter.py, `load_uids_with_basic_filter_helper` and
`get_fasttext_language`), written out here in plain Python for one row:

    lang  = fastText.predict(text.replace("\\n", " "))  -> label without "__label__"   (only "\\n" is replaced)
    keep  = lang == "en"
            and len(text.split()) > 2                   (Python's str.split: any Unicode whitespace)
            and len(text) > 5                           (code points)
            and min(width, height) >= 200
            and max(width, height) / min(width, height) <= 3.0

Our `lang` column collapses every whitespace run first (better for `--lang`: U+00A0 or U+3000 glue words
together for fastText otherwise), so `--basic` reads the `lang_datacomp` column the lang stage also writes.
"""

from __future__ import annotations

import polars as pl
import pytest
from tierclip.curate.scoring.runner import score_pool
from tierclip.curate.selection.config import FilterConfig
from tierclip.curate.selection.query import filter_pool
from tierclip.curate.stages import lang

from tests.curate.selection_pools import all_uids, meta_pool

NBSP, IDEOGRAPHIC, LINE_SEP = "\u00a0", "\u3000", "\u2028"
CAPTIONS = [
    "Canine Covers\xa01997\xa0Ford\xa0Explorer Seat Covers",  # the reported case: fastText says sv on DataComp's input
    "Canine Covers 1997 Ford Explorer Seat Covers",
    f"Vintage{NBSP}oak{NBSP}dining{NBSP}table{NBSP}with{NBSP}six{NBSP}chairs",
    f"Mountain{NBSP}view{NBSP}cabin",  # one "word" for fastText, three for str.split()
    "a red dog\truns across the green field",
    "Tab\tseparated\tproduct\ttitle\tfor\tsale",
    "Windows line\r\nending in a caption about gardens",
    "carriage\rreturn\ronly caption text here",
    f"line{LINE_SEP}separator{LINE_SEP}between the words of this caption",
    f"Tokyo{IDEOGRAPHIC}skyline{IDEOGRAPHIC}at{IDEOGRAPHIC}night{IDEOGRAPHIC}photo",
    f"{IDEOGRAPHIC}{NBSP} leading and trailing spaces \t\r\n",
    "Kochen\xa0mit\xa0frischen\xa0Kräutern und Gemüse",
    "Das ist ein schönes Haus am See",
    "a b\xa0c",
    "ab\xa0\xa0\xa0",
    "two\xa0words",
    "multi\nline\ncaption of a small boat",
    "\xa0\xa0\xa0\xa0\xa0\xa0",
    "",
]


def datacomp_language(model, text: str) -> str:
    """DataComp's get_fasttext_language: one caption at a time, only newlines replaced."""
    text = text.replace("\n", " ")
    return model.predict(text)[0][0].split("__label__")[1]


def datacomp_basic_keeps(model, text: str, width: int, height: int) -> bool:
    english = datacomp_language(model, text) == "en"
    caption_ok = len(text.split()) > 2 and len(text) > 5
    image_ok = min(width, height) >= 200 and max(width, height) / min(width, height) <= 3.0
    return english and caption_ok and image_ok


@pytest.fixture(scope="module")
def model():
    return lang.load_model(lang.LangConfig())


def test_lang_datacomp_column_is_datacomp_language(model, tmp_path):
    meta = pl.DataFrame({"uid": [f"{i:032x}" for i in range(len(CAPTIONS) + 1)], "caption": [*CAPTIONS, None]})
    out = lang.compute(meta, None, lang.LangConfig(), None)
    assert out["lang_datacomp"].to_list() == [datacomp_language(model, c) for c in CAPTIONS] + [None]
    # The two inputs do give different answers on some of these captions (else this test would prove nothing).
    differ = [c for c, ours, dc in zip(CAPTIONS, out["lang"], out["lang_datacomp"], strict=False) if ours != dc and ours]
    assert CAPTIONS[0] in differ
    assert out["lang"][0] == "en" and out["lang_datacomp"][0] != "en"


def test_basic_selects_exactly_what_datacomp_selects(model, tmp_path):
    sizes = [(300, 300), (200, 600), (640, 480), (199, 400), (200, 601)]
    rows = [{"caption": c, "width": w, "height": h} for c in CAPTIONS for w, h in sizes]
    pool = meta_pool(tmp_path / "pool", rows, n_shards=3)
    score_pool(pool.root, ["lang"], workers=1, progress=False)
    expected = {uid for uid, row in zip(all_uids(pool), rows, strict=True)
                if datacomp_basic_keeps(model, row["caption"], row["width"], row["height"])}
    kept = set(filter_pool(pool, FilterConfig(basic=True))[1].uids.to_list())
    assert kept == expected
    assert len(expected) >= 3 * 8  # several captions pass at the three good sizes


def test_str_split_words_match_on_every_code_point():
    """Our polars word rule equals len(text.split()) > 2 with any single code point between the words."""
    from tierclip.curate.selection.config import basic_expr

    texts = [f"ab{chr(cp)}cd{chr(cp)}ef" for cp in range(1, 0x3100) if not 0xD800 <= cp < 0xE000]
    frame = pl.DataFrame({"caption": texts, "width": [300] * len(texts), "height": [300] * len(texts),
                          "lang_datacomp": ["en"] * len(texts)})
    ours = frame.select(basic_expr().alias("keep"))["keep"].to_list()
    assert ours == [len(t.split()) > 2 for t in texts]


def test_lang_sidecar_from_before_lang_datacomp_asks_for_a_forced_rerun(tmp_path):
    from tierclip.curate.errors import UserError

    from tests.curate.selection_pools import add_sidecar

    pool = meta_pool(tmp_path / "pool", [{} for _ in range(4)])
    add_sidecar(pool, "lang", {"lang": ["en"] * 4, "lang_prob": [0.9] * 4})
    with pytest.raises(UserError, match=r"no column 'lang_datacomp'.*curate score .* --stages lang --force"):
        filter_pool(pool, FilterConfig(basic=True))
