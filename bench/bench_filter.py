"""Benchmark `curate filter` on a 10-million-row metadata-only DataComp-style pool.

Generates (once, cached in --pool) a pool without images: meta with
DataComp-like captions and sizes, a `datacomp` sidecar
(clip_b32_similarity_score, clip_l14_similarity_score) and a `lang`
sidecar, then runs `curate filter` in a subprocess under `/usr/bin/time -v`
and prints wall time and peak RSS for each command.

    .venv/bin/python bench/bench_filter.py --pool /tmp/dc10m --rows 10000000
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from tierclip.curate.pool import OK, Pool, PoolInfo, write_meta, write_pool_info
from tqdm import tqdm

WORDS = np.array(("a photo of the red blue green small large old new dog cat car house tree city beach "
                  "mountain river people man woman child food table chair book phone street night sky "
                  "sunset garden flower kitchen room view logo shirt dress shoes sale free stock image").split())


def _uids(rng: np.random.Generator, n: int) -> list[str]:
    text = rng.bytes(16 * n).hex()
    return [text[i: i + 32] for i in range(0, len(text), 32)]


def _captions(rng: np.random.Generator, n: int) -> list[str]:
    lengths = rng.integers(1, 14, n)
    words = WORDS[rng.integers(0, len(WORDS), int(lengths.sum()))].tolist()
    out, start = [], 0
    for length in lengths.tolist():
        out.append(" ".join(words[start: start + length]))
        start += length
    return out


def _shard_frames(rng: np.random.Generator, shard: int, first: int, n: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    uids = _uids(rng, n)
    keys = [f"{first + i:09d}" for i in range(n)]
    meta = pl.DataFrame({
        "uid": uids, "key": keys, "shard": np.full(n, shard, np.int32), "caption": _captions(rng, n),
        "url": [f"https://example.com/{k}.jpg" for k in keys],
        "width": rng.integers(32, 1600, n).astype(np.int32), "height": rng.integers(32, 1600, n).astype(np.int32),
        "status": [OK] * n, "error": pl.Series([None] * n, dtype=pl.Utf8),
    })
    b32 = np.round(rng.normal(0.28, 0.05, n), 4).astype(np.float32)  # rounded: ties, as in real metadata
    l14 = np.round(b32 * 0.9 + rng.normal(0.0, 0.03, n), 4).astype(np.float32)
    datacomp = pl.DataFrame({"uid": uids, "clip_b32_similarity_score": b32, "clip_l14_similarity_score": l14})
    langs = np.where(rng.random(n) < 0.6, "en", "de")
    lang = pl.DataFrame({"uid": uids, "lang": langs, "lang_prob": rng.random(n).astype(np.float32), "lang_datacomp": langs})
    return meta, datacomp, lang


def generate(root: Path, rows: int, shard_rows: int, seed: int = 0) -> Pool:
    """Write the metadata-only pool (kept and reused once complete: the `.bench-complete` marker)."""
    marker = root / ".bench-complete"
    if (marker.is_file() and Pool(root).info.n_samples == rows
            and "lang_datacomp" in pl.read_parquet_schema(Pool(root).scores_path("lang", 0))):
        return Pool(root)
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    n_shards = (rows + shard_rows - 1) // shard_rows
    write_pool_info(root, PoolInfo("bench-datacomp", "bench_filter.py", "2026-01-01T00:00:00+00:00", rows, n_shards))
    pool = Pool(root)
    for shard in tqdm(range(n_shards), desc="generate", unit="shard"):
        first = shard * shard_rows
        meta, datacomp, lang = _shard_frames(rng, shard, first, min(shard_rows, rows - first))
        write_meta(root, shard, meta)
        pool.write_scores("datacomp", shard, datacomp)
        pool.write_scores("lang", shard, lang)
    marker.write_text("")
    return pool


def measure(command: list[str]) -> dict:
    """Run a command under /usr/bin/time -v; wall seconds and peak RSS (MiB) of the child."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
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

    started = time.perf_counter()
    pool = generate(args.pool, args.rows, args.shard_rows)
    print(f"pool {pool.root}: {pool.info.n_samples} rows, {pool.info.n_shards} shards (ready in {time.perf_counter() - started:.1f} s)")
    curate = [str(Path(sys.executable).with_name("curate"))]
    if not Path(curate[0]).exists():
        curate = [sys.executable, "-m", "tierclip.curate.cli"]
    commands = {
        "fraction 0.3 (L/14)": ["--score", "clip_l14_similarity_score", "--fraction", "0.3"],
        "basic + fraction 0.3 (L/14)": ["--basic", "--score", "clip_l14_similarity_score", "--fraction", "0.3"],
        "min-score 0.28 (B/32)": ["--score", "clip_b32_similarity_score", "--min-score", "0.28"],
    }
    print(f"cpu count {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}")
    for label, options in commands.items():
        out = args.out / re.sub(r"\W+", "_", label)
        result = measure([*curate, "filter", str(pool.root), "--out", str(out), *options])
        print(f"{label}: wall {result['wall_s']} s, cpu {result['cpu_s']} s, peak RSS {result['peak_rss_mib']} MiB, "
              f"load {os.getloadavg()[0]:.1f}  "
              f"(curate filter {pool.root} --out {out} {' '.join(options)})")


if __name__ == "__main__":
    main()
