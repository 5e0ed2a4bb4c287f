"""`text_dedup`: near-duplicate captions by MinHash LSH, out of core (signatures -> band buckets -> edges -> groups).

The phases follow NeMo Curator's fuzzy dedup and datatrove's minhash dedup;
every phase reads and writes files, so memory stays bounded by one shard or
one bucket partition, and a killed run resumes at the unfinished task.

1. prepare (per shard, in parallel): normalise each caption (lowercase,
   collapse whitespace), cut it into character or word n-gram shingles and
   compute its MinHash signature with `MinHash.bulk` (hashing vectorised per
   caption; ~8x a per-shingle `MinHash.update` loop). Saved: the signatures
   (`_parts/signatures/00000.npy`, uint32, rows x num_perm; an empty caption
   gets the all-0xFFFFFFFF signature of the empty set), a 64-bit hash of each
   whole signature (`_parts/sig_hash/`), and the LSH band keys as a long table
   (`_parts/bands/00000.parquet`: band, key, row): b bands of r signature slots,
   b and r as datasketch's `MinHashLSH` chooses them for the threshold and
   num_perm, so the candidates are the ones `MinHashLSH` would return.
2. phase `buckets` (one task per band and key partition, in parallel): read
   that band's keys of every shard (predicate pushdown, one row group per
   band), sort by (key, signature hash, row) and walk the runs: rows with an
   identical signature join the first of them; the distinct signatures of a
   bucket are paired all-against-all, except in a bucket larger than
   `max_bucket + 1`, where each pairs only with its next `max_bucket` (counted
   in the stats as capped). Candidate pairs are verified on the signatures
   (share of equal slots >= threshold, as before) and the verified edges are
   written to `_global/edges/TASK.npy`.
3. build: connected components over all edges (`groups.connected_groups`).
   `dup_group` = the smallest global row index in the group; `dup_keep` marks
   one row per group: the highest clip_score when the clip stage is complete,
   else the smallest uid. Rows with an empty caption are their own group and kept.

Without capped buckets the groups equal those of one in-memory `MinHashLSH`
over all signatures (tests/curate/test_text_dedup_scale.py checks it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl
from tierclip.curate.fields import Checked
from tierclip.curate.stages.base import (
    GlobalPhase,
    ShardArrays,
    ShardContext,
    Stage,
    global_dir,
    load_parts,
    option,
    parts_path,
    phase_stats,
    save_global,
    shard_offsets,
    shard_slice,
)
from tierclip.curate.stages.groups import connected_groups, global_uids_and_scores, keep_one_per_group

PRODUCES = {"dup_group": pl.Int64, "dup_keep": pl.Boolean}
EMPTY = np.uint32(0xFFFFFFFF)  # every slot of an empty set's MinHash
KEYS_PER_TASK = 4_000_000  # band keys grouped by one `buckets` task (bounds its memory: ~40 bytes a key)
VERIFY_BATCH = 500_000  # candidate pairs verified at once


@dataclass(frozen=True)
class TextDedupConfig(Checked):
    shingle: str = option("char", "shingle captions into 'char' or 'word' n-grams.", choices=("char", "word"))
    ngram: int = option(5, "n-gram length of a shingle.", ge=1)
    num_perm: int = option(128, "MinHash permutations.", ge=2)
    threshold: float = option(0.8, "Jaccard similarity at or above which captions are near-duplicates.", gt=0, le=1)
    seed: int = option(1, "MinHash seed.", ge=0, le=2**32 - 1)
    max_bucket: int = option(200, "distinct signatures a caption is paired with inside one LSH bucket "
                                  "(bounds the pairs of huge buckets; capped buckets are counted in the stats).", ge=1)


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


def lsh_bands(cfg: TextDedupConfig) -> tuple[int, int]:
    """(b, r): the bands and rows per band `MinHashLSH` picks for this threshold and num_perm."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    return lsh.b, lsh.r


