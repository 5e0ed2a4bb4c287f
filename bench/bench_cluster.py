"""Global curation phases on a real two-raylet Ray cluster on this machine: per-node throughput, bytes each phase
moves, and a projection to DataComp's small (12.8M) and medium (128M) pools on N nodes (not a test).

    nice .venv/bin/python bench/bench_cluster.py --sizes 20000,80000 --work /tmp/bench-cluster

Builds DataComp-style metadata pools with imported 768-d embeddings (bench_scale.py's `build_pool`), starts a Ray
cluster of two raylets with one CPU each (tests/curate/scoring/ray_cluster.py: a head and a second node, token
authentication, ports picked free), and runs `curate score --stages text_dedup,image_dedup,cluster --engine ray`
on each pool through an engine that measures every task where it runs: wall and CPU seconds, the node, and the
bytes the task read and wrote (`rchar`/`wchar` of /proc/self/io around the task: on a shared filesystem every one
of those bytes crosses the network between a node and the storage; Ray itself moves only the task arguments and
the small stats returned). image_dedup runs its inverted lists at every size (`--image-dedup-exact-max 0`, as at
DataComp's sizes) and cluster has k = rows / 1,000 (docs/benchmarks.md: what keeps SemDeDup linear).

Per phase it prints tasks, task-seconds, CPU-seconds, rows per second per node (pool rows / task-seconds: a node
with one CPU runs its tasks one after another), MB read and written, and the nodes that ran its tasks; then the
fits and projections below, and last the one summary table docs/benchmarks.md shows.

The projection keeps each phase's structure. A per-shard phase costs the measured seconds and bytes per row
(shards of 100,000 rows at the target). A one-task phase (k-means, build) follows the power law through the two
sizes. A partitioned phase (text_dedup buckets, image_dedup search, cluster semdedup) is measured at each size
twice, with the code's partitions and with FINE tasks (the partition sizes patched in the driver, which names
the tasks; thin slices of every shard, as at the target): per task, cost = a x its work items + c0 + sigma x
pool rows, sigma being the pool-wide arrays every task reads; at the target the code's task count T gives
a x work + T x (c0 + sigma x rows): quadratic in the pool where sigma > 0. Time on
N nodes of C cores = task-seconds / min(N x C, tasks) (k-means: / C, one task on a whole node with FAISS's threads),
or the node's share of the bytes over its link if longer: a phase stops scaling where the tasks run out or the
bytes per task grow with the pool. `--replay OUTPUT` prints the tables again from an earlier run's output.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # this checkout's code, the test's Ray cluster helper, bench_scale's pools
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)  # Ray workers too

STAGES = ("text_dedup", "image_dedup", "cluster")
TARGETS = {"DataComp small": 12_800_000, "DataComp medium": 128_000_000}
SHARD_ROWS = 100_000  # rows per shard at the target (`curate ingest datacomp`'s default)
NODES = (1, 4, 16, 64)
CORES = 32  # CPU cores per node assumed by the projection
LINK_GBPS = 10  # network per node assumed by the projection (Gbit/s)
SHARD_PHASES = ("image_dedup lists", "cluster assign")  # global phases with one task per shard, like prepare and compute
FINE = 32  # the partitioned phases' second measurement: this many tasks (thin slices of each shard, as at the target)
RECORDS: list[dict] = []


def io_counters() -> tuple[int, int]:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["rchar"]), int(fields["wchar"])


def measured(fn):
    """`fn` wrapped to return its result with where and at what cost it ran (runs in the Ray worker)."""
    def run(task):
        import ray

        read, written = io_counters()
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn(task)
        read_after, written_after = io_counters()
        record = {"label": task.label, "node": ray.get_runtime_context().get_node_id(), "wall": time.perf_counter() - wall,
                  "cpu": time.process_time() - cpu, "read": read_after - read, "written": written_after - written}
        return {"result": result, "record": record}

    run.__name__ = fn.__name__
    return run


def measuring_engine():
    from tierclip.curate.scoring.engines import RayEngine

    class MeasuredRayEngine(RayEngine):
        def map(self, fn, tasks, max_workers=None):
            for out in super().map(measured(fn), tasks, max_workers):
                RECORDS.append(out["record"])
                yield out["result"]

    return MeasuredRayEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20000,80000", help="comma list of two pool sizes (rows)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-cluster"), help="folder for inputs and pools")
    parser.add_argument("--replay", type=Path, help="print the tables again from the last line (JSON) of an earlier output")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.replay:
        recorded = json.loads(args.replay.read_text().strip().splitlines()[-1])
        phases = {(name, int(rows), partitions): v for key, v in recorded.items() for name, rows, partitions in [key.split("@")]}
    else:
        phases = measure_under_load(args.work, sizes)
    print_measured(phases, sizes)
    print_fits(phases, sizes)
    print_projection(phases, sizes)
    print_summary(phases, sizes)
    print("\n" + json.dumps({"@".join(map(str, k)): v for k, v in phases.items()}))


def measure_under_load(work: Path, sizes: list[int]) -> dict[tuple[str, int, str], dict]:
    from bench_scale import build_pool

    pools = {n: build_pool(work, n) for n in [5_000, *sizes]}  # 5,000: a warm-up (workers import everything)
    load = [os.getloadavg()[0]]
    phases = measure(pools)
    load.append(os.getloadavg()[0])
    print(f"load average (1 min) at start and end: {load[0]:.1f}, {load[1]:.1f} on {os.cpu_count()} cores\n")
    return phases


def measure(pools: dict[int, Path]) -> dict[tuple[str, int, str], dict]:
    """{(phase, rows, partitions): totals} over every task of every stage, each size scored with force on the cluster."""
    from tests.curate.scoring.ray_cluster import RayCluster

    cluster = RayCluster()
    try:
        cluster.start_head(num_cpus=1)
        cluster.add_node("second", num_cpus=1)
        os.environ.update({k: v for k, v in cluster.env.items() if k.startswith("RAY_AUTH")})  # before Ray is imported
        return score_sizes(cluster.address, pools)
    finally:
        cluster.stop()


def score_sizes(address: str, pools: dict[int, Path]) -> dict[tuple[str, int, str], dict]:
    import ray

    phases = {}
    ray.init(address=address, log_to_driver=False, configure_logging=False)  # one job for every size: workers stay warm
    try:
        for n, pool in pools.items():
            phases.update(score_once(address, pool, n, "code"))
            with finer_partitions(n):
                phases.update(score_once(address, pool, n, "fine"))
    finally:
        ray.shutdown()
    return phases


def score_once(address: str, pool: Path, n: int, partitions: str) -> dict[tuple[str, int, str], dict]:
    from tierclip.curate.scoring import engines
    from tierclip.curate.scoring.runner import score_pool
    from tierclip.curate.stages.cluster import ClusterConfig
    from tierclip.curate.stages.image_dedup import ImageDedupConfig

    engines.ENGINES["ray"] = measuring_engine()
    configs = {"image_dedup": ImageDedupConfig(exact_max=0), "cluster": ClusterConfig(k=max(10, n // 1000))}
    RECORDS.clear()
    score_pool(pool, list(STAGES), configs, engine="ray", address=address, force=True, progress=False)
    print(f"{n:,} rows, {partitions} partitions: {len(RECORDS)} tasks", file=sys.stderr, flush=True)
    return totals(RECORDS, n, partitions)


@contextmanager
def finer_partitions(rows: int):
    """The partitioned phases' sizes set in this (the driver's) process for FINE tasks (buckets: FINE per band)."""
    import importlib

    saved = []
    for module_name, constant, work in partitioned().values():
        module = importlib.import_module(f"tierclip.curate.stages.{module_name}")
        saved.append((module, constant, getattr(module, constant)))
        setattr(module, constant, -(-rows * (work if constant != "KEYS_PER_TASK" else 1) // FINE))
    try:
        yield
    finally:
        for module, constant, value in saved:
            setattr(module, constant, value)


def partitioned() -> dict[str, tuple[str, str, int]]:
    """Phase -> (stage module, its partition-size constant, work items per pool row: band keys, list entries, rows)."""
    from tierclip.curate.stages.text_dedup import TextDedupConfig, lsh_bands

    return {"text_dedup buckets": ("text_dedup", "KEYS_PER_TASK", lsh_bands(TextDedupConfig())[0]),
            "image_dedup search": ("image_dedup", "SEARCH_ROWS_PER_TASK", 2),  # probe 2
            "cluster semdedup": ("cluster", "SEMDEDUP_ROWS_PER_TASK", 1)}


def totals(records: list[dict], rows: int, partitions: str) -> dict[tuple[str, int, str], dict]:
    grouped = defaultdict(list)
    for record in records:
        phase = record["label"] if record["label"].endswith(" build") else record["label"].rsplit(" ", 1)[0]
        grouped[phase].append(record)
    return {(phase, rows, partitions): {"tasks": len(rs), "wall": sum(r["wall"] for r in rs), "cpu": sum(r["cpu"] for r in rs),
                                       "read": sum(r["read"] for r in rs), "written": sum(r["written"] for r in rs),
                                       "nodes": len({r["node"] for r in rs})} for phase, rs in grouped.items()}


def cost(p: dict, key: str) -> float:
    return p["read"] + p["written"] if key == "bytes" else p[key]


def phase_names(phases: dict) -> list[str]:
    return list(dict.fromkeys(key[0] for key in phases))


def print_measured(phases: dict, sizes: list[int]) -> None:
    print("| phase | rows | partitions | tasks | task-s | CPU-s | rows/s per node | MB read | MB written | nodes used |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in phase_names(phases):
        for n, partitions in [(n, p) for n in sizes for p in ("code", "fine")]:
            p = phases.get((name, n, partitions))
            if p is None or (partitions == "fine" and name not in partitioned()):
                continue
            print(f"| {name} | {n:,} | {partitions} | {p['tasks']} | {p['wall']:.1f} | {p['cpu']:.1f} | "
                  f"{n / max(p['wall'], 1e-9):,.0f} | {p['read'] / 1e6:,.1f} | {p['written'] / 1e6:,.1f} | {p['nodes']} |")
    print()


def is_shard_phase(name: str) -> bool:
    return name.endswith((" prepare", " compute")) or name in SHARD_PHASES


def target_tasks(name: str, rows: int) -> int:
    """Tasks of a phase at `rows` rows (shards of SHARD_ROWS), from the stages' own partition sizes."""
    from tierclip.curate.stages import cluster, image_dedup, text_dedup

    if is_shard_phase(name):
        return -(-rows // SHARD_ROWS)
    rules = {"text_dedup buckets": partitioned()["text_dedup buckets"][2] * -(-rows // text_dedup.KEYS_PER_TASK),
             "image_dedup search": -(-rows * 2 // image_dedup.SEARCH_ROWS_PER_TASK),
             "cluster semdedup": -(-rows // cluster.SEMDEDUP_ROWS_PER_TASK)}
    return rules.get(name, 1)  # k-means and builds: one task


def partition_fit(code: dict, fine: dict, rows: int, work: int, key: str) -> tuple[float, float]:
    """(a, s) of cost per task = a x work items of the task + s, from the two partitionings at `rows` rows."""
    share_code, share_fine = rows * work / code["tasks"], rows * work / fine["tasks"]
    per_code, per_fine = cost(code, key) / code["tasks"], cost(fine, key) / fine["tasks"]
    a = max(0.0, (per_code - per_fine) / (share_code - share_fine)) if share_code != share_fine else 0.0
    return a, max(0.0, per_fine - a * share_fine)


def scan_fit(phases: dict, name: str, sizes: list[int], key: str) -> tuple[float, float, float]:
    """(a, c0, sigma): cost per task = a x its work items + c0 + sigma x pool rows (every task reads the pool-wide
    arrays: sigma), fitted from both partitionings at both sizes."""
    work = partitioned()[name][2]
    fits = {n: partition_fit(phases[(name, n, "code")], phases[(name, n, "fine")], n, work, key) for n in sizes[-2:]}
    (small, (a_small, s_small)), (large, (a_large, s_large)) = sorted(fits.items())
    sigma = max(0.0, (s_large - s_small) / (large - small))
    return (a_small + a_large) / 2, max(0.0, s_large - sigma * large), sigma


def project(phases: dict, name: str, sizes: list[int], target: int) -> tuple[float, float]:
    """(task-seconds, bytes read + written) of a phase at `target` rows."""
    small, large = sizes[-2], sizes[-1]
    p_small, p_large = phases[(name, small, "code")], phases[(name, large, "code")]
    if is_shard_phase(name):  # per row, measured at the larger size
        return tuple(cost(p_large, key) / large * target for key in ("wall", "bytes"))
    if name in partitioned():
        work, tasks = partitioned()[name][2], target_tasks(name, target)
        fits = [scan_fit(phases, name, sizes, key) for key in ("wall", "bytes")]
        return tuple(a * work * target + tasks * (c0 + sigma * target) for a, c0, sigma in fits)
    out = []
    for key in ("wall", "bytes"):  # one task: the power law through the two sizes
        a, b = cost(p_small, key), cost(p_large, key)
        exponent = math.log(b / a) / math.log(large / small) if a > 0 and b > 0 else 1.0
        out.append(b * (target / large) ** exponent)
    return tuple(out)


def print_fits(phases: dict, sizes: list[int]) -> None:
    print("Partitioned phases, cost per task = a x its work items + c0 + sigma x pool rows (sigma: the pool-wide arrays "
          "every task reads):\n")
    print("| phase | work items a row | a, µs per item | c0, s per task | sigma, ns per pool row | a, bytes per item | "
          "c0, MB per task | sigma, bytes per pool row |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, (_, _, work) in partitioned().items():
        (a_t, c_t, s_t), (a_b, c_b, s_b) = (scan_fit(phases, name, sizes, key) for key in ("wall", "bytes"))
        print(f"| {name} | {work} | {a_t * 1e6:.1f} | {c_t:.3f} | {s_t * 1e9:.0f} | {a_b:,.0f} | {c_b / 1e6:,.2f} | {s_b:,.1f} |")


def phase_times(phases: dict, name: str, sizes: list[int], target: int) -> tuple[int, float, float, list[float]]:
    """(tasks, task-seconds, bytes moved, seconds on each of NODES) of a phase at `target` rows."""
    tasks = target_tasks(name, target)
    seconds, moved = project(phases, name, sizes, target)
    link = LINK_GBPS * 1e9 / 8
    return tasks, seconds, moved, [max(seconds / parallel(name, n, tasks), moved / n / link) for n in NODES]


def print_projection(phases: dict, sizes: list[int]) -> None:
    head = " | ".join(f"{n} nodes" for n in NODES)
    for label, target in TARGETS.items():
        print(f"\n**{label}, {target:,} rows** (nodes of {CORES} cores and {LINK_GBPS} Gbit/s)\n")
        print(f"| phase | tasks | core-hours | TB moved | {head} |")
        print("|---|---:|---:|---:|" + "---:|" * len(NODES))
        whole = [0.0] * len(NODES)
        for name in phase_names(phases):
            tasks, seconds, moved, times = phase_times(phases, name, sizes, target)
            whole = [w + t for w, t in zip(whole, times, strict=True)]
            print(f"| {name} | {tasks:,} | {seconds / 3600:,.2f} | {moved / 1e12:,.3f} | " + " | ".join(_minutes(t) for t in times) + " |")
        print("| **all phases, one after another** | | | | " + " | ".join(f"**{_minutes(t)}**" for t in whole) + " |")


def print_summary(phases: dict, sizes: list[int]) -> None:
    """One table: each phase's measured rows/s per node and bytes moved at the larger size, and its projected time
    on 1, 16 and 64 nodes at each target (docs/benchmarks.md shows this one)."""
    shown, large = (1, 16, 64), sizes[-1]
    columns = [(label, target, n) for label, target in TARGETS.items() for n in shown]
    print(f"\n| phase | rows/s per node ({large:,}) | MB moved ({large:,}) | "
          + " | ".join(f"{label.split()[-1]}, {n} node{'s' * (n > 1)}" for label, _, n in columns) + " |")
    print("|---|---:|---:|" + "---:|" * len(columns))
    whole = [0.0] * len(columns)
    for name in phase_names(phases):
        p = phases[(name, large, "code")]
        times = [phase_times(phases, name, sizes, target)[3][NODES.index(n)] for _, target, n in columns]
        whole = [w + t for w, t in zip(whole, times, strict=True)]
        print(f"| {name} | {large / max(p['wall'], 1e-9):,.0f} | {cost(p, 'bytes') / 1e6:,.1f} | "
              + " | ".join(_minutes(t) for t in times) + " |")
    print("| **all phases** | | | " + " | ".join(f"**{_minutes(t)}**" for t in whole) + " |")


def parallel(name: str, nodes: int, tasks: int) -> int:
    """Cores a phase keeps busy: k-means (one task) takes one whole node and FAISS's threads (assumed to scale with
    the cores; the engine gives a one-task phase the largest node's CPUs); other phases one core a task."""
    return CORES if name.endswith(" kmeans") else min(nodes * CORES, tasks)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min" if seconds < 6000 else f"{seconds / 3600:,.1f} h"


if __name__ == "__main__":
    main()
