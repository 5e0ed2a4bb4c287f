"""`curate score --engine ray` on a real Ray cluster of two raylets on this machine (tests/curate/scoring/ray_cluster.py).

The pool is a metadata-only DataComp pool with imported image embeddings, so every global phase runs without a
model: text_dedup's buckets, image_dedup's k-means, lists and search, cluster's k-means, assign and semdedup, and
each stage's build. The pool is given as a relative path (the Ray workers' working folder is not the driver's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from tierclip.curate.ingest.datacomp import open_datacomp
from tierclip.curate.ingest.run import run_ingest
from tierclip.curate.scoring.runner import score_pool
from tierclip.curate.stages.cluster import ClusterConfig
from tierclip.curate.stages.image_dedup import ImageDedupConfig

from tests.curate.ingest_data import write_datacomp
from tests.curate.scoring.ray_cluster import RayCluster
from tests.curate.scoring.test_runner import tree_bytes
from tests.curate.test_datacomp_embeddings import write_npz

STAGES = "text_dedup,image_dedup,cluster"
OPTIONS = ["--image-dedup-exact-max", "10", "--image-dedup-lists", "4", "--cluster-k", "3"]  # the out-of-core paths
CONFIGS = {"image_dedup": ImageDedupConfig(exact_max=10, lists=4), "cluster": ClusterConfig(k=3)}
GLOBAL_PHASES = ["text_dedup buckets", "text_dedup build", "image_dedup kmeans", "image_dedup lists", "image_dedup search",
                 "image_dedup build", "cluster kmeans", "cluster assign", "cluster semdedup", "cluster build"]


@pytest.fixture
def cluster():
    """A head and a second node, one CPU each; stopped (every process it started, by PID) even when the test fails."""
    started = RayCluster()
    try:
        started.start_head(num_cpus=1)
        started.add_node("second", num_cpus=1, resources={"second": 1})
        assert len(started.wait_for_nodes(2)) == 2
        yield started
    finally:
        started.stop()


def metadata_pool(root: Path, rows_per_file: int = 300, shard_size: int = 20) -> Path:
    for name, seed in (("a", 0), ("b", 1)):
        write_datacomp(root.parent / "dc" / f"{name}.parquet", rows_per_file, seed=seed)
        write_npz(root.parent / "dc" / f"{name}.parquet", rows_per_file, seed)
    run_ingest(open_datacomp(root.parent / "dc", "l14"), root, shard_size=shard_size)
    return root


def score_on_cluster(cluster: RayCluster, cwd: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "tierclip.curate.cli", "score", "pool", "--stages", STAGES, "--engine", "ray",
               "--ray-address", cluster.address, *OPTIONS]
    return subprocess.Popen(command, cwd=cwd, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_while_busy(cluster: RayCluster, node: str, phases: tuple[str, ...], run: subprocess.Popen, timeout: float = 300) -> str:
    """Kill the node (its raylet's PID, then its workers') as soon as one of its workers runs a task of `phases`; that task."""
    deadline = time.monotonic() + timeout
    while run.poll() is None and time.monotonic() < deadline:
        busy = {pid: name for pid, name in cluster.running_tasks(node).items() if name.startswith(phases)}
        if busy:
            cluster.kill_node(node, first=tuple(busy))  # the busy worker first: its task cannot finish in between
            return next(iter(busy.values()))
        time.sleep(0.01)
    raise AssertionError(f"node {node} ran no task of {phases} before the run ended")


@pytest.mark.timeout(600)
def test_score_on_a_two_raylet_cluster_survives_a_dead_node_and_equals_the_local_engine(tmp_path, cluster):
    reference = metadata_pool(tmp_path / "reference")
    shutil.copytree(reference, tmp_path / "pool")
    score_pool(reference, STAGES.split(","), CONFIGS, workers=1, progress=False)
    nodes = {n["node_id"]: n for n in cluster.list_state("nodes")}
    second = next(node_id for node_id, n in nodes.items() if "second" in n["resources_total"])

    run = score_on_cluster(cluster, tmp_path)
    killed_during = kill_while_busy(cluster, "second", ("image_dedup lists", "cluster assign"), run)  # mid-run, mid-phase
    out, err = run.communicate(timeout=400)
    assert run.returncode == 0, err[-3000:]  # Ray ran the dead node's tasks again on the head; the run finished

    rerun = score_on_cluster(cluster, tmp_path)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-3000:]
    assert "0 shards computed, 30 already done" in out
    assert tree_bytes(tmp_path / "pool" / "scores") == tree_bytes(reference / "scores")

    tasks = [t for t in cluster.list_state("tasks") if t["type"] == "NORMAL_TASK"]
    ran_on = Counter(t["node_id"] for t in tasks if t["state"] == "FINISHED")
    assert set(ran_on) == set(nodes), f"finished tasks per node: {ran_on}"
    assert ran_on[second] > 0
    retried = [t["name"] for t in tasks if t["attempt_number"] > 0]
    assert killed_during in retried, f"killed during {killed_during!r}; retried: {retried}"
    names = {t["name"].rsplit(" ", 1)[0] if not t["name"].endswith("build") else t["name"] for t in tasks if t["state"] == "FINISHED"}
    assert set(GLOBAL_PHASES) <= names, sorted(set(GLOBAL_PHASES) - names)


def test_a_cluster_that_cannot_be_reached_is_one_line_naming_the_token(tmp_path, monkeypatch):
    """Without the cluster's token Ray retries for ~20 s and then raises ConnectionError (its log names InvalidAuthToken)."""
    import ray
    from tierclip.curate.errors import UserError
    from tierclip.curate.scoring.engines import RayEngine

    def refused(**kwargs):
        raise ConnectionError(f"Failed to connect to Ray cluster at {kwargs['address']}")

    monkeypatch.setattr(ray, "init", refused)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(UserError, match=r"--ray-address 10\.0\.0\.1:6379: cannot connect .*RAY_AUTH_MODE=token"):
        RayEngine(address="10.0.0.1:6379")


class Probe:
    label = "probe"


def threads_and_cpus(task) -> tuple[str, float]:
    import ray

    return os.environ.get("OMP_NUM_THREADS", ""), ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)


def test_a_phase_of_one_task_gets_a_whole_node_and_its_threads(monkeypatch):
    """k-means is one task: it gets every CPU of the node and FAISS its threads (Ray sets OMP_NUM_THREADS from the
    CPUs of a worker's first task, hence a fresh worker); tasks of a phase of many get one CPU each."""
    from tierclip.curate.scoring.engines import RayEngine

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    engine = RayEngine(workers=2)
    try:
        assert list(engine.map(threads_and_cpus, [Probe(), Probe()])) == [("1", 1.0)] * 2
        assert list(engine.map(threads_and_cpus, [Probe()])) == [("2", 2.0)]
    finally:
        engine.close()
