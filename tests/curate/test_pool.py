import json

import polars as pl
import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.pool import OK, Pool, PoolInfo, Sample, meta_frame, write_pool_info, write_shard
from tierclip.curate.uids import derive_uid, u8_pair_to_uid, uid_to_u8_pair
from tierclip.curate.validate import validate_pool


def _write_tiny_pool(root, n_shards=2, per_shard=3):
    for shard in range(n_shards):
        samples, rows = [], []
        for i in range(per_shard):
            key = f"{shard:05d}{i:04d}"
            image, caption = bytes([shard, i]) * 10, f"caption {shard} {i}"
            samples.append(Sample(key, image, "png", caption, {"i": i}))
            rows.append(dict(uid=derive_uid(key, image, caption), key=key, shard=shard, caption=caption,
                             url=None, width=8, height=8, status=OK, error=None))
        write_shard(root, shard, samples, meta_frame(rows))
    write_pool_info(root, PoolInfo("tiny", "test", "2026-01-01", n_shards * per_shard, n_shards))
    return Pool(root)


def test_round_trip(tmp_path):
    pool = _write_tiny_pool(tmp_path / "p")
    assert pool.info.n_samples == 6
    samples = list(pool.samples(1))
    assert [s.key for s in samples] == pool.meta(1)["key"].to_list()
    assert samples[2].caption == "caption 1 2" and samples[2].image == bytes([1, 2]) * 10
    assert samples[0].extra == {"i": 0} and samples[0].image_ext == "png"
    assert pool.scan_meta().collect().height == 6
    assert validate_pool(pool).ok


def test_sidecar_write_is_marked_done_and_aligned(tmp_path):
    pool = _write_tiny_pool(tmp_path / "p")
    for shard in pool.shard_ids():
        meta = pool.meta(shard)
        pool.write_scores("len", shard, meta.select("uid", pl.col("caption").str.len_chars().alias("n")))
    assert pool.stages() == ["len"]
    assert pool.scan_scores("len").collect()["n"].to_list() == [11] * 6
    assert json.loads(pool.stats_path("len", 0).read_text()) == {"rows": 3}
    assert validate_pool(pool).ok


def test_incomplete_stage_is_a_clear_error(tmp_path):
    pool = _write_tiny_pool(tmp_path / "p")
    pool.write_scores("half", 0, pool.meta(0).select("uid"))
    with pytest.raises(UserError, match="incomplete"):
        pool.scan_scores("half")


def test_validate_finds_duplicate_uid_and_count_mismatch(tmp_path):
    pool = _write_tiny_pool(tmp_path / "p")
    meta = pool.meta(1).with_columns(pl.lit(pool.meta(0)["uid"][0]).alias("uid"))
    meta.write_parquet(pool.meta_path(1))
    report = validate_pool(pool)
    assert any("duplicate uid" in p for p in report.problems)


def test_missing_pool_and_missing_meta_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such pool"):
        Pool(tmp_path / "nope")
    pool = _write_tiny_pool(tmp_path / "p")
    pool.meta_path(0).unlink()
    with pytest.raises(UserError, match="missing meta"):
        pool.meta(0)


def test_tars_are_byte_identical_across_writes(tmp_path):
    a, b = _write_tiny_pool(tmp_path / "a"), _write_tiny_pool(tmp_path / "b")
    assert a.tar_path(0).read_bytes() == b.tar_path(0).read_bytes()
    assert a.meta_path(0).read_bytes() == b.meta_path(0).read_bytes()


def test_uid_helpers():
    uid = derive_uid("k", b"img", "cap")
    assert len(uid) == 32 and uid == derive_uid("k", b"img", "cap")
    assert uid != derive_uid("k2", b"img", "cap")
    assert u8_pair_to_uid(*uid_to_u8_pair(uid)) == uid
