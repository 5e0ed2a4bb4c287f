"""Ingest from a folder, hand-made img2dataset shards and DataComp metadata; every bad input; CLI errors."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.ingest.datacomp import open_datacomp
from tierclip.curate.ingest.folder import FolderConfig, open_folder, path_key
from tierclip.curate.ingest.img2dataset import open_img2dataset
from tierclip.curate.ingest.run import run_ingest
from tierclip.curate.pool import Pool
from tierclip.curate.validate import validate_pool

from tests.curate.ingest_data import good_rows, jpeg_bytes, write_captions, write_datacomp, write_images, write_img2dataset_shard

REPO = Path(__file__).resolve().parents[2]


def ingest_folder(tmp_path: Path, rows: list[dict], suffix=".csv", out="pool", **kw):
    captions = write_captions(tmp_path / f"captions{suffix}", rows)
    return run_ingest(open_folder(FolderConfig(tmp_path / "images", captions, **kw)), tmp_path / out, shard_size=4)


def all_meta(pool_dir: Path) -> pl.DataFrame:
    return Pool(pool_dir).scan_meta().collect()


def run_cli(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    from tierclip.curate.cli import main

    monkeypatch.setattr(sys, "argv", ["curate", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- folder ---------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_folder_ingest_each_captions_format(tmp_path, suffix):
    paths = write_images(tmp_path / "images", 9)
    rows = [{"path": p, "caption": f"caption of {p}"} for p in paths]
    report = ingest_folder(tmp_path, rows, suffix)
    pool = Pool(tmp_path / "pool")
    meta = all_meta(tmp_path / "pool")
    assert report.n_rows == pool.info.n_samples == 9 and pool.info.n_shards == 3
    assert meta["status"].to_list() == ["success"] * 9
    assert meta["caption"].to_list() == [r["caption"] for r in rows]
    assert meta["key"].to_list() == [path_key(p) for p in paths]
    assert validate_pool(pool).ok
    sample = next(pool.samples(0))
    assert sample.image == (tmp_path / "images" / paths[0]).read_bytes() and sample.extra == {"path": paths[0]}
    assert (meta["width"][1], meta["height"][1]) == (17, 12)


def test_folder_custom_columns_and_uids(tmp_path):
    paths = write_images(tmp_path / "images", 3)
    rows = [{"file": p, "text": f"t{i}", "id": f"{i:032x}"} for i, p in enumerate(paths)]
    rows[2]["id"] = "not-a-uid"
    ingest_folder(tmp_path, rows, ".parquet", path_col="file", caption_col="text", uid_col="id")
    meta = all_meta(tmp_path / "pool")
    assert meta["uid"].to_list()[:2] == [f"{0:032x}", f"{1:032x}"]
    assert meta["status"].to_list() == ["success", "success", "invalid_uid"]
    assert len(meta["uid"][2]) == 32


def test_uids_stable_across_reingest(tmp_path):
    paths = write_images(tmp_path / "images", 6)
    rows = [{"path": p, "caption": f"c{i}"} for i, p in enumerate(paths)]
    ingest_folder(tmp_path, rows, ".jsonl", out="a")
    ingest_folder(tmp_path, rows, ".jsonl", out="b")
    first, second = all_meta(tmp_path / "a"), all_meta(tmp_path / "b")
    assert first["uid"].to_list() == second["uid"].to_list()
    assert first["uid"].n_unique() == 6


def test_folder_bad_inputs_keep_every_row(tmp_path, capsys):
    paths = write_images(tmp_path / "images", 4)
    (tmp_path / "images" / "broken.jpg").write_bytes(jpeg_bytes()[:60])       # truncated JPEG
    (tmp_path / "images" / "noise.png").write_bytes(b"<html>no image</html>")
    rows = [
        {"path": paths[0], "caption": "fine"},
        {"path": "broken.jpg", "caption": "truncated jpeg"},
        {"path": "noise.png", "caption": "not an image"},
        {"path": "gone.png", "caption": "listed but missing"},
        {"path": paths[1], "caption": b"caf\xe9 latin-1 bytes"},
        {"path": paths[2], "caption": "   "},
        {"path": paths[0], "caption": "same path again"},
        {"path": paths[3], "caption": "ok too"},
    ]
    report = ingest_folder(tmp_path, rows, ".csv")
    meta = all_meta(tmp_path / "pool")
    assert meta["status"].to_list() == ["success", "corrupt_image", "corrupt_image", "missing_image", "invalid_caption",
                                        "empty_caption", "duplicate_key", "success"]
    assert report.n_rows == len(rows) == sum(report.status_counts.values())
    assert meta["caption"][4] == "caf\ufffd latin-1 bytes"
    assert meta["key"][6] == f"{path_key(paths[0])}_dup1" and meta["key"].n_unique() == len(rows)
    assert meta["uid"].n_unique() == len(rows)
    assert all(meta["error"][i] for i in range(1, 7)) and meta["error"][0] is None
    pool = Pool(tmp_path / "pool")
    assert validate_pool(pool).ok
    stored = {s.key: s for shard in pool.shard_ids() for s in pool.samples(shard)}
    assert stored[meta["key"][1]].image == (tmp_path / "images" / "broken.jpg").read_bytes()   # corrupt bytes kept as they were


def test_jsonl_invalid_utf8_caption(tmp_path):
    paths = write_images(tmp_path / "images", 2)
    ingest_folder(tmp_path, [{"path": paths[0], "caption": b"bad \xff\xfe bytes"}, {"path": paths[1], "caption": ""}], ".jsonl")
    meta = all_meta(tmp_path / "pool")
    assert meta["status"].to_list() == ["invalid_caption", "empty_caption"]
    assert "\ufffd" in meta["caption"][0]
    sample = next(Pool(tmp_path / "pool").samples(0))
    assert sample.caption == "bad \ufffd\ufffd bytes"


def test_report_table_printed_by_cli(tmp_path, monkeypatch, capsys):
    paths = write_images(tmp_path / "images", 3)
    write_captions(tmp_path / "c.csv", [{"path": p, "caption": "x"} for p in paths] + [{"path": "gone.png", "caption": "y"}])
    code, out, _ = run_cli(["ingest", "folder", str(tmp_path / "images"), "--captions", str(tmp_path / "c.csv"),
                            "--out", str(tmp_path / "pool")], monkeypatch, capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("ingested 4 rows into 1 shards")
    table = {line.split()[0]: int(line.split()[1]) for line in lines[3:]}
    assert table == {"success": 3, "missing_image": 1, "total": 4}


# -- img2dataset (hand-made shards in its layout; img2dataset itself runs in test_ingest_img2dataset.py) ----------
def test_img2dataset_failed_rows_and_uid_column(tmp_path):
    rows = good_rows(3)
    rows.insert(1, dict(key="000000010", status="failed_to_download", image=None, caption="never came"))
    for i, row in enumerate(rows):
        row["uid"] = f"{i + 100:032x}"
    write_img2dataset_shard(tmp_path / "raw", 0, rows)
    write_img2dataset_shard(tmp_path / "raw", 1, good_rows(2, start=20))
    report = run_ingest(open_img2dataset(tmp_path / "raw"), tmp_path / "pool", shard_size=3)
    meta = all_meta(tmp_path / "pool")
    assert report.n_rows == 6 and meta["status"].to_list() == ["success", "failed_to_download"] + ["success"] * 4
    assert meta["uid"].to_list()[:4] == [f"{i + 100:032x}" for i in range(4)]
    assert meta["error"][1] == "HTTP Error 404: Not Found" and meta["caption"][1] == "never came"
    assert (meta["width"][0], meta["height"][0]) == (640, 480)     # img2dataset's original size
    assert meta["url"][0].endswith("000000000.jpg")
    assert validate_pool(Pool(tmp_path / "pool")).ok


def test_img2dataset_truncated_tar(tmp_path):
    write_img2dataset_shard(tmp_path / "raw", 0, good_rows(6))
    tar_path = tmp_path / "raw" / "00000.tar"
    data = tar_path.read_bytes()
    cut = data.index(b"000000003.jpg") + 512 + 100          # inside the 4th sample's image
    tar_path.write_bytes(data[:cut])
    report = run_ingest(open_img2dataset(tmp_path / "raw"), tmp_path / "pool", shard_size=4)
    meta = all_meta(tmp_path / "pool")
    assert meta["status"].to_list() == ["success"] * 3 + ["truncated_shard"] * 3
    assert "cut mid-way" in meta["error"][3] and "image lost" in meta["error"][4]
    assert report.status_counts == {"success": 3, "truncated_shard": 3}


def test_img2dataset_tar_cut_between_members(tmp_path):
    write_img2dataset_shard(tmp_path / "raw", 0, good_rows(4))
    tar_path = tmp_path / "raw" / "00000.tar"
    data = tar_path.read_bytes()
    tar_path.write_bytes(data[: data.index(b"000000002.jpg")])   # ends exactly at a header boundary, no end blocks
    run_ingest(open_img2dataset(tmp_path / "raw"), tmp_path / "pool", shard_size=10)
    assert all_meta(tmp_path / "pool")["status"].to_list() == ["success", "success", "truncated_shard", "truncated_shard"]


def test_img2dataset_corrupt_image_bad_captions_duplicate_keys(tmp_path):
    rows = good_rows(5)
    rows[1]["image"] = b"\xff\xd8 not really a jpeg"
    rows[2]["caption"] = b"\xc3\x28 invalid"
    rows[3]["caption"] = ""
    rows[4]["key"] = rows[0]["key"]
    write_img2dataset_shard(tmp_path / "raw", 0, rows)
    run_ingest(open_img2dataset(tmp_path / "raw"), tmp_path / "pool", shard_size=10)
    meta = all_meta(tmp_path / "pool")
    assert meta["status"].to_list() == ["success", "corrupt_image", "invalid_caption", "empty_caption", "duplicate_key"]
    assert meta["key"][4] == "000000000_dup1"
    assert validate_pool(Pool(tmp_path / "pool")).ok


def test_img2dataset_success_row_without_image(tmp_path):
    write_img2dataset_shard(tmp_path / "raw", 0, good_rows(2))
    frame = pl.read_parquet(tmp_path / "raw" / "00000.parquet")       # the parquet lists a success the tar lacks
    pl.concat([frame, frame.tail(1).with_columns(key=pl.lit("000000099"))]).write_parquet(tmp_path / "raw" / "00000.parquet")
    run_ingest(open_img2dataset(tmp_path / "raw"), tmp_path / "pool", shard_size=10)
    meta = all_meta(tmp_path / "pool")
    assert meta["status"].to_list() == ["success", "success", "missing_image"]


def test_img2dataset_missing_parquet_is_a_user_error(tmp_path):
    write_img2dataset_shard(tmp_path / "raw", 0, good_rows(2))
    (tmp_path / "raw" / "00000.parquet").unlink()
    with pytest.raises(UserError, match=r"00000\.parquet: missing"):
        open_img2dataset(tmp_path / "raw")
    assert not (tmp_path / "pool").exists()


# -- DataComp ---------------------------------------------------------------------------------
def test_datacomp_metadata_only_pool_with_scores_sidecar(tmp_path):
    first = write_datacomp(tmp_path / "dc" / "part0.parquet", 30, seed=0)
    second = write_datacomp(tmp_path / "dc" / "sub" / "part1.parquet", 25, seed=1)
    report = run_ingest(open_datacomp(tmp_path / "dc"), tmp_path / "pool", shard_size=20)
    pool = Pool(tmp_path / "pool")
    source = pl.concat([first, second])
    assert report.n_rows == pool.info.n_samples == 55 and pool.info.n_shards == 3
    assert not pool.has_images() and not (tmp_path / "pool" / "shards").exists()
    assert pool.stages() == ["datacomp"]
    meta = pool.scan_meta().collect()
    assert meta["uid"].to_list() == source["uid"].to_list()
    assert meta["status"].unique().to_list() == ["success"]
    assert meta["width"].to_list() == source["original_width"].to_list()
    selected = (pool.scan_meta().join(pool.scan_scores("datacomp"), on="uid")
                .filter(pl.col("clip_l14_similarity_score") > 0.5).collect())
    assert selected.height == (source["clip_l14_similarity_score"] > 0.5).sum() > 0
    assert validate_pool(pool).ok


def test_datacomp_bad_rows(tmp_path):
    frame = write_datacomp(tmp_path / "dc.parquet", 6)
    frame = frame.with_columns(
        uid=pl.Series([frame["uid"][0], "xyz", frame["uid"][0].upper(), frame["uid"][3], frame["uid"][4], frame["uid"][5]]),
        text=pl.Series(["a", "b", "c", "", None, "f"]),
    )
    frame.write_parquet(tmp_path / "dc.parquet")
    report = run_ingest(open_datacomp(tmp_path / "dc.parquet"), tmp_path / "pool", shard_size=4)
    meta = all_meta(tmp_path / "pool")
    assert meta["status"].to_list() == ["success", "invalid_uid", "duplicate_uid", "empty_caption", "empty_caption", "success"]
    assert meta["uid"].n_unique() == 6 and report.n_rows == 6


def test_datacomp_missing_column_names_the_file(tmp_path):
    write_datacomp(tmp_path / "dc.parquet", 3).drop("uid").write_parquet(tmp_path / "dc.parquet")
    with pytest.raises(UserError, match=r"dc\.parquet: no column 'uid'"):
        open_datacomp(tmp_path)


# -- user mistakes --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["no_folder", "no_captions", "bad_suffix", "no_column", "not_parquet", "not_img2dataset"])
def test_user_mistakes_are_one_line(tmp_path, monkeypatch, capsys, case):
    write_images(tmp_path / "images", 2)
    write_captions(tmp_path / "c.csv", [{"path": "img1.png", "caption": "x"}])
    (tmp_path / "c.txt").write_text("img1.png\tx\n")
    (tmp_path / "fake.parquet").write_bytes(b"not parquet at all")
    images, csv = str(tmp_path / "images"), str(tmp_path / "c.csv")
    args = {
        "no_folder": (["ingest", "folder", str(tmp_path / "nope"), "--captions", csv], "nope: no such image folder"),
        "no_captions": (["ingest", "folder", images, "--captions", str(tmp_path / "x.csv")], "x.csv: no such captions file"),
        "bad_suffix": (["ingest", "folder", images, "--captions", str(tmp_path / "c.txt")], "c.txt: unknown captions format"),
        "no_column": (["ingest", "folder", images, "--captions", csv, "--caption-col", "text"], "c.csv: no column 'text'"),
        "not_parquet": (["ingest", "datacomp", str(tmp_path / "fake.parquet")], "fake.parquet: not a readable parquet file"),
        "not_img2dataset": (["ingest", "img2dataset", images], "no img2dataset output here"),
    }[case]
    code, out, err = run_cli([*args[0], "--out", str(tmp_path / "pool")], monkeypatch, capsys)
    assert code == 2
    assert err.startswith("error: ") and args[1] in err and err.count("\n") == 1, err
    assert not (tmp_path / "pool").exists()


def test_console_script_prints_one_line_without_traceback(tmp_path):
    result = subprocess.run([str(REPO / ".venv" / "bin" / "curate"), "ingest", "img2dataset", str(tmp_path / "missing"),
                             "--out", str(tmp_path / "pool")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing'}: no such folder (expected img2dataset's output folder)"]
    assert "Traceback" not in result.stderr + result.stdout


def test_resume_into_pool_with_other_options_is_refused(tmp_path):
    paths = write_images(tmp_path / "images", 2)
    ingest_folder(tmp_path, [{"path": p, "caption": "x"} for p in paths], ".csv")
    with pytest.raises(UserError, match="ingested with other options"):
        run_ingest(open_folder(FolderConfig(tmp_path / "images", tmp_path / "captions.csv")), tmp_path / "pool", shard_size=7)


def test_reingest_into_finished_pool_is_a_no_op(tmp_path):
    paths = write_images(tmp_path / "images", 5)
    ingest_folder(tmp_path, [{"path": p, "caption": "x"} for p in paths], ".csv")
    before = {p: p.read_bytes() for p in (tmp_path / "pool").rglob("*") if p.is_file() and p.name != "pool.json"}
    report = ingest_folder(tmp_path, [{"path": p, "caption": "x"} for p in paths], ".csv")
    assert report.n_resumed_shards == report.n_shards == 2 and report.n_rows == 5
    assert before == {p: p.read_bytes() for p in (tmp_path / "pool").rglob("*") if p.is_file() and p.name != "pool.json"}
    shutil.rmtree(tmp_path / "pool")


def test_folder_converts_gif_and_fixes_mislabelled_extension(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.new("P", (10, 8)).save(tmp_path / "images" / "anim.gif")
    Image.new("RGB", (9, 7), "blue").save(tmp_path / "images" / "really_png.jpg", format="PNG")
    ingest_folder(tmp_path, [{"path": "anim.gif", "caption": "a gif"}, {"path": "really_png.jpg", "caption": "png bytes"}])
    samples = list(Pool(tmp_path / "pool").samples(0))
    assert [s.image_ext for s in samples] == ["png", "png"]
    assert Image.open(io.BytesIO(samples[0].image)).format == "PNG"
    assert all_meta(tmp_path / "pool")["status"].to_list() == ["success", "success"]


def test_img2dataset_sample_only_in_tar_is_kept(tmp_path):
    write_img2dataset_shard(tmp_path / "raw", 0, good_rows(3))
    frame = pl.read_parquet(tmp_path / "raw" / "00000.parquet")
    frame.head(2).write_parquet(tmp_path / "raw" / "00000.parquet")     # the parquet forgets the third sample
    run_ingest(open_img2dataset(tmp_path / "raw"), tmp_path / "pool", shard_size=10)
    meta = all_meta(tmp_path / "pool")
    assert meta["key"].to_list() == ["000000000", "000000001", "000000002"]
    assert meta["status"].to_list() == ["success"] * 3 and meta["url"][2].endswith("000000002.jpg")


def test_img2dataset_shard_whose_tar_is_gone_keeps_its_rows(tmp_path):
    write_img2dataset_shard(tmp_path / "raw", 0, good_rows(2))
    write_img2dataset_shard(tmp_path / "raw", 1, good_rows(3, start=10))
    (tmp_path / "raw" / "00001.tar").unlink()
    report = run_ingest(open_img2dataset(tmp_path / "raw"), tmp_path / "pool", shard_size=10)
    meta = all_meta(tmp_path / "pool")
    assert report.n_rows == 5 and meta["status"].to_list() == ["success"] * 2 + ["missing_image"] * 3
    assert "00001.tar: missing" in meta["error"][2]


def test_download_user_mistakes_are_one_line(tmp_path, monkeypatch, capsys):
    pl.DataFrame({"link": ["http://127.0.0.1:9/a.jpg"], "caption": ["x"]}).write_csv(tmp_path / "urls.csv")
    code, _, err = run_cli(["download", str(tmp_path / "urls.csv"), "--out", str(tmp_path / "pool")], monkeypatch, capsys)
    assert code == 2 and err == f"error: {tmp_path / 'urls.csv'}: no column 'url' (columns: link, caption); set --url-col\n"
    code, _, err = run_cli(["download", str(tmp_path / "urls.xlsx"), "--out", str(tmp_path / "pool")], monkeypatch, capsys)
    assert code == 2 and err == f"error: {tmp_path / 'urls.xlsx'}: no such URL list\n"
    assert not (tmp_path / "pool").exists()
