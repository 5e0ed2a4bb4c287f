"""One decoder for every reader (ingest, basic, clip, inspect, training): docs/guarantees.md, "How images are decoded".

Every image is made here with Pillow (clipart-like RGBA line art, a 16-bit greyscale PNG, an
EXIF-rotated JPEG, a PNG header claiming 200 Mpx).
"""

from __future__ import annotations

import base64
import io
import json
import tarfile

import numpy as np
import polars as pl
import pytest
from tierclip.curate.images import DecodeOptions, ImageDecodeError, decode_image
from tierclip.curate.ingest.checks import ImageOptions, check_image
from tierclip.curate.ingest.folder import FolderConfig, open_folder
from tierclip.curate.ingest.run import run_ingest
from tierclip.curate.pool import Pool

from tests.curate.robust_util import exif_rotated_jpeg, grey16_png, line_art_rgba, png_header_only, run_main, save, write_folder


def ingest(tmp_path, images: dict[str, bytes], **options):
    captions = write_folder(tmp_path / "src", images)
    run_ingest(open_folder(FolderConfig(tmp_path / "src" / "images", captions)), tmp_path / "pool", 10,
               images=ImageOptions(**options))
    return Pool(tmp_path / "pool")


def meta_of(pool: Pool) -> pl.DataFrame:
    return pool.scan_meta().collect()


def readers_see(pool: Pool) -> dict[str, np.ndarray]:
    """The first sample's pixels as the clip stage, inspect and training decode them."""
    from PIL import Image
    from tierclip.curate.selection.inspect_rows import thumbnail
    from tierclip.curate.stages.clip import PairDecoder
    from tierclip.train.data import PositionDataset, build_index

    blob = next(pool.samples(0)).image
    clip = PairDecoder(lambda image: np.asarray(image), None, pool.decode_options).pixels(blob)[0]
    uri = thumbnail(blob, 512, pool.decode_options)
    thumb = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))
    train_image, _ = PositionDataset(build_index(pool, None), {}, None, 0)._load(0)
    return {"clip": clip, "inspect": thumb, "train": np.asarray(train_image)}


# -- 1. transparency ---------------------------------------------------------------------------
def test_transparent_line_art_is_composited_onto_white_for_every_reader(tmp_path):
    pool = ingest(tmp_path, {"art.png": line_art_rgba()})
    for reader, pixels in readers_see(pool).items():
        black_share = float((pixels.max(axis=2) < 16).mean())
        assert black_share < 0.2, f"{reader} sees {black_share:.0%} black pixels"
        assert pixels[0, -1].tolist() == [255, 255, 255], reader  # a transparent corner is white


def test_background_is_an_option_recorded_in_pool_json(tmp_path):
    pool = ingest(tmp_path, {"art.png": line_art_rgba()}, background=(0, 128, 0))
    assert json.loads((pool.root / "pool.json").read_text())["decode"]["background"] == [0, 128, 0]
    for pixels in readers_see(pool).values():
        assert pixels[0, -1].tolist() == [0, 128, 0]


# -- 2. 16-bit greyscale --------------------------------------------------------------------------
def test_sixteen_bit_grey_is_scaled_not_clipped_to_white():
    pixels = np.asarray(decode_image(grey16_png(top=3071)))
    assert pixels.shape[2] == 3
    assert (pixels == 255).mean() < 0.01              # today: 92 % pure white
    assert pixels.max() == round(3071 * 255 / 65535)  # 12 = 3071/65535 of full scale
    full = np.asarray(decode_image(grey16_png(top=65535)))
    assert full.min() == 0 and full.max() == 255


def test_sixteen_bit_grey_through_ingest_and_training(tmp_path):
    pool = ingest(tmp_path, {"grey.png": grey16_png()})
    assert meta_of(pool)["status"].to_list() == ["success"]
    for reader, pixels in readers_see(pool).items():
        assert (pixels == 255).mean() < 0.01, reader


# -- 3. EXIF orientation -----------------------------------------------------------------------------
def test_exif_orientation_is_applied_by_every_reader_and_in_meta(tmp_path):
    pool = ingest(tmp_path, {"photo.jpg": exif_rotated_jpeg(40, 20, orientation=6)})
    row = meta_of(pool).row(0, named=True)
    assert (row["width"], row["height"]) == (20, 40)
    for reader, pixels in readers_see(pool).items():
        assert pixels.shape[:2] == (40, 20), reader      # portrait: height 40, width 20
        top, bottom = pixels[2, 10], pixels[-3, 10]      # orientation 6 = rotate 90° clockwise: left half on top
        assert top[0] > 200 and top[2] < 60, (reader, top)
        assert bottom[2] > 200 and bottom[0] < 60, (reader, bottom)


# -- 4. large images: a pixel limit with a reason, a resize once at ingest ---------------------------
def test_a_200_megapixel_header_is_too_large_with_the_limit_and_option_named():
    check = check_image(png_header_only(20_000, 10_000), "png")
    assert check.status == "too_large"
    assert "200,000,000 pixels" in check.problem and "178,956,970" in check.problem and "--max-pixels" in check.problem


