"""Cost of the scoring stages that need no images on DataComp-style pools of growing size (not a test).

    nice .venv/bin/python bench/bench_scale.py --sizes 10000,100000 --work /tmp/bench-scale
    nice .venv/bin/python bench/bench_scale.py --sizes 100000 --recall   # image_dedup inverted lists vs exact search

Builds (or reuses) one DataComp-style input per size: metadata parquet files
plus the `.npz` beside each (`l14_img`, `l14_txt`: 768-d, float16) with
captions from word lists (~30 % near-duplicates: copies and one-word edits of
earlier captions) and clustered image embeddings (~10 % near-copies of an
earlier image), ingests it with `curate ingest datacomp` (the library call),
then runs basic, lang, text_dedup, image_dedup and cluster one at a time, each
in a fresh process, and prints a Markdown table of wall time, pairs/s and peak
RSS of the main process and of the largest worker. From the two largest sizes
it projects time and memory for 12.8M rows (a power law fitted to the measured
growth). `--recall` instead checks text_dedup's groups against one in-memory
MinHashLSH (the previous implementation) and measures the recall of
image_dedup's inverted lists against the exact flat search for probe 1, 2, 3.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

import benchlib

STAGES = ("basic", "lang", "text_dedup", "image_dedup", "cluster")
ROWS_PER_FILE = 50_000
DIM = 768
TARGET = 12_800_000
NODE_CORES = 96  # CPU cores assumed for one 8-GPU node in the projection (e.g. 2 x 48-core CPUs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma list of pool sizes (rows)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-scale"), help="folder for inputs and pools")
    parser.add_argument("--workers", type=int, default=2, help="runner worker processes")
    parser.add_argument("--stages", default=",".join(STAGES), help="stages to time")
    parser.add_argument("--clusters", type=int, default=100, help="cluster stage: k of k-means")
    parser.add_argument("--recall", action="store_true", help="measure image_dedup recall vs exact search instead")
    parser.add_argument("--text-only", action="store_true", help="with --recall: only compare text_dedup with MinHashLSH")
    parser.add_argument("--hard", action="store_true", help="near-copy images spread around the 0.95 threshold (for --recall)")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: time one stage on one pool in this process
    parser.add_argument("--build", type=int, help=argparse.SUPPRESS)  # internal: build one pool in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(time_stage(Path(args.one[0]), args.one[1], args.workers, args.clusters)))
        return
    if args.build:
        build_pool(args.work, args.build, args.hard)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:  # in a subprocess: Linux keeps a parent's peak RSS across fork+exec, so this process stays small
        benchlib.run_command(benchlib.script(__file__, build=n, work=args.work, hard=args.hard))
    pools = {n: args.work / (f"pool-hard-{n}" if args.hard else f"pool-{n}") for n in sizes}
    if args.recall:
        for n in sizes:
            print(json.dumps(text_groups_vs_in_memory(pools[n], args.workers)), flush=True)
            if not args.text_only:
                print(json.dumps(recall(pools[n], args.workers)), flush=True)
        return
    results = {}
    for n in sizes:
        for stage in args.stages.split(","):
            results[(stage, n)] = benchlib.last_json_line(benchlib.script(__file__, "--one", pools[n], stage,
                                                                          workers=args.workers, clusters=args.clusters))
            print(f"{stage} {n}: {results[(stage, n)]}", file=sys.stderr, flush=True)
    print_table(results, sizes, args.stages.split(","))


# -- inputs ------------------------------------------------------------------------------------
def vocabulary(rng, size: int = 3000) -> list[str]:
    syllables = "ka lo mi ne ra su te vi zo pa da ge hu ji ma no ri sa to ve wa ye bo ce fi".split()
    words = {"".join(rng.choice(syllables, size=rng.integers(1, 4))) for _ in range(size * 2)}
    return sorted(words)[:size]


def make_captions(rng, n: int, words: list[str]) -> list[str]:
    """Alt-text-like captions: 4-16 words; ~30 % copy an earlier caption, half of those with one word changed."""
    lengths = rng.integers(4, 17, n)
    picks = rng.integers(0, len(words), int(lengths.sum()))
    captions, start = [], 0
    for length in lengths:
        captions.append(" ".join(words[i] for i in picks[start:start + length]))
        start += length
    copies = np.flatnonzero(rng.random(n) < 0.3)
    copies = copies[copies > 0]
    for row in copies:
        source = captions[int(rng.integers(0, row))].split()
        if rng.random() < 0.5:
            source[int(rng.integers(0, len(source)))] = words[int(rng.integers(0, len(words)))]
        captions[row] = " ".join(source)
    return captions


def make_embeddings(rng, n: int, centers, hard: bool = False) -> tuple:
    """Unit image embeddings around 1000 topic centres; ~10 % near-copies of an earlier row; text = image + noise.

    Near-copies are at cosine ~0.9999, or with `hard` spread over ~0.93-0.996 (about 60 % above the 0.95
    threshold), where pairs near the threshold can fall into different inverted lists.
    """
    image = centers[rng.integers(0, len(centers), n)] + 0.6 * rng.standard_normal((n, DIM), dtype=np.float32)
    copies = np.flatnonzero(rng.random(n) < 0.1)
    copies = copies[copies > 0]
    scale = rng.uniform(0.1, 0.5, (len(copies), 1)).astype(np.float32) if hard else np.float32(0.01)
    sources = (rng.random(len(copies)) * copies).astype(np.int64)
    image[copies] = image[sources] + scale * rng.standard_normal((len(copies), DIM), dtype=np.float32)
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    text = image + 0.5 * rng.standard_normal((n, DIM), dtype=np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    return image.astype(np.float16), text.astype(np.float16)


def build_pool(work: Path, n: int, hard: bool = False) -> Path:
    import polars as pl
    from tierclip.curate.ingest.datacomp import open_datacomp
    from tierclip.curate.ingest.run import run_ingest

    label = f"hard-{n}" if hard else f"{n}"
    source, pool = work / f"dc-{label}", work / f"pool-{label}"
    if (pool / "pool.json").exists():
        return pool
    rng = np.random.default_rng(n)
    words = vocabulary(rng)
    centers = rng.standard_normal((1000, DIM), dtype=np.float32)
    source.mkdir(parents=True, exist_ok=True)
    for part, start in enumerate(range(0, n, ROWS_PER_FILE)):
        rows = min(ROWS_PER_FILE, n - start)
        path = source / f"{part:08d}.parquet"
        uids = rng.integers(0, 2**63, size=(rows, 2))
        pl.DataFrame({
            "uid": [f"{a:016x}{b:016x}" for a, b in uids], "url": [f"http://example.invalid/{start + i}.jpg" for i in range(rows)],
            "text": make_captions(rng, rows, words),
            "original_width": rng.integers(100, 1500, rows), "original_height": rng.integers(100, 1500, rows),
            "clip_b32_similarity_score": rng.random(rows), "clip_l14_similarity_score": rng.random(rows),
        }).write_parquet(path)
        image, text = make_embeddings(rng, rows, centers, hard)
        np.savez(path.with_suffix(".npz"), l14_img=image, l14_txt=text)
    run_ingest(open_datacomp(source, "l14"), pool, shard_size=max(2_500, n // 8))
    return pool


# -- one measurement ----------------------------------------------------------------------------
def time_stage(pool: Path, stage: str, workers: int, clusters: int = 100) -> dict:
    from tierclip.curate.pool import Pool
    from tierclip.curate.scoring.runner import score_pool
    from tierclip.curate.stages.cluster import ClusterConfig

    start = time.perf_counter()
    [report] = score_pool(pool, [stage], {"cluster": ClusterConfig(k=clusters)}, workers=workers, force=True, progress=False)
    seconds = time.perf_counter() - start
    build = report.build or {}
    return {"rows": Pool(pool).info.n_samples, "seconds": round(seconds, 2),
            "rss_main_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "rss_worker_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
            "build": {k: v for k, v in build.items() if isinstance(v, int | float)}}


def text_groups_vs_in_memory(pool: Path, workers: int) -> dict:
    """Are the out-of-core text_dedup groups those of one in-memory MinHashLSH (the previous build) on this pool?"""
    from datasketch import LeanMinHash, MinHashLSH
    from tierclip.curate.pool import Pool
    from tierclip.curate.scoring.runner import score_pool
    from tierclip.curate.stages.base import load_parts
    from tierclip.curate.stages.groups import connected_groups
    from tierclip.curate.stages.text_dedup import EMPTY, TextDedupConfig

    cfg, opened = TextDedupConfig(), Pool(pool)
    score_pool(pool, ["text_dedup"], workers=workers, force=True, progress=False)
    ours = opened.scan_scores("text_dedup").collect()["dup_group"].to_numpy()
    sigs = np.concatenate(load_parts(opened, "text_dedup", "signatures"))
    start = time.perf_counter()
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
    hashes = {int(r): LeanMinHash(seed=cfg.seed, hashvalues=sigs[r], scheme="affine32")
              for r in np.flatnonzero(~(sigs == EMPTY).all(axis=1))}
    with lsh.insertion_session() as session:
        for row, minhash in hashes.items():
            session.insert(row, minhash, check_duplication=False)
    pairs = np.asarray([(r, o) for r, mh in hashes.items() for o in lsh.query(mh) if o > r], dtype=np.int64).reshape(-1, 2)
    pairs = pairs[(sigs[pairs[:, 0]] == sigs[pairs[:, 1]]).mean(axis=1) >= cfg.threshold]
    theirs = connected_groups(len(sigs), pairs[:, 0], pairs[:, 1])
    return {"rows": len(sigs), "groups_equal": bool(np.array_equal(ours, theirs)), "rows_differing": int((ours != theirs).sum()),
            "in_memory_seconds": round(time.perf_counter() - start, 1)}


def recall(pool: Path, workers: int) -> dict:
    """Share of the exact search's above-threshold pairs that the inverted lists find, per probe."""
    from tierclip.curate.pool import Pool
    from tierclip.curate.scoring.runner import score_pool
    from tierclip.curate.stages.embeddings import load_image_embeddings
    from tierclip.curate.stages.image_dedup import ImageDedupConfig, near_pairs

    cfg = ImageDedupConfig()
    start = time.perf_counter()
    left, right = near_pairs(load_image_embeddings(Pool(pool)), cfg.threshold, cfg.neighbours)
    exact = set(zip(np.minimum(left, right).tolist(), np.maximum(left, right).tolist(), strict=True))
    result = {"rows": Pool(pool).info.n_samples, "exact_pairs": len(exact), "exact_seconds": round(time.perf_counter() - start, 1)}
    for probe in (1, 2, 3):
        start = time.perf_counter()
        score_pool(pool, ["image_dedup"], {"image_dedup": ImageDedupConfig(exact_max=0, probe=probe)}, workers=workers,
                   force=True, progress=False)
        folder = Pool(pool).stage_files("image_dedup").global_dir / "edges"
        edges = np.concatenate([np.load(f) for f in sorted(folder.glob("*.npy"))])
        found = set(map(tuple, edges.tolist()))
        result[f"probe{probe}"] = {"recall": round(len(exact & found) / max(1, len(exact)), 4), "pairs": len(found),
                                   "seconds": round(time.perf_counter() - start, 1)}
    return result


