"""What the robustness checks cost: opening a pool (pool.json against its files) and its uid fingerprint.

Builds a metadata-only pool of --rows rows in --shards shards (random uids), then times
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

import numpy as np
from tierclip.curate.pool import OK, Pool, PoolInfo, meta_frame, write_meta, write_pool_info


def build(root: Path, rows: int, shards: int) -> None:
    rng = np.random.default_rng(0)
    per_shard = -(-rows // shards)
    for shard in range(shards):
        n = min(per_shard, rows - shard * per_shard)
        uids = [f"{int(a):016x}{int(b):016x}" for a, b in rng.integers(0, 2**63, size=(n, 2))]
        write_meta(root, shard, meta_frame([dict(uid=u, key=u[:12], shard=shard, caption="a photo", url=None,
                                                 width=256, height=256, status=OK, error=None) for u in uids]))
    write_pool_info(root, PoolInfo("bench", "bench_pool_checks.py", "2026-01-01T00:00:00+00:00", rows, shards))


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=100)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pool-checks-"))
    try:
        build(root, args.rows, args.shards)
        plain, _ = timed(lambda: Pool(root, check_files=False))
        checked, pool = timed(lambda: Pool(root))
        fingerprint, _ = timed(pool.fingerprint)
        print(f"{args.rows:,} rows in {args.shards} shards: open without checks {plain * 1000:.1f} ms, "
              f"open with checks {checked * 1000:.1f} ms, fingerprint {fingerprint:.2f} s")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
