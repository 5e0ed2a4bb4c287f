"""Untrusted ingest input stays inside its folder and never breaks a pool: captions-table paths that leave the
image folder are not read, source keys that are not safe tar member names are mapped, images whose mode PNG
cannot hold are converted (CMYK, 32-bit float TIFF), never an aborted ingest."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile

import numpy as np
import polars as pl
from PIL import Image
from tierclip.curate.cli import main as curate_main
from tierclip.curate.ingest.img2dataset import open_img2dataset
from tierclip.curate.ingest.run import run_ingest
from tierclip.curate.pool import Pool
from tierclip.curate.scoring.runner import score_pool
from tierclip.curate.validate import validate_pool

from tests.curate.ingest_data import jpeg_bytes, write_img2dataset_shard
from tests.curate.robust_util import run_main, save
from tests.tiny import png_bytes

SAFE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a tar member name that stays where it is extracted, WebDataset-keyed
SECRET = png_bytes((1, 2, 3), (9, 7))  # a readable image outside the folder: decodes fine, must never be copied


def tar_members(pool: Pool) -> dict[str, bytes]:
    members = {}
    for shard in pool.shard_ids():
        with tarfile.open(pool.tar_path(shard)) as tar:
            members |= {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    return members


def folder_with_escapes(tmp_path):
    """images/ with one real image, a symlink inside it to that image, a symlink leading out, and a captions table
    that also lists a ../ path and an absolute path to a file outside the folder."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(png_bytes((200, 0, 0)))
    (tmp_path / "secret.png").write_bytes(SECRET)
    os.symlink(images / "a.png", images / "same.png")
    os.symlink(tmp_path / "secret.png", images / "out.png")
    rows = ["a.png", "../secret.png", str(tmp_path / "secret.png"), "out.png", "same.png", "./a.png"]
    captions = tmp_path / "captions.csv"
    captions.write_text("path,caption\n" + "".join(f"{p},picture {i}\n" for i, p in enumerate(rows)))
    return images, captions


def ingest_folder_cli(images, captions, out, monkeypatch, capsys, *extra):
    args = ["ingest", "folder", str(images), "--captions", str(captions), "--out", str(out), *extra]
    code, _, err = run_main(curate_main, args, monkeypatch, capsys)
    assert code == 0, err
    return Pool(out)


def test_captions_paths_that_leave_the_folder_are_never_read(tmp_path, monkeypatch, capsys):
    images, captions = folder_with_escapes(tmp_path)
    pool = ingest_folder_cli(images, captions, tmp_path / "pool", monkeypatch, capsys)
    meta = pool.scan_meta().collect()
    assert meta.height == 6  # every row kept
    statuses = dict(zip(meta["caption"], meta["status"], strict=True))
    assert [statuses[f"picture {i}"] for i in range(6)] == ["success", "outside_folder", "outside_folder", "outside_folder",
                                                            "success", "success"]
    for row in meta.filter(pl.col("status") == "outside_folder").iter_rows(named=True):
        assert row["error"].startswith(f"{captions}: row ") and "not read" in row["error"], row["error"]
        assert row["width"] is None
    assert "--follow-links" in meta.filter(pl.col("caption") == "picture 3")["error"][0]
    assert SECRET not in tar_members(pool).values()  # the bytes are never stored


def test_follow_links_reads_a_symlink_that_leads_out_but_never_a_dotdot_path(tmp_path, monkeypatch, capsys):
    images, captions = folder_with_escapes(tmp_path)
    pool = ingest_folder_cli(images, captions, tmp_path / "pool", monkeypatch, capsys, "--follow-links")
    statuses = pool.scan_meta().select("caption", "status").collect().rows()
    assert dict(statuses)["picture 3"] == "success"
    assert dict(statuses)["picture 1"] == dict(statuses)["picture 2"] == "outside_folder"
    assert list(tar_members(pool).values()).count(SECRET) == 1  # only the symlink's target, read on purpose
    assert json.loads((pool.root / "ingest.json").read_text())["config"]["follow_links"] is True


def crafted_keys(tmp_path):
    keys = ["000000001", "../../../x", "/tmp/x", "sub/dir", "k" * 300, "a b"]
    rows = [dict(key=k, status="success", image=jpeg_bytes((i * 30, 10, 10)), caption=f"caption {i}") for i, k in enumerate(keys)]
    write_img2dataset_shard(tmp_path / "raw", 0, rows)
    return keys


def test_img2dataset_keys_become_safe_member_names_and_the_pool_works(tmp_path):
    keys = crafted_keys(tmp_path)
    run_ingest(open_img2dataset(tmp_path / "raw"), tmp_path / "pool", 100)
    pool = Pool(tmp_path / "pool")
    meta = pool.scan_meta().collect()
    assert meta["status"].to_list() == ["success"] * len(keys)  # every image met its row
    assert all(SAFE_KEY.fullmatch(k) for k in meta["key"]) and meta["key"][0] == "000000001" and meta["key"].n_unique() == 6
    names = tar_members(pool)
    assert all(SAFE_KEY.fullmatch(name.partition(".")[0]) and "/" not in name for name in names)
    sources = [json.loads(names[f"{k}.json"]).get("source_key") for k in meta["key"]]
    assert sources == [None, *keys[1:]]  # the original key is kept beside the sample
    assert validate_pool(pool).ok
    score_pool(pool.root, ["basic"], workers=1, progress=False)  # readers accept the pool
    assert pool.stages() == ["basic"]


def test_a_300_character_key_through_the_command_is_not_a_traceback(tmp_path, monkeypatch, capsys):
    crafted_keys(tmp_path)
    code, out, err = run_main(curate_main, ["ingest", "img2dataset", str(tmp_path / "raw"), "--out", str(tmp_path / "pool")],
                              monkeypatch, capsys)
    assert code == 0 and "Traceback" not in err, err
    assert "success" in out


def tiff(image) -> bytes:
    return save(image, "TIFF")


def test_cmyk_and_float_tiffs_are_converted_not_an_aborted_ingest(tmp_path, monkeypatch, capsys):
    images = tmp_path / "images"
    images.mkdir()
    (images / "cmyk.tif").write_bytes(tiff(Image.new("CMYK", (12, 8), (0, 255, 255, 0))))  # red in CMYK
    ramp = np.linspace(0, 255, 96, dtype=np.float32).reshape(8, 12)
    (images / "float.tif").write_bytes(tiff(Image.fromarray(ramp, "F")))
    (images / "plain.png").write_bytes(png_bytes())
    (tmp_path / "c.csv").write_text("path,caption\ncmyk.tif,a red card\nfloat.tif,a grey ramp\nplain.png,a red square\n")
    pool = ingest_folder_cli(images, tmp_path / "c.csv", tmp_path / "pool", monkeypatch, capsys)
    meta = pool.scan_meta().collect()
    assert meta["status"].to_list() == ["success"] * 3
    stored = {s.key: Image.open(io.BytesIO(s.image)) for s in pool.samples(0)}
    assert stored["cmyk"].format == "PNG" and stored["cmyk"].mode == "RGB" and stored["cmyk"].getpixel((0, 0))[0] > 200
    assert stored["float"].format == "PNG" and stored["float"].size == (12, 8)
