"""Exact-membership sets of 64-bit hashes that cost 8 bytes per item.

Duplicate keys and uids must be found across the whole pool, but a Python set
of millions of strings would grow by ~100 bytes a row. Hand-written because no
library here offers an exact, compact, append-only membership set: sorted
numpy runs merged like a log-structured merge tree (O(log n) runs, each
searched with `np.searchsorted`). A 64-bit hash collision (≈ n²/2⁶⁵) can flag
a false duplicate; at 100 M rows that is a 3-in-10,000 chance per pool.
"""

from __future__ import annotations

import hashlib

import numpy as np


def hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", errors="surrogateescape"), digest_size=8).digest(), "little")


class SeenSet:
    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []
        self._pending: set[int] = set()

    def __contains__(self, item: int) -> bool:
        if item in self._pending:
            return True
        probe = np.uint64(item)
        return any(_in_sorted(run, probe) for run in self._runs)

    def add(self, item: int) -> None:
        self._pending.add(item)

    def contains_many(self, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items, dtype=np.uint64)
        found = np.zeros(items.shape, dtype=bool)
        for run in self._runs:
            pos = np.searchsorted(run, items).clip(max=run.size - 1)
            found |= run[pos] == items
        if self._pending:
            found |= np.isin(items, np.fromiter(self._pending, dtype=np.uint64, count=len(self._pending)))
        return found

    def add_many(self, items: np.ndarray) -> None:
        self.flush()
        self._push(np.unique(np.asarray(items, dtype=np.uint64)))

    def flush(self) -> None:
        """Move pending items into the sorted runs (call once per shard)."""
        if self._pending:
            self._push(np.array(sorted(self._pending), dtype=np.uint64))
            self._pending.clear()

    def _push(self, run: np.ndarray) -> None:
        while self._runs and self._runs[-1].size <= run.size:
            run = np.union1d(self._runs.pop(), run)
        if run.size:
            self._runs.append(run)


def _in_sorted(run: np.ndarray, probe: np.uint64) -> bool:
    pos = int(np.searchsorted(run, probe))
    return pos < run.size and run[pos] == probe
