"""Subset set operations (intersect, union, minus) and DataComp `.npy` export / import.

DataComp's baselines save a subset as `np.save(path, uids)` where `uids` is a
sorted structured array of dtype `np.dtype("u8,u8")` (fields f0, f1 = the
high and low 64 bits of the 128-bit uid). Sorting that array orders by
(f0, f1), which is the order of the 32-character lowercase hex strings in
`uids.parquet`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from tierclip.curate.errors import UserError
from tierclip.curate.npyio import load_user_npy
from tierclip.curate.pool import Pool, check_not_pool_files
from tierclip.curate.selection.uidorder import sort_uids
from tierclip.curate.subset import Subset, check_subset_pool, pool_ref, read_subset, write_subset

DATACOMP_DTYPE = np.dtype("u8,u8")

SET_OPS = {
    "intersect": lambda a, b: a.join(b, on="uid", how="semi"),
    "union": lambda a, b: pl.concat([a, b]).unique(),
    "minus": lambda a, b: a.join(b, on="uid", how="anti"),
}
SET_SYMBOLS = {"intersect": "∩", "union": "∪", "minus": "−"}


def check_same_pool(a: Subset, b: Subset) -> None:
    name_a, name_b = a.manifest.get("pool", {}).get("name"), b.manifest.get("pool", {}).get("name")
    if name_a is None or name_b is None:
        missing = a if name_a is None else b
        raise UserError(f"{missing.path}/manifest.json: no pool recorded; cannot check that both subsets share a pool")
    if name_a != name_b:
        raise UserError(f"{b.path}: subset is from pool '{name_b}' but {a.path} is from pool '{name_a}'; "
                        "set operations need subsets of the same pool")
    print_a, print_b = a.manifest["pool"].get("fingerprint"), b.manifest["pool"].get("fingerprint")
    if print_a and print_b and print_a != print_b:
        raise UserError(f"{b.path}: subset is from another pool named '{name_b}' than {a.path} (pool fingerprints "
                        f"{print_b} vs {print_a}); set operations need subsets of the same pool")


def combine(op: str, a_path: str | Path, b_path: str | Path, out: str | Path) -> Subset:
    """Write `A op B` as a new subset (its manifest names both parents)."""
    if op not in SET_OPS:
        raise UserError(f"unknown set operation '{op}' (choose from {', '.join(SET_OPS)})")
    a, b = read_subset(a_path), read_subset(b_path)
    check_same_pool(a, b)
    uids = sort_uids(SET_OPS[op](a.uids, b.uids)["uid"])
    manifest = {"pool": a.manifest["pool"], "rule": f"({a.name}) {SET_SYMBOLS[op]} ({b.name})", "operation": op,
                "thresholds": {}, "fraction": None, "parent": [str(a.path), str(b.path)],
                "drop_counts": {}, "parent_n": [a.n, b.n]}
    return write_subset(out, uids, manifest)


# -- DataComp .npy ---------------------------------------------------------------------
def uids_to_u8_pairs(uids: pl.Series) -> np.ndarray:
    frame = pl.DataFrame({"uid": uids}).select(
        pl.col("uid").str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64).alias("f0"),
        pl.col("uid").str.slice(16, 16).str.to_integer(base=16, dtype=pl.UInt64).alias("f1"),
    )
    pairs = np.empty(frame.height, dtype=DATACOMP_DTYPE)
    pairs["f0"], pairs["f1"] = frame["f0"].to_numpy(), frame["f1"].to_numpy()
    return pairs


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def u8_pairs_to_uids(pairs: np.ndarray) -> pl.Series:
    """Vectorised hex formatting (a Python f-string per uid costs ~1 s per million)."""
    big_endian = np.empty((len(pairs), 2), dtype=">u8")
    big_endian[:, 0], big_endian[:, 1] = pairs["f0"], pairs["f1"]
    octets = big_endian.view(np.uint8).reshape(len(pairs), 16)
    text = np.empty((len(pairs), 32), dtype=np.uint8)
    text[:, 0::2], text[:, 1::2] = _HEX_DIGITS[octets >> 4], _HEX_DIGITS[octets & 15]
    return pl.Series("uid", text.view("S32").ravel(), dtype=pl.Binary).cast(pl.Utf8)


def export_npy(subset_path: str | Path, out: str | Path) -> int:
    """Write a subset's uids as DataComp's sorted `u8,u8` array; returns the row count."""
    from tierclip.curate import atomic

    subset = read_subset(subset_path)
    check_not_pool_files(out)
    pairs = uids_to_u8_pairs(subset.uids["uid"])
    pairs.sort()
    atomic.write_npy(out, pairs)
    return len(pairs)


def read_npy(path: str | Path) -> np.ndarray:
    path = Path(path)
    array = load_user_npy(path, "DataComp uid")
    if array.dtype.names is None or len(array.dtype.names) != 2 or any(
            array.dtype[name] != np.dtype("u8") for name in array.dtype.names) or array.ndim != 1:
        raise UserError(f"{path}: expected DataComp's 1-d array of dtype u8,u8, got {array.dtype} with shape {array.shape}")
    return array.view(DATACOMP_DTYPE) if array.dtype.names != ("f0", "f1") else array


def import_npy(path: str | Path, pool: Pool, out: str | Path) -> Subset:
    """A DataComp uid array becomes a subset of `pool`; every uid must be in the pool."""
    uids = u8_pairs_to_uids(read_npy(path))
    pool_uids = pool.scan_meta().select("uid")
    unknown = pl.DataFrame({"uid": uids}).lazy().join(pool_uids, on="uid", how="anti").collect()
    if unknown.height:
        raise UserError(f"{path}: {unknown.height} of {len(uids)} uids are not in pool {pool.name} "
                        f"({pool.root}), e.g. {unknown['uid'][0]}; is it a subset of another pool?")
    manifest = {"pool": pool_ref(pool), "rule": f"imported from {Path(path).name} (DataComp uid array)",
                "thresholds": {}, "fraction": None, "parent": None, "drop_counts": {}, "source_npy": str(Path(path).resolve())}
    return write_subset(out, sort_uids(uids), manifest)


def check_subset_of(subset_path: str | Path, pool: Pool) -> Subset:
    subset = read_subset(subset_path)
    check_subset_pool(subset, pool)
    return subset