def mix64(block: np.ndarray, salt: int) -> np.ndarray:
    """A 64-bit key per row of a uint32 block: multiply-xor over its columns, then the splitmix64 finaliser.

    Written by hand because MinHashLSH keys its in-memory buckets by the band's
    bytes, which cannot be a compact parquet column; a 64-bit key can. A rare
    collision only adds a candidate pair, and verification removes it.
    """
    h = np.full(len(block), (0x9E3779B97F4A7C15 * (salt + 1)) % 2**64, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in np.asarray(block, dtype=np.uint64).T:
            h = (h ^ column) * np.uint64(0x100000001B3)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


def band_table(sigs: np.ndarray, cfg: TextDedupConfig) -> pl.DataFrame:
    """(band, key, row) for every non-empty caption and band, sorted by band (one parquet row group per band)."""
    b, r = lsh_bands(cfg)
    rows = np.flatnonzero(~(sigs == EMPTY).all(axis=1)).astype(np.int32)
    return pl.DataFrame({
        "band": np.repeat(np.arange(b, dtype=np.uint16), len(rows)),
        "key": np.concatenate([mix64(sigs[rows, i * r:(i + 1) * r], i) for i in range(b)]) if b else np.zeros(0, np.uint64),
        "row": np.tile(rows, b),
    })


def prepare(meta: pl.DataFrame, images: Iterator | None, cfg: TextDedupConfig, ctx: ShardContext) -> dict:
    sigs = signatures(meta["caption"].to_list(), cfg)
    return {"signatures": sigs, "sig_hash": mix64(sigs, 1 << 20), "bands": band_table(sigs, cfg)}


# -- phase `buckets` -----------------------------------------------------------------------
def bucket_tasks(pool, cfg: TextDedupConfig, joined: tuple[str, ...]) -> list[str]:
    b, _ = lsh_bands(cfg)
    subs = max(1, -(-pool.info.n_samples // KEYS_PER_TASK))
    return [f"{band:03d}-{sub:03d}-{subs:03d}" for band in range(b) for sub in range(subs)]


def band_keys(pool, band: int, sub: int, subs: int, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(key, global row) of one band and key partition, read shard by shard."""
    keys, rows = [], []
    for shard in pool.shard_ids():
        path = parts_path(pool, "text_dedup", "bands", shard).with_suffix(".parquet")
        part = (pl.scan_parquet(path).filter((pl.col("band") == band) & (pl.col("key") % subs == sub))
                .select("key", "row").collect())
        keys.append(part["key"].to_numpy())
        rows.append(part["row"].to_numpy().astype(np.int64) + offsets[shard])
    return np.concatenate(keys), np.concatenate(rows)


def bucket_pairs(keys: np.ndarray, rows: np.ndarray, sig_hash: np.ndarray, cap: int) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """("same" | "candidate", left rows, right rows): identical signatures within a bucket, then distinct ones.

    Runs of equal (key, signature hash) join their first row ("same", no check
    needed). The distinct signatures of a bucket are paired with their next 1,
    2, ... `cap` neighbours in row order: all pairs unless the bucket holds more
    than cap + 1 of them. Yielded one distance at a time, so memory stays O(rows).
    """
    order = np.lexsort((rows, sig_hash, keys))
    keys, rows, sig_hash = keys[order], rows[order], sig_hash[order]
    same = (keys[1:] == keys[:-1]) & (sig_hash[1:] == sig_hash[:-1])
    run_start = np.flatnonzero(np.r_[True, ~same])
    first_of_run = run_start[np.searchsorted(run_start, np.arange(len(rows)), side="right") - 1]
    yield "same", rows[first_of_run[1:][same]], rows[1:][same]
    rep_keys, reps = keys[run_start], rows[run_start]
    bucket = np.cumsum(np.r_[True, rep_keys[1:] != rep_keys[:-1]]) - 1
    sizes = np.bincount(bucket) if len(bucket) else np.zeros(0, np.int64)
    active = np.flatnonzero(sizes[bucket] > 1) if len(bucket) else np.zeros(0, np.int64)
    for distance in range(1, cap + 1):
        active = active[active + distance < len(reps)]
        active = active[bucket[active + distance] == bucket[active]]
        if not len(active):
            break
        yield "candidate", reps[active], reps[active + distance]


def similar(signatures: ShardArrays, left: np.ndarray, right: np.ndarray, threshold: float) -> np.ndarray:
    """Mask of pairs whose estimated Jaccard (share of equal signature slots) reaches the threshold."""
    keep = np.zeros(len(left), dtype=bool)
    for start in range(0, len(left), VERIFY_BATCH):
        a, b = signatures.take(left[start:start + VERIFY_BATCH]), signatures.take(right[start:start + VERIFY_BATCH])
        keep[start:start + VERIFY_BATCH] = (a == b).mean(axis=1) >= threshold
    return keep


def bucket_edges(pool, cfg: TextDedupConfig, joined: tuple[str, ...], task: str) -> dict:
    band, sub, subs = (int(x) for x in task.split("-"))
    offsets = shard_offsets(pool)
    keys, rows = band_keys(pool, band, sub, subs, offsets)
    sig_hash = np.concatenate(load_parts(pool, "text_dedup", "sig_hash"))[rows]  # 8 bytes a row
    signatures_ = ShardArrays(pool, "text_dedup", "signatures", offsets)
    left, right, candidates = [], [], 0
    for kind, a, b in bucket_pairs(keys, rows, sig_hash, cfg.max_bucket):
        ok = np.ones(len(a), bool) if kind == "same" else similar(signatures_, a, b, cfg.threshold)
        candidates += len(a) if kind == "candidate" else 0
        left.append(a[ok])
        right.append(b[ok])
    edges = np.stack([np.concatenate(left), np.concatenate(right)], axis=1) if left else np.zeros((0, 2), np.int64)
    edges = np.unique(np.sort(edges, axis=1), axis=0)  # (smaller, larger), sorted: the file is the same on every run
    from tierclip.curate import atomic

    atomic.write_npy(global_dir(pool, "text_dedup") / "edges" / f"{task}.npy", edges)
    capped = capped_buckets(keys, rows, sig_hash, cfg.max_bucket)
    return {"rows": int(len(rows)), "candidate_pairs": candidates, "edges": int(len(edges)), **capped}


def capped_buckets(keys: np.ndarray, rows: np.ndarray, sig_hash: np.ndarray, cap: int) -> dict:
    """How many buckets held more than cap + 1 distinct signatures (paired only with their next `cap`), and their rows."""
    distinct = pl.DataFrame({"key": keys, "h": sig_hash}).unique().group_by("key").len()
    big = distinct.filter(pl.col("len") > cap + 1)
    return {"capped_buckets": big.height, "capped_bucket_signatures": int(big["len"].sum() or 0)}


# -- build (reduce) --------------------------------------------------------------------------
def build(pool, cfg: TextDedupConfig, joined: tuple[str, ...]) -> dict:
    offsets = shard_offsets(pool)
    n_rows = int(offsets[-1])
    files = sorted((global_dir(pool, "text_dedup") / "edges").glob("*.npy"))
    edges = np.concatenate([np.load(f, allow_pickle=False) for f in files]) if files else np.zeros((0, 2), np.int64)
    edges = np.unique(edges, axis=0) if len(edges) else edges
    group = connected_groups(n_rows, edges[:, 0], edges[:, 1])
    uids, scores = global_uids_and_scores(pool, joined)
    keep = keep_one_per_group(group, uids, scores)
    save_global(pool, "text_dedup", {"offsets": offsets, "dup_group": group, "dup_keep": keep})
    empty_hash = mix64(np.full((1, cfg.num_perm), EMPTY, np.uint32), 1 << 20)[0]
    hashed = sum(int((h != empty_hash).sum()) for h in load_parts(pool, "text_dedup", "sig_hash"))
    tasks = phase_stats(pool, "text_dedup", "buckets")
    b, r = lsh_bands(cfg)
    return {"rows": n_rows, "captions_hashed": hashed, "lsh_bands": b, "lsh_rows_per_band": r,
            "candidate_pairs": sum(t["candidate_pairs"] for t in tasks), "similar_pairs": int(len(edges)),
            "capped_buckets": sum(t["capped_buckets"] for t in tasks),
            "capped_bucket_signatures": sum(t["capped_bucket_signatures"] for t in tasks),
            "rows_in_groups": int((np.bincount(group) > 1)[group].sum()) if n_rows else 0, "dropped": int((~keep).sum()),
            "kept_by": "clip_score" if scores is not None else "uid"}


def compute(meta: pl.DataFrame, images: Iterator | None, cfg: TextDedupConfig, ctx: ShardContext) -> pl.DataFrame:
    part = shard_slice(ctx, "text_dedup", ("dup_group", "dup_keep"))
    return pl.DataFrame({"uid": meta["uid"], "dup_group": part["dup_group"], "dup_keep": part["dup_keep"]},
                        schema={"uid": pl.Utf8, **PRODUCES})


STAGE = Stage(name="text_dedup", produces=PRODUCES, compute=compute, config=TextDedupConfig, needs=("uid", "caption"),
              uses=("clip",), prepare=prepare,
              phases=(GlobalPhase("buckets", bucket_tasks, bucket_edges),), build=build,
              doc="MinHash+LSH near-duplicate caption groups; one kept per group (highest clip_score, else first uid)")
