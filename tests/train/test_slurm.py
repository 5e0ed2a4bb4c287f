"""`train sweep --print sbatch --nodes 2` under a real single-host Slurm (tests/train/slurm_cluster.py).

The printed batch script is run as printed (`bash` submits it with sbatch); Slurm gives it two nodes, `srun`
starts one torchrun on each, they meet at the c10d rendezvous the script takes from Slurm's environment, and the
run ends with one process's losses on the same global batch (what tests/train/test_multinode.py shows for two
torchrun launchers started by hand). Debian's slurm-wlm and munge are in .ci/debian-packages-slow.txt (`just test-all`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tierclip.train.config import make_run_config
from tierclip.train.run import run_training

from tests.procs import free_ports
from tests.train.helpers import assert_same_losses, color_pool
from tests.train.slurm_cluster import SlurmCluster, missing_programs

SPEC = """pool = "{pool}"
scale = "debug"
methods = ["clip"]
seeds = [5]
samples_seen = [32]

[options]
model = "tc-vit-tiny"
batch_size = 8
log_every = 1
loader_workers = 0
device = "cpu"
"""


@pytest.fixture
def slurm():
    missing = missing_programs()
    assert not missing, f"Slurm test needs Debian's slurm-wlm and munge ({', '.join(missing)} missing): run `just setup-debian`"
    assert os.geteuid() == 0, "the Slurm test starts munged, slurmctld and slurmd: run it as root"
    cluster = SlurmCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_printed_sbatch_script_trains_on_two_slurm_nodes_with_one_process_losses(tmp_path, slurm):
    pool = color_pool(tmp_path / "pool", shards=2, per_shard=8)
    spec = tmp_path / "sweep.toml"
    spec.write_text(SPEC.format(pool=pool.root))
    printed = subprocess.run([sys.executable, "-m", "tierclip.train.cli", "sweep", str(spec), "--out", str(tmp_path / "runs"),
                              "--print", "sbatch", "--nodes", "2", "--nproc", "1"], capture_output=True, text=True)
    assert printed.returncode == 0, printed.stderr
    assert "#SBATCH --nodes=2" in printed.stdout and "srun torchrun" in printed.stdout and "--gpus" not in printed.stdout

    [port] = free_ports(1)
    env = {**slurm.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "MASTER_PORT": str(port),
           "OMP_NUM_THREADS": "1"}
    submitted = subprocess.run(["bash"], input=printed.stdout, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert submitted.returncode == 0 and submitted.stdout.startswith("Submitted batch job"), submitted.stderr + slurm.logs()
    job = submitted.stdout.split()[-1]
    run = tmp_path / "runs" / "all-clip-n32-s5"
    state = slurm.wait_job(job)
    job_log = "".join(p.read_text(errors="replace")[-4000:] for p in run.glob("slurm-*.out"))
    assert state == "COMPLETED", f"job {job}: {state}\n{job_log}\n{slurm.logs()}"
    assert "NodeList=n[1-2]" in slurm.run("scontrol", "show", "job", job).stdout

    run_training(make_run_config(tmp_path / "single", pool.root, scale="debug", model="tc-vit-tiny", samples_seen=32, batch_size=8,
                                 seed=5, log_every=1, loader_workers=0, device="cpu"))
    assert (run / "DONE").exists()
    assert_same_losses(run, tmp_path / "single", steps=4)
    results, config = (json.loads((run / name).read_text()) for name in ("results.json", "config.json"))
    assert (results["world_size"], config["nodes"]) == (2, 2)
