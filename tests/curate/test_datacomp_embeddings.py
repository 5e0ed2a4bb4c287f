"""DataComp's .npz features as the pool's embeddings: round trip, misaligned files, and the embedding stages on a metadata-only pool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.ingest.datacomp import open_datacomp
from tierclip.curate.ingest.run import run_ingest
from tierclip.curate.pool import Pool
from tierclip.curate.scoring.runner import score_pool
from tierclip.curate.stages.cluster import ClusterConfig
from tierclip.curate.validate import validate_pool

from tests.curate.ingest_data import write_datacomp

DIM = 24


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def write_npz(parquet: Path, n: int, seed: int, dtype=np.float16, **drop) -> dict[str, np.ndarray]:
    """Random features with rows 1 and 2 near-copies of row 0 (cosine > 0.99); l14 and b32 image + text keys."""
    rng = np.random.default_rng(seed + 100)
    arrays = {key: unit(rng.normal(size=(n, DIM if key.startswith("l14") else 16))) for key in ("l14_img", "l14_txt", "b32_img", "b32_txt")}
    arrays["l14_img"][1:3] = unit(arrays["l14_img"][0] + 0.02 * rng.normal(size=(2, DIM)))
    arrays = {k: v.astype(dtype) for k, v in arrays.items() if k not in drop}
    np.savez(parquet.with_suffix(".npz"), **arrays)
    return arrays


def datacomp_dir(root: Path) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    first, second = write_datacomp(root / "a.parquet", 30, seed=0), write_datacomp(root / "b.parquet", 25, seed=1)
    one, two = write_npz(root / "a.parquet", 30, 0), write_npz(root / "b.parquet", 25, 1)
    return pl.concat([first, second]), {k: np.concatenate([one[k], two[k]]) for k in one}


def test_npz_features_round_trip_into_the_pool_embedding_format(tmp_path):
    source, arrays = datacomp_dir(tmp_path / "dc")
    run_ingest(open_datacomp(tmp_path / "dc", "l14"), tmp_path / "pool", shard_size=20)  # shards straddle the two files
    pool = Pool(tmp_path / "pool")
    assert pool.info.n_shards == 3 and not pool.has_images()
    stored = np.concatenate([np.load(pool.embeddings_path("ViT-L-14-openai", s)) for s in pool.shard_ids()])
    assert stored.dtype == np.float16 and stored.shape == (55, 2, DIM)
    np.testing.assert_allclose(stored[:, 0], arrays["l14_img"], atol=2e-3)  # the inputs were unit vectors already
    np.testing.assert_allclose(stored[:, 1], arrays["l14_txt"], atol=2e-3)
    record = json.loads((tmp_path / "pool" / "embeddings" / "ViT-L-14-openai" / "embeddings.json").read_text())
    assert (record["model"], record["pretrained"], record["image_key"]) == ("ViT-L-14", "openai", "l14_img")
    assert pool.scan_meta().collect()["uid"].to_list() == source["uid"].to_list()
    assert validate_pool(pool).ok


def test_b32_without_text_key_stores_nan_text_half(tmp_path):
    write_datacomp(tmp_path / "dc" / "a.parquet", 7)
    arrays = write_npz(tmp_path / "dc" / "a.parquet", 7, 0, dtype=np.float32, b32_txt=True)
    run_ingest(open_datacomp(tmp_path / "dc", "b32"), tmp_path / "pool", shard_size=4)
    pool = Pool(tmp_path / "pool")
    stored = np.concatenate([np.load(pool.embeddings_path("ViT-B-32-openai", s)) for s in pool.shard_ids()])
    assert stored.shape == (7, 2, 16) and np.isnan(stored[:, 1]).all()
    np.testing.assert_allclose(stored[:, 0], arrays["b32_img"], atol=2e-3)


@pytest.mark.parametrize("case, message", [
    ("missing", r"a\.npz: missing; DataComp ships it beside a\.parquet"),
    ("rows", r"a\.npz: l14_img has 9 rows but a\.parquet has 8"),
    ("dtype", r"a\.npz: l14_img has dtype int32 .* expected floating point"),
    ("key", r"a\.npz: no key 'l14_img' \(keys: b32_img"),
    ("garbage", r"a\.npz: not a readable \.npz file"),
])
def test_missing_or_misaligned_npz_is_one_line_naming_the_file(tmp_path, case, message):
    parquet = tmp_path / "dc" / "a.parquet"
    write_datacomp(parquet, 8)
    if case == "rows":
        write_npz(parquet, 9, 0)
    elif case == "dtype":
        np.savez(parquet.with_suffix(".npz"), l14_img=np.zeros((8, DIM), np.int32))
    elif case == "key":
        write_npz(parquet, 8, 0, l14_img=True, l14_txt=True)
    elif case == "garbage":
        parquet.with_suffix(".npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match=message) as error:
        open_datacomp(tmp_path / "dc", "l14")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "pool").exists()


def test_cli_embeddings_none_ingests_metadata_only_and_bad_choice_is_one_line(tmp_path):
    write_datacomp(tmp_path / "dc" / "a.parquet", 5)
    cli = [sys.executable, "-m", "tierclip.curate.cli", "ingest", "datacomp", str(tmp_path / "dc")]
    result = subprocess.run([*cli, "--out", str(tmp_path / "pool"), "--embeddings", "none"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "pool" / "embeddings").exists()
    result = subprocess.run([*cli, "--out", str(tmp_path / "other")], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().startswith("error: ") and "a.npz: missing" in result.stderr


def test_image_dedup_cluster_and_reference_run_on_a_metadata_only_pool(tmp_path):
    _, arrays = datacomp_dir(tmp_path / "dc")
    run_ingest(open_datacomp(tmp_path / "dc", "l14"), tmp_path / "pool", shard_size=20)
    reference = tmp_path / "reference.npy"
    np.save(reference, arrays["l14_img"][30:31].astype(np.float32))  # the first row of the second file
    configs = {"cluster": ClusterConfig(k=4, reference=str(reference))}
    reports = score_pool(tmp_path / "pool", ["image_dedup", "cluster"], configs, workers=1, progress=False)
    assert "ViT-L-14-openai (datacomp l14_img)" in reports[0].build["near_duplicates"]
    pool = Pool(tmp_path / "pool")
    dedup = pool.scan_scores("image_dedup").collect()
    groups = dedup["image_dup_group"].to_list()
    assert groups[0] == groups[1] == groups[2] == 0 and groups[30] == groups[31] == groups[32] == 30
    assert dedup["image_dup_keep"].sum() == 55 - 4
    cluster = pool.scan_scores("cluster").collect()
    assert cluster["cluster_id"].null_count() == 0 and cluster["cluster_near_ref"][30] is True
    assert 0 < cluster["cluster_near_ref"].sum() < 55


def test_image_dedup_inverted_lists_find_the_exact_search_groups(tmp_path):
    from tierclip.curate.stages.image_dedup import ImageDedupConfig

    rng = np.random.default_rng(5)
    centers = unit(rng.normal(size=(6, DIM)))
    for name, n in (("a", 120), ("b", 80)):  # six topics; every 5th image has a near-copy right after it
        base = unit(centers[rng.integers(0, 6, n)] + 0.5 * rng.normal(size=(n, DIM)))
        base[1::5] = unit(base[0::5][: len(base[1::5])] + 0.01 * rng.normal(size=(len(base[1::5]), DIM)))
        write_datacomp(tmp_path / "dc" / f"{name}.parquet", n, seed=ord(name))
        np.savez(tmp_path / "dc" / f"{name}.npz", l14_img=base.astype(np.float16))
    run_ingest(open_datacomp(tmp_path / "dc", "l14"), tmp_path / "exact", shard_size=50)
    run_ingest(open_datacomp(tmp_path / "dc", "l14"), tmp_path / "lists", shard_size=50)
    score_pool(tmp_path / "exact", ["image_dedup"], workers=1, progress=False)
    [report] = score_pool(tmp_path / "lists", ["image_dedup"], {"image_dedup": ImageDedupConfig(exact_max=10, lists=6)},
                          workers=1, progress=False)
    assert "6 inverted lists, probe 2" in report.build["near_duplicates"]
    assert len(list((tmp_path / "lists" / "scores" / "image_dedup" / "_global" / "edges").glob("*.npy"))) == 1
    exact = Pool(tmp_path / "exact").scan_scores("image_dedup").collect()
    approx = Pool(tmp_path / "lists").scan_scores("image_dedup").collect()
    assert exact["image_dup_keep"].sum() <= 200 - 40
    assert approx["image_dup_group"].to_list() == exact["image_dup_group"].to_list()


def test_gathering_a_few_rows_reads_only_those_and_equals_the_block_read(tmp_path, monkeypatch):
    """A partitioned task (a SemDeDup or list group) wants a thin slice of each shard: read row by row, same values."""
    from tierclip.curate.stages import embeddings
    from tierclip.curate.stages.base import shard_offsets

    datacomp_dir(tmp_path / "dc")
    run_ingest(open_datacomp(tmp_path / "dc", "l14"), tmp_path / "pool", shard_size=20)
    pool = Pool(tmp_path / "pool")
    source, offsets = embeddings.require(pool), shard_offsets(pool)
    rows = np.array([41, 3, 22], dtype=np.int64)  # one row of each 20-row shard: below SPARSE_SHARE

    def no_block_reads(*args, **kwargs):
        raise AssertionError("a whole shard was read for one row")

    with monkeypatch.context() as patched:
        patched.setattr(embeddings, "iter_blocks", no_block_reads)
        sparse = embeddings.gather_rows(pool, source, rows, offsets)
    monkeypatch.setattr(embeddings, "SPARSE_SHARE", 0.0)  # now every shard block by block
    np.testing.assert_array_equal(sparse, embeddings.gather_rows(pool, source, rows, offsets))
    assert sparse.shape == (3, DIM) and np.allclose(np.linalg.norm(sparse, axis=1), 1, atol=1e-5)