def test_max_pixels_is_an_ingest_option_and_readers_apply_the_same_limit(tmp_path):
    from PIL import Image

    big = save(Image.new("RGB", (300, 200), (10, 200, 30)))
    pool = ingest(tmp_path, {"big.png": big, "small.png": save(Image.new("RGB", (50, 40)))}, max_pixels=50_000)
    meta = meta_of(pool).sort("key")
    assert meta["status"].to_list() == ["too_large", "success"]
    assert "over the limit of 50,000" in meta["error"][0] and "--max-pixels" in meta["error"][0]
    assert pool.decode_options.max_pixels == 50_000
    with pytest.raises(ImageDecodeError, match="--max-pixels"):
        decode_image(big, pool.decode_options)
    assert decode_image(big, DecodeOptions(max_pixels=0)).size == (300, 200)


@pytest.mark.parametrize("mode, stored", [("keep_ratio_largest", (64, 32)), ("keep_ratio", (128, 64)),
                                          ("center_crop", (64, 64)), ("border", (64, 64))])
def test_ingest_resizes_once_and_keeps_the_source_size_in_meta(tmp_path, mode, stored, monkeypatch, capsys):
    from PIL import Image
    from tierclip.curate.cli import main

    write_folder(tmp_path / "src", {"wide.png": save(Image.new("RGB", (400, 200), (200, 10, 10))),
                                    "tiny.png": save(Image.new("RGB", (30, 20), (0, 0, 200)))})
    code, _, err = run_main(main, ["ingest", "folder", str(tmp_path / "src" / "images"), "--captions",
                                   str(tmp_path / "src" / "captions.csv"), "--out", str(tmp_path / "pool"),
                                   "--image-size", "64", "--resize-mode", mode], monkeypatch, capsys)
    assert code == 0, err
    pool = Pool(tmp_path / "pool")
    meta = meta_of(pool).sort("key")
    assert meta.select("key", "width", "height").rows() == [("tiny", 30, 20), ("wide", 400, 200)]
    samples = {s.key: s for s in pool.samples(0)}
    assert Image.open(io.BytesIO(samples["wide"].image)).size == stored
    assert (samples["wide"].extra["stored_width"], samples["wide"].extra["stored_height"]) == stored
    assert Image.open(io.BytesIO(samples["tiny"].image)).size == (30, 20)  # never upscaled
    assert "stored_width" not in samples["tiny"].extra


def test_bad_resize_mode_is_one_line(tmp_path, monkeypatch, capsys):
    from tierclip.curate.cli import main

    write_folder(tmp_path / "src", {"a.png": line_art_rgba()})
    code, _, err = run_main(main, ["ingest", "folder", str(tmp_path / "src" / "images"), "--captions",
                                   str(tmp_path / "src" / "captions.csv"), "--out", str(tmp_path / "pool"),
                                   "--image-size", "64", "--resize-mode", "stretch"], monkeypatch, capsys)
    assert code == 2 and "--resize-mode 'stretch'" in err and not (tmp_path / "pool").exists()


# -- reduced-size JPEG decoding (`draft_to`, the clip stage's --clip-jpeg-draft) -----------------------------
def test_jpeg_draft_reduces_only_jpegs_of_twice_the_target_and_keeps_the_guarantees():
    from PIL import Image

    photo = save(Image.new("RGB", (256, 192), (200, 30, 30)), "JPEG", quality=95)
    assert decode_image(photo).size == (256, 192)                       # off: a full decode
    assert decode_image(photo, draft_to=24).size == (32, 24)           # 1/8: both sides still >= 24
    assert decode_image(photo, draft_to=32).size == (64, 48)           # 1/4: 1/8 would make the short side 24 < 32
    assert decode_image(photo, draft_to=64).size == (128, 96)          # 1/2
    assert decode_image(photo, draft_to=100).size == (256, 192)        # 192 < 2 x 100: not reduced
    png = save(Image.new("RGB", (256, 192), (200, 30, 30)))
    assert decode_image(png, draft_to=32).size == (256, 192)           # only JPEGs
    upright = np.asarray(decode_image(exif_rotated_jpeg(400, 200, orientation=6), draft_to=50))
    assert upright.shape[:2] == (100, 50)                               # reduced by 4, then turned upright
    assert upright[5, 25, 0] > 200 and upright[-5, 25, 2] > 200         # red on top, blue below
    with pytest.raises(ImageDecodeError, match="over the limit of 40,000"):
        decode_image(photo, DecodeOptions(max_pixels=40_000), draft_to=32)  # the limit is on the stored size


# -- 9. deterministic error texts ----------------------------------------------------------------------
def test_error_texts_carry_no_memory_address_and_two_ingests_are_identical(tmp_path):
    bad = {"empty.jpg": b"", "text.jpg": b"<html>404 not found</html>", "cut.png": line_art_rgba()[:60]}
    errors = []
    for run in ("a", "b"):
        pool = ingest(tmp_path / run, bad)
        meta = meta_of(pool).sort("key")
        assert meta["status"].to_list() == ["corrupt_image"] * 3
        errors.append(meta["error"].to_list())
        assert not any("0x" in e for e in meta["error"]), meta["error"].to_list()
    assert errors[0] == errors[1]
    assert (tmp_path / "a/pool/meta/00000.parquet").read_bytes() == (tmp_path / "b/pool/meta/00000.parquet").read_bytes()
    with tarfile.open(tmp_path / "a/pool/shards/00000.tar") as tar:
        assert len(tar.getnames()) == 9  # the bad bytes are still stored: nothing dropped
