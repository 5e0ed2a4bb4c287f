"""text_dedup (MinHash + LSH), image_dedup groups and cluster / SemDeDup on hand-made inputs."""

from __future__ import annotations

import numpy as np
import polars as pl
from tierclip.curate.scoring.runner import score_pool
from tierclip.curate.stages import cluster
from tierclip.curate.stages.embeddings import fit_kmeans, nearest_centroids
from tierclip.curate.stages.groups import connected_groups, keep_one_per_group
from tierclip.curate.stages.text_dedup import EMPTY, TextDedupConfig, shingles, signatures

from tests.tiny import make_pool, png_bytes


def test_bulk_signatures_equal_a_per_shingle_update_loop_with_the_same_hash():
    import zlib

    from datasketch import MinHash

    cfg = TextDedupConfig(num_perm=64)
    captions = ["A red circle on a blue background", "two green squares", None]
    sigs = signatures(captions, cfg)
    for caption, sig in zip(captions[:2], sigs[:2], strict=True):
        reference = MinHash(num_perm=64, seed=cfg.seed, hashfunc=zlib.crc32)
        for shingle in shingles(caption, cfg):
            reference.update(shingle)
        assert np.array_equal(sig, reference.hashvalues)
    assert (sigs[2] == EMPTY).all()


def test_shingles_char_and_word():
    assert sorted(shingles("Ab  CD", TextDedupConfig(ngram=3))) == [b" cd", b"ab ", b"b c"]
    assert sorted(shingles("one two three", TextDedupConfig(shingle="word", ngram=2))) == [b"one two", b"two three"]
    assert shingles("   ", TextDedupConfig()) == []


def test_text_dedup_groups_near_identical_captions_and_keeps_one(tmp_path):
    red = png_bytes((255, 0, 0))
    captions = [
        "a photo of a small red circle on a white background",
        "an entirely different caption about dogs in the park",
        "A photo of a small red circle on a white background!",  # near-identical to row 0
        "",
        None,
        "a photo of a small red circle on a white background",  # exact copy of row 0, in another shard
    ]
    make_pool(tmp_path / "pool", [[(red, c) for c in captions[:3]], [(red, c) for c in captions[3:]]])
    score_pool(tmp_path / "pool", ["text_dedup"], workers=1, progress=False)
    out = pl.read_parquet(tmp_path / "pool" / "scores" / "text_dedup" / "*.parquet")
    meta = pl.read_parquet(tmp_path / "pool" / "meta" / "*.parquet")
    assert out["uid"].to_list() == meta["uid"].to_list()
    assert out["dup_group"].to_list() == [0, 1, 0, 3, 4, 0]
    group = [i for i in (0, 2, 5)]
    assert out["dup_keep"].gather(group).sum() == 1
    smallest_uid = min(meta["uid"].gather(group).to_list())  # no clip stage: the first by uid is kept
    assert out.filter(pl.col("dup_keep") & (pl.col("dup_group") == 0))["uid"].item() == smallest_uid
    assert out["dup_keep"].gather([1, 3, 4]).to_list() == [True, True, True]
    assert (tmp_path / "pool" / "scores" / "text_dedup" / "_parts" / "signatures" / "00001.npy").is_file()


def test_groups_and_keep_by_score():
    group = connected_groups(5, np.array([0, 3]), np.array([2, 1]))
    assert group.tolist() == [0, 1, 0, 1, 4]
    uids = ["e", "d", "c", "b", "a"]
    assert keep_one_per_group(group, uids).tolist() == [False, False, True, True, True]  # smallest uid
    scores = np.array([0.9, np.nan, 0.1, 0.2, 0.5], dtype=np.float32)
    assert keep_one_per_group(group, uids, scores).tolist() == [True, False, False, True, True]  # highest score, null last


def test_kmeans_recovers_known_clusters_and_semdedup_drops_near_copies():
    rng = np.random.default_rng(0)
    centres = np.eye(8, dtype=np.float32)[:3]
    labels = np.repeat(np.arange(3), 40)
    vectors = centres[labels] + 0.05 * rng.standard_normal((120, 8)).astype(np.float32)
    vectors[1] = vectors[0] + 1e-4  # a near copy inside cluster 0
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cfg = cluster.ClusterConfig(k=3, semdedup_eps=0.001)
    centroids = fit_kmeans(vectors, cfg.k, cfg.niter, cfg.seed, cfg.max_points_per_centroid)
    nearest = nearest_centroids(vectors, centroids, 1)[1][:, 0]
    for k in range(3):  # every true cluster maps to one k-means cluster
        assert len(set(nearest[labels == k].tolist())) == 1
    assert len(set(nearest.tolist())) == 3
    dist = 1 - (vectors * centroids[nearest]).sum(axis=1)
    keep = cluster.semdedup_keep(vectors, nearest, dist, cfg.semdedup_eps)
    assert keep.sum() == 119 and not keep[:2].all() and keep[2:].all()
    reference = centres[[2]] + 0.01
    chosen = cluster.near_reference(centroids, reference, 1)
    assert chosen.tolist() == [nearest[labels == 2][0]]


def test_greedy_keep_checks_only_kept_points():
    a = np.array([1.0, 0.0])
    b = np.array([np.cos(0.3), np.sin(0.3)])  # cos(a, b) = 0.955
    c = np.array([np.cos(0.6), np.sin(0.6)])  # cos(a, c) = 0.825, cos(b, c) = 0.955
    keep = cluster.greedy_keep(np.stack([a, b, c]), max_sim=0.9)
    assert keep.tolist() == [True, False, True]  # c is near b, but b was dropped
    many = np.repeat(a[None], 2500, axis=0)  # more than one block
    assert cluster.greedy_keep(many, 0.9).sum() == 1


def test_image_near_pairs_stay_bounded_when_embeddings_collapse():
    from tierclip.curate.stages.image_dedup import near_pairs

    vectors = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    vectors[3] = 2 * vectors[1]  # same direction: cosine 1
    vectors[5] = np.nan  # no embedding
    left, right = near_pairs(vectors, 0.99, neighbours=2)
    assert sorted(zip(left.tolist(), right.tolist(), strict=True)) == [(1, 3), (3, 1)]
    collapsed = np.ones((3000, 8), np.float32)  # a weak model: every image looks the same
    left, right = near_pairs(collapsed, 0.95, neighbours=4)
    assert len(left) <= 3000 * (4 + 1)  # k + 1 searched per row, as the row itself may be among them
    assert set(connected_groups(3000, left, right).tolist()) == {0}


def test_image_dedup_without_clip_groups_exact_duplicates_only(tmp_path):
    red, blue = png_bytes((255, 0, 0)), png_bytes((0, 0, 255))
    make_pool(tmp_path / "pool", [[(red, "a"), (blue, "b")], [(red, "c"), (None, "d")]])
    [report] = score_pool(tmp_path / "pool", ["image_dedup"], workers=1, progress=False)
    assert report.build["near_duplicates"].startswith("skipped")
    out = pl.read_parquet(tmp_path / "pool" / "scores" / "image_dedup" / "*.parquet")
    assert out["image_dup_group"].to_list() == [0, 1, 0, 3]
    assert out["image_dup_keep"].to_list()[1:4:2] == [True, True] and out["image_dup_keep"].to_list()[::2].count(True) == 1
    assert out["image_sha1"][0] == out["image_sha1"][2] and out["image_sha1"][3] is None
