"""The package readers on the real packages: openclipart's own noise flagged, huge images honour --max-pixels,
Tux Paint's translations, emoji names joined across packages."""

import pytest
from tierclip.curate.ingest.checks import ImageOptions
from tierclip.curate.ingest.writer import WriterConfig, write_records
from tierclip.curate.pool import Pool, PoolInfo, write_pool_info
from tierclip.curate.realpool.captions import Caption
from tierclip.curate.realpool.records import META_SCHEMA, Row, records


@pytest.fixture(scope="module")
def clipart():
    from tierclip.curate.realpool.clipart import clipart_items

    return clipart_items()


def test_openclipart_keeps_its_noise_and_flags_what_is_known(clipart):
    by_key = {item.key: item for item in clipart}
    assert len(clipart) > 8_000
    stars = [item for item in clipart if item.caption == "gramastar"]
    assert len(stars) > 1_000 and all(item.flags["gt_stock_title"] for item in stars)
    symlinks = [item for item in clipart if item.path is not None and item.path.is_symlink()]
    assert len(symlinks) > 500 and all(item.flags["gt_exact_dup"] and item.dup_of in by_key for item in symlinks)
    assert all(not by_key[item.dup_of].path.is_symlink() for item in symlinks)
    entities = [item for item in clipart if item.flags["gt_entity"]]
    assert entities and all("&" in item.caption and ";" in item.caption for item in entities)
    assert {item.license for item in clipart} == {"public-domain"}


def test_huge_clipart_images_honour_max_pixels_and_keep_their_row(clipart, tmp_path):
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    sizes = sorted((Image.open(item.path).size, item.key) for item in clipart if item.path is not None and not item.path.is_symlink())
    largest = {key for (w, h), key in sorted(sizes, key=lambda s: s[0][0] * s[0][1])[-2:]}
    rows = [Row(item, Caption(item.caption, "en")) for item in clipart if item.key in largest]
    cfg = WriterConfig(out=tmp_path, images=ImageOptions(max_pixels=4_000_000, image_size=64), meta_schema=META_SCHEMA)
    report = write_records(records(rows, 64), cfg)
    write_pool_info(tmp_path, PoolInfo("huge", "packages", "now", report.n_rows, report.n_shards))
    meta = Pool(tmp_path).meta(0)
    assert meta["status"].to_list() == ["too_large", "too_large"]
    assert meta["error"].str.contains("--max-pixels").all() and meta["source"].to_list() == ["openclipart"] * 2


def test_tux_paint_stamps_have_english_sentences_and_translations():
    from tierclip.curate.realpool.tuxpaint import tuxpaint_items

    items = tuxpaint_items()
    frog = next(item for item in items if item.relative.endswith("amphibians/frog.png"))
    assert frog.caption == "A frog." and dict(frog.translations)["fr"] == "Une grenouille."
    assert len(items) > 900 and sum(item.path is None for item in items) <= 5
    assert all(not lang.startswith("en") for item in items for lang, _ in item.translations)


def test_emoji_names_come_from_cldr_with_skin_tones_and_other_languages():
    from tierclip.curate.realpool.emoji import datasource_items, read_text

    items = {item.relative.rsplit("/", 1)[-1]: item for item in datasource_items("emoji-google", read_text())}
    wave = items["1f44b-1f3fd.png"]
    assert wave.name == "waving hand: medium skin tone" and wave.concept == "waving hand"
    assert wave.labels["skin_tone"] == "medium skin tone" and wave.labels["group"] == "people & body"
    assert items["1f44b.png"].concept == "waving hand" and "de" in dict(wave.translations)
