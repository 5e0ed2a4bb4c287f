"""`text_dedup`: near-duplicate captions with datasketch MinHash + MinHashLSH, in two phases.

1. prepare (per shard, in parallel): normalise each caption (lowercase,
   collapse whitespace), cut it into character or word n-gram shingles and
   compute its MinHash signature with `MinHash.bulk` (hashing vectorised per
   caption; ~8x a per-shingle `MinHash.update` loop). Signatures are saved as
   `scores/text_dedup/_parts/signatures/00000.npy` (uint32, rows x num_perm);
   an empty caption gets the all-0xFFFFFFFF signature of the empty set.
2. build (once): insert every signature into a `MinHashLSH`, query each one,
   keep candidate pairs whose estimated Jaccard (share of equal signature
   slots) reaches the threshold, and join pairs into groups (connected
   components). `dup_group` = the smallest global row index in the group;
   `dup_keep` marks one row per group: the highest clip_score when the clip
   stage is complete, else the smallest uid. Rows with an empty caption are
   their own group and kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import polars as pl

from curate.errors import UserError
from curate.stages.base import ShardContext, Stage, load_parts, save_global, shard_offsets, shard_slice
from curate.stages.groups import connected_groups, global_uids_and_scores, keep_one_per_group

PRODUCES = {"dup_group": pl.Int64, "dup_keep": pl.Boolean}
EMPTY = np.uint32(0xFFFFFFFF)  # every slot of an empty set's MinHash


@dataclass(frozen=True)
class TextDedupConfig:
    shingle: str = "char"  # "char" or "word" n-grams
    ngram: int = 5
    num_perm: int = 128
    threshold: float = 0.8  # Jaccard similarity of shingle sets
    seed: int = 1
    SHINGLES: ClassVar[tuple[str, ...]] = ("char", "word")

    def __post_init__(self):
        if self.shingle not in self.SHINGLES:
            raise UserError(f"text_dedup: --dedup-shingle must be one of {self.SHINGLES}, not {self.shingle!r}")
        if not 0 < self.threshold <= 1 or self.ngram < 1 or self.num_perm < 2:
            raise UserError("text_dedup: need 0 < threshold <= 1, ngram >= 1 and num_perm >= 2")


def shingles(caption: str | None, cfg: TextDedupConfig) -> list[bytes]:
    """The caption's set of n-gram shingles as bytes (empty for a blank caption)."""
    text = " ".join((caption or "").lower().split())
    if not text:
        return []
    units = text.split(" ") if cfg.shingle == "word" else text
    joiner = " " if cfg.shingle == "word" else ""
    grams = {joiner.join(units[i:i + cfg.ngram]) for i in range(max(1, len(units) - cfg.ngram + 1))}
    return [g.encode("utf-8", errors="surrogateescape") for g in grams]


def signatures(captions: list[str | None], cfg: TextDedupConfig) -> np.ndarray:
    """MinHash signatures (rows x num_perm, uint32) from `MinHash.bulk`; an empty caption keeps the empty-set signature.

    Shingles are hashed with `zlib.crc32` instead of datasketch's default
    SHA-1: per-shingle hashing in Python is most of the cost, crc32 is ~5x
    cheaper, and datasketch pre-mixes every hash with the MurmurHash3
    finaliser, which makes a weak 32-bit hash safe for its permutations.
    """
    import zlib

    from datasketch import MinHash

    shingle_sets = [shingles(c, cfg) for c in captions]
    result = np.full((len(captions), cfg.num_perm), EMPTY, dtype=np.uint32)
    filled = [i for i, s in enumerate(shingle_sets) if s]
    hashes = MinHash.bulk([shingle_sets[i] for i in filled], num_perm=cfg.num_perm, seed=cfg.seed, hashfunc=zlib.crc32)
    for row, minhash in zip(filled, hashes, strict=True):
        result[row] = minhash.hashvalues
    return result


def prepare(meta: pl.DataFrame, images: Iterator | None, cfg: TextDedupConfig, ctx: ShardContext) -> dict[str, np.ndarray]:
    return {"signatures": signatures(meta["caption"].to_list(), cfg)}


def candidate_pairs(sigs: np.ndarray, rows: np.ndarray, cfg: TextDedupConfig) -> tuple[np.ndarray, np.ndarray]:
    from datasketch import LeanMinHash, MinHashLSH

    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    minhashes = [LeanMinHash(seed=cfg.seed, hashvalues=sigs[row], scheme="affine32") for row in rows]
    with lsh.insertion_session() as session:
        for row, minhash in zip(rows, minhashes, strict=True):
            session.insert(int(row), minhash, check_duplication=False)
    left, right = [], []
    for row, minhash in zip(rows, minhashes, strict=True):
        for other in lsh.query(minhash):
            if other > row:
                left.append(row)
                right.append(other)
    return np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)


def build(pool, cfg: TextDedupConfig, joined: tuple[str, ...]) -> dict:
    sigs = np.concatenate(load_parts(pool, "text_dedup", "signatures"))
    rows = np.flatnonzero(~(sigs == EMPTY).all(axis=1))
    left, right = candidate_pairs(sigs, rows, cfg)
    similar = (sigs[left] == sigs[right]).mean(axis=1) >= cfg.threshold  # drop LSH false positives
    left, right = left[similar], right[similar]
    group = connected_groups(len(sigs), left, right)
    uids, scores = global_uids_and_scores(pool, joined)
    keep = keep_one_per_group(group, uids, scores)
    save_global(pool, "text_dedup", {"offsets": shard_offsets(pool), "dup_group": group, "dup_keep": keep})
    return {"rows": len(sigs), "captions_hashed": len(rows), "similar_pairs": len(left),
            "rows_in_groups": int((np.bincount(group) > 1)[group].sum()), "dropped": int((~keep).sum()),
            "kept_by": "clip_score" if scores is not None else "uid"}


def compute(meta: pl.DataFrame, images: Iterator | None, cfg: TextDedupConfig, ctx: ShardContext) -> pl.DataFrame:
    part = shard_slice(ctx, "text_dedup", ("dup_group", "dup_keep"))
    return pl.DataFrame({"uid": meta["uid"], "dup_group": part["dup_group"], "dup_keep": part["dup_keep"]},
                        schema={"uid": pl.Utf8, **PRODUCES})


STAGE = Stage(name="text_dedup", produces=PRODUCES, compute=compute, config=TextDedupConfig, needs=("uid", "caption"),
              uses=("clip",), prepare=prepare, build=build,
              doc="MinHash+LSH near-duplicate caption groups; one kept per group (highest clip_score, else first uid)")
