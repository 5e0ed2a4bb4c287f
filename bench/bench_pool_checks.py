"""What the robustness checks cost: opening a pool (pool.json against its files) and its uid fingerprint.

Builds a metadata-only pool of --rows rows in --shards shards (benchlib.metadata_pool), then times
`Pool(root, check_files=False)`, `Pool(root)` (directory listings + parquet footers) and
`Pool.fingerprint()` (blake2b of the sorted uids; computed when a subset is written and when
`train run` checks one).

    .venv/bin/python bench/bench_pool_checks.py --rows 1000000 --shards 100
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import benchlib


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=100)
    args = parser.parse_args()
    from tierclip.curate.pool import Pool

    scratch = Path(tempfile.mkdtemp(prefix="pool-checks-"))
    try:
        root = benchlib.metadata_pool(scratch / "pool", args.rows, -(-args.rows // args.shards))
        plain, _ = timed(lambda: Pool(root, check_files=False))
        checked, pool = timed(lambda: Pool(root))
        fingerprint, _ = timed(pool.fingerprint)
        print(f"{args.rows:,} rows in {pool.info.n_shards} shards: open without checks {plain * 1000:.1f} ms, "
              f"open with checks {checked * 1000:.1f} ms, fingerprint {fingerprint:.2f} s")
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