# -- report -------------------------------------------------------------------------------------
def print_table(results: dict, sizes: list[int], stages: list[str]) -> None:
    print("| stage | rows | seconds | pairs/s | peak RSS main (MiB) | peak RSS largest worker (MiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for stage in stages:
        for n in sizes:
            r = results[(stage, n)]
            print(f"| {stage} | {n:,} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | {r['rss_main_mib']:,} | {r['rss_worker_mib']:,} |")
    for n in sizes:
        print(f"\nwhole score ({', '.join(stages)}) at {n:,} rows: {sum(results[(s, n)]['seconds'] for s in stages):,.0f} s")
    if len(sizes) < 2:
        return
    small, large = sizes[-2], sizes[-1]
    print(f"\nProjection to {TARGET:,} rows (power law through {small:,} and {large:,} rows):\n")
    print("| stage | time growth exponent | per-pair cost ratio | projected time | projected peak RSS (max of main, worker) |")
    print("|---|---:|---:|---:|---:|")
    total = 0.0
    for stage in stages:
        a, b = results[(stage, small)], results[(stage, large)]
        exponent = math.log(b["seconds"] / a["seconds"]) / math.log(large / small)
        seconds = b["seconds"] * (TARGET / large) ** exponent
        rss_a, rss_b = max(a["rss_main_mib"], a["rss_worker_mib"]), max(b["rss_main_mib"], b["rss_worker_mib"])
        rss_exp = math.log(rss_b / rss_a) / math.log(large / small)
        rss = rss_b * (TARGET / large) ** rss_exp
        total += seconds
        ratio = (b["seconds"] / large) / (a["seconds"] / small)
        print(f"| {stage} | {exponent:.2f} | {ratio:.2f} | {seconds / 60:,.0f} min | {rss / 1024:,.1f} GiB |")
    print(f"\nwhole score at {TARGET:,} rows on this box: ~{total / 3600:.1f} h")
    print(f"one 8-GPU node, assuming {NODE_CORES} CPU cores and every phase task-parallel (shards, LSH bands, list and "
          f"cluster groups; FAISS on CPU, the GPU index is not used): ~{total * 2 / NODE_CORES / 60:.1f} min "
          f"(an assumption-based projection, not a measurement)")


import numpy as np  # noqa: E402  (after the docstring-driven argparse setup; every path needs it)

if __name__ == "__main__":
    main()
