"""Benchmark `curate filter` on a 10-million-row metadata-only DataComp-style pool.

Generates (once, cached in --pool) a pool without images (benchlib.metadata_pool:
meta with DataComp-like captions and sizes, a `datacomp` sidecar
(clip_b32_similarity_score, clip_l14_similarity_score) and a `lang`
sidecar), then runs `curate filter` in a subprocess under `/usr/bin/time -v`
and prints wall time and peak RSS for each command.

    .venv/bin/python bench/bench_filter.py --pool /tmp/dc10m --rows 10000000
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import benchlib


def measure(command: list[str]) -> dict:
    """Run a command under /usr/bin/time -v; wall seconds and peak RSS (MiB) of the child."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=benchlib.checkout_env())
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr}")
    def field(name: str) -> float:
        return float(re.search(rf"{re.escape(name)}: ([\d.]+)", done.stderr).group(1))

    return {"wall_s": round(wall, 2), "cpu_s": round(field("User time (seconds)") + field("System time (seconds)"), 2),
            "peak_rss_mib": round(field("Maximum resident set size (kbytes)") / 1024, 1), "stdout": done.stdout.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=Path, default=Path("/tmp/tierclip-bench-dc10m"), help="where to generate the pool")
    parser.add_argument("--rows", type=int, default=10_000_000, help="pool size")
    parser.add_argument("--shard-rows", type=int, default=100_000, help="rows per meta shard")
    parser.add_argument("--out", type=Path, default=Path("/tmp/tierclip-bench-subsets"), help="where subsets go")
    args = parser.parse_args()

    from tierclip.curate.pool import Pool

    started = time.perf_counter()
    pool = Pool(benchlib.metadata_pool(args.pool, args.rows, args.shard_rows))
    print(f"pool {pool.root}: {pool.info.n_samples} rows, {pool.info.n_shards} shards (ready in {time.perf_counter() - started:.1f} s)")
    commands = {
        "fraction 0.3 (L/14)": ["--score", "clip_l14_similarity_score", "--fraction", "0.3"],
        "basic + fraction 0.3 (L/14)": ["--basic", "--score", "clip_l14_similarity_score", "--fraction", "0.3"],
        "min-score 0.28 (B/32)": ["--score", "clip_b32_similarity_score", "--min-score", "0.28"],
    }
    print(f"cpu count {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}")
    for label, options in commands.items():
        out = args.out / re.sub(r"\W+", "_", label)
        result = measure(benchlib.command("curate", "filter", pool.root, "--out", out, *options))
        print(f"{label}: wall {result['wall_s']} s, cpu {result['cpu_s']} s, peak RSS {result['peak_rss_mib']} MiB, "
              f"load {os.getloadavg()[0]:.1f}  "
              f"(curate filter {pool.root} --out {out} {' '.join(options)})")


if __name__ == "__main__":
    main()
