"""Out-of-core text_dedup (band keys -> buckets -> edges -> groups) against one in-memory MinHashLSH, and bucket capping."""

from __future__ import annotations

import json
import random

import numpy as np
import polars as pl
from tierclip.curate.scoring.runner import score_pool
from tierclip.curate.stages.groups import connected_groups
from tierclip.curate.stages.text_dedup import EMPTY, TextDedupConfig, bucket_pairs, lsh_bands

from tests.tiny import make_pool

WORDS = ("red blue green small large vintage modern wooden leather cotton dress shirt table chair lamp photo "
         "print poster garden kitchen summer winter sale new black white gold silver ring necklace").split()


def near_duplicate_captions(n: int, seed: int = 0) -> list[str | None]:
    """~30 % of captions are copies or one-word edits of an earlier one; a few are empty."""
    rng = random.Random(seed)
    captions: list[str | None] = []
    for i in range(n):
        if captions and rng.random() < 0.3:
            words = (rng.choice([c for c in captions[-50:] if c]) or "x").split()
            if rng.random() < 0.6:
                words[rng.randrange(len(words))] = rng.choice(WORDS)
            captions.append(" ".join(words))
        elif i % 97 == 0:
            captions.append(None)
        else:
            captions.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))))
    return captions


def in_memory_groups(sigs: np.ndarray, cfg: TextDedupConfig) -> np.ndarray:
    """The previous text_dedup build: one MinHashLSH over every signature, query each, verify, connected components."""
    from datasketch import LeanMinHash, MinHashLSH

    rows = np.flatnonzero(~(sigs == EMPTY).all(axis=1))
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    hashes = {int(r): LeanMinHash(seed=cfg.seed, hashvalues=sigs[r], scheme="affine32") for r in rows}
    for row, minhash in hashes.items():
        lsh.insert(row, minhash, check_duplication=False)
    pairs = np.asarray([(row, other) for row, mh in hashes.items() for other in lsh.query(mh) if other > row], dtype=np.int64)
    pairs = pairs[(sigs[pairs[:, 0]] == sigs[pairs[:, 1]]).mean(axis=1) >= cfg.threshold]
    return connected_groups(len(sigs), pairs[:, 0], pairs[:, 1])


def scored_pool(tmp_path, captions, shards=4, cfg=None):
    size = -(-len(captions) // shards)
    make_pool(tmp_path / "pool", [[(None, c) for c in captions[i:i + size]] for i in range(0, len(captions), size)])
    [report] = score_pool(tmp_path / "pool", ["text_dedup"], {"text_dedup": cfg} if cfg else None, workers=1, progress=False)
    folder = tmp_path / "pool" / "scores" / "text_dedup"
    sigs = np.concatenate([np.load(p) for p in sorted((folder / "_parts" / "signatures").glob("*.npy"))])
    return report, pl.read_parquet(folder / "*.parquet"), sigs


def test_groups_equal_one_in_memory_minhash_lsh(tmp_path):
    cfg = TextDedupConfig()
    report, out, sigs = scored_pool(tmp_path, near_duplicate_captions(3000))
    expected = in_memory_groups(sigs, cfg)
    assert np.array_equal(out["dup_group"].to_numpy(), expected)
    assert report.build["capped_buckets"] == 0
    assert (report.build["lsh_bands"], report.build["lsh_rows_per_band"]) == lsh_bands(cfg) == (9, 13)
    assert 300 < report.build["rows_in_groups"] < 2000  # the generator's ~30 % near-duplicates, each with its source
    tasks = sorted((tmp_path / "pool" / "scores" / "text_dedup" / "_global" / "_tasks" / "buckets").glob("*.json"))
    assert len(tasks) == 9 and all("candidate_pairs" in json.loads(t.read_text()) for t in tasks)


def test_bucket_pairs_all_pairs_and_identical_signatures_join_their_first():
    keys = np.array([5, 5, 5, 5, 9, 9, 7], dtype=np.uint64)
    rows = np.array([10, 11, 12, 13, 20, 21, 30])
    sig_hash = np.array([1, 2, 3, 1, 4, 4, 5], dtype=np.uint64)  # rows 10 and 13 identical; 20 and 21 identical
    out = {kind: set() for kind in ("same", "candidate")}
    for kind, left, right in bucket_pairs(keys, rows, sig_hash, cap=10):
        out[kind] |= set(zip(left.tolist(), right.tolist(), strict=True))
    assert out["same"] == {(10, 13), (20, 21)}
    assert out["candidate"] == {(10, 11), (10, 12), (11, 12)}


def test_oversized_buckets_are_capped_and_counted(tmp_path):
    captions = [f"the same long product title for sale number {i}" for i in range(40)]  # one bucket per band holds them all
    cfg = TextDedupConfig(threshold=0.5, max_bucket=3)
    report, out, sigs = scored_pool(tmp_path, captions, shards=2, cfg=cfg)
    assert report.build["capped_buckets"] > 0 and report.build["capped_bucket_signatures"] >= 40
    expected = in_memory_groups(sigs, cfg)
    grouped = out["dup_group"].to_numpy()
    # capping only drops candidate pairs: every pair grouped here is grouped by the in-memory index too
    assert all(expected[i] == expected[grouped[i]] for i in range(len(grouped)))
