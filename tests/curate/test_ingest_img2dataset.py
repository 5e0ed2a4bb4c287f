"""img2dataset itself downloads from a local HTTP server (good images, 404s, non-images); we ingest its output.

One download (webdataset, through `curate download`) is shared by the default tests; the
parquet and files output formats each need another img2dataset run (~40 s here) and are `slow`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import polars as pl
import pytest
from tierclip.curate.ingest.img2dataset import open_img2dataset
from tierclip.curate.ingest.run import run_ingest
from tierclip.curate.pool import Pool
from tierclip.curate.validate import validate_pool

from tests.curate.ingest_data import serve, web_files, write_url_list

# img2dataset's own resizer says failed_to_resize for bytes that do not decode; `curate download` has img2dataset
# keep the bytes as downloaded and our decoder says corrupt_image.
EXPECTED = {"success": 12, "failed_to_download": 3, "failed_to_resize": 2}
DOWNLOADED = {"success": 12, "failed_to_download": 3, "corrupt_image": 2}


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    files = web_files()
    server = serve(files)
    root = tmp_path_factory.mktemp("web")
    urls = write_url_list(root / "urls.parquet", server.server_address[1], files)
    yield root, urls
    server.shutdown()


@pytest.fixture(scope="module")
def downloaded(web):
    """`curate download` run once through the console entry point (in-process), raw output kept."""
    from tierclip.curate.cli import main

    root, urls = web
    argv = ["curate", "download", str(root / "urls.parquet"), "--out", str(root / "pool"), "--download-threads", "4",
            "--image-size", "32", "--samples-per-shard", "8", "--shard-size", "6", "--keep-raw", "--timeout", "5"]
    old_argv, sys.argv = sys.argv, argv
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, f"curate download exited with {exc.code}"
    finally:
        sys.argv = old_argv
    return root / "pool", urls


def check_pool(pool_dir: Path, urls: pl.DataFrame, expected: dict = DOWNLOADED) -> pl.DataFrame:
    pool = Pool(pool_dir)
    meta = pool.scan_meta().collect()
    assert validate_pool(pool).ok
    assert meta.height == pool.info.n_samples == urls.height          # every input row kept
    assert dict(meta["status"].value_counts().iter_rows()) == expected
    by_url = meta.join(urls, on="url", suffix="_in")
    assert by_url.height == urls.height
    assert (by_url["uid"] == by_url["uid_in"]).all()                     # DataComp-style uid column kept
    assert (by_url["caption"] == by_url["caption_in"]).all()
    for row in by_url.iter_rows(named=True):
        if "/missing" in row["url"]:
            assert row["status"] == "failed_to_download" and "404" in row["error"]
        elif row["url"].endswith(("page.html", "garbage.jpg")):
            assert row["status"] in ("failed_to_resize", "corrupt_image")
        else:
            assert row["status"] == "success" and row["width"] in (16, 32, 40, 64)   # original width, not the 32 px resize
    return meta


def test_download_writes_a_pool(downloaded):
    pool_dir, urls = downloaded
    meta = check_pool(pool_dir, urls)
    assert Pool(pool_dir).info.n_shards == 3
    good = [s for shard in Pool(pool_dir).shard_ids() for s in Pool(pool_dir).samples(shard) if s.image]
    assert len(good) == 14 and all(s.image_ext == "jpg" for s in good)  # the 2 corrupt_image rows keep their bytes
    assert meta.filter(pl.col("status") == "success")["height"].to_list().count(24) == 6


def stored_image(pool_dir: Path, url_end: str):
    """(meta row, the stored image decoded) of the sample downloaded from the URL ending in `url_end`."""
    from tierclip.curate.images import decode_image

    pool = Pool(pool_dir)
    row = pool.scan_meta().filter(pl.col("url").str.ends_with(url_end)).collect().row(0, named=True)
    sample = next(s for s in pool.samples(row["shard"]) if s.key == row["key"])
    return row, decode_image(sample.image)


def test_download_applies_exif_orientation_and_never_upscales(downloaded):
    """img2dataset's OpenCV resizer stored the rotated photo sideways and blew the 16-px image up to 32 px."""
    import numpy as np
    from tierclip.curate.images import decode_image, resize_image

    from tests.curate.robust_util import exif_rotated_jpeg

    pool_dir, _ = downloaded
    row, image = stored_image(pool_dir, "/rotated.jpg")
    assert (row["width"], row["height"]) == (40, 64)  # the upright source size
    upright = resize_image(decode_image(exif_rotated_jpeg(64, 40)), 32, "border")
    assert np.abs(np.asarray(image, dtype=float) - np.asarray(upright, dtype=float)).mean() < 8
    row, image = stored_image(pool_dir, "/tiny.png")
    assert (row["width"], row["height"]) == (16, 16) and image.size == (16, 16)


def test_ingest_img2dataset_output_matches_download(downloaded, tmp_path):
    from tierclip.curate.ingest.checks import ImageOptions

    pool_dir, urls = downloaded
    same = ImageOptions(image_size=32, resize_mode="border", encode_format="jpg")  # what `curate download` used
    report = run_ingest(open_img2dataset(pool_dir / "_img2dataset"), tmp_path / "again", shard_size=6, images=same)
    assert report.n_rows == urls.height
    first, second = Pool(pool_dir).scan_meta().collect(), check_pool(tmp_path / "again", urls)
    assert first.equals(second)


def test_truncated_img2dataset_tar(downloaded, tmp_path):
    pool_dir, urls = downloaded
    raw = tmp_path / "raw"
    shutil.copytree(pool_dir / "_img2dataset", raw)
    tar_path = raw / "00000.tar"
    data = tar_path.read_bytes()
    tar_path.write_bytes(data[: len(data) // 2 + 700])
    report = run_ingest(open_img2dataset(raw), tmp_path / "pool", shard_size=100)
    meta = Pool(tmp_path / "pool").scan_meta().collect()
    assert report.n_rows == meta.height == urls.height
    counts = report.status_counts
    assert counts["truncated_shard"] >= 1 and counts["truncated_shard"] + counts["success"] == DOWNLOADED["success"]
    assert counts["failed_to_download"] + counts["corrupt_image"] == 5
    assert meta.filter(pl.col("status") == "truncated_shard")["error"].str.contains("00000.tar").all()


@pytest.mark.parametrize("output_format", ["parquet", "files"])
def test_img2dataset_other_output_formats(web, tmp_path, output_format):
    from img2dataset import download

    root, urls = web
    download(url_list=str(root / "urls.parquet"), input_format="parquet", output_folder=str(tmp_path / "raw"),
             output_format=output_format, caption_col="caption", save_additional_columns=["uid"], processes_count=1,
             thread_count=4, image_size=32, number_sample_per_shard=8, enable_wandb=False, timeout=5)
    run_ingest(open_img2dataset(tmp_path / "raw"), tmp_path / "pool", shard_size=7)
    check_pool(tmp_path / "pool", urls, EXPECTED)
