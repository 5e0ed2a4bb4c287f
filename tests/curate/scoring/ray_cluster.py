"""A real Ray cluster of several raylets on this machine, started and stopped by a test.

Each node is its own `ray start` (the head with `--head`, the others with `--address HEAD`), with ports picked
free on this machine (other test sessions may run Ray at the same time), its own temporary folder (so a plain
`ray.init()` elsewhere never finds this cluster) and token authentication with a token of its own (Ray 2.60
asks a joining raylet and every driver for the cluster's token). Every process of the cluster carries a marker
in its environment (tests/procs.py), so `stop()` ends exactly the processes this cluster started, by PID.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.procs import MARKER, cmdline, exe_name, free_ports, kill, kill_marked, marked_pids

RAY = [sys.executable, "-m", "ray.scripts.scripts"]
NODE_MARKER = "TIERCLIP_TEST_RAY_NODE"
NOT_TASKS = ("IDLE", "DashboardAgent", "RuntimeEnvAgent")  # titles of a node's processes that run no task


@dataclass
class RayNode:
    name: str
    temp_dir: Path
    pgid: int  # `ray start` ran in its own session: its daemons keep this process group
    ports: dict[str, int] = field(default_factory=dict)


class RayCluster:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="tcray-", dir="/tmp"))  # short: Ray's socket paths must fit in 107 bytes
        token = self.root / "auth_token"
        token.write_text(secrets.token_hex(32))  # what `ray get-auth-token --generate` writes, kept out of ~/.ray
        token.chmod(0o600)
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), MARKER: str(self.root),
                    "RAY_USAGE_STATS_ENABLED": "0"}
        self.nodes: list[RayNode] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.nodes[0].ports['port']}"

    def start_head(self, num_cpus: int = 1) -> RayNode:
        # The dashboard process serves Ray's state API (`ray list tasks`), which the tests read.
        role = ["--head", "--include-dashboard", "true", "--dashboard-host", "127.0.0.1"]
        return self._start("head", role, ("port", "ray-client-server-port", "dashboard-port"), num_cpus, None)

    def add_node(self, name: str, num_cpus: int = 1, resources: dict | None = None) -> RayNode:
        return self._start(name, ["--address", self.address], (), num_cpus, resources)

    def _start(self, name: str, role: list[str], role_ports: tuple[str, ...], num_cpus: int, resources: dict | None) -> RayNode:
        named = ["node-manager-port", "object-manager-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                 "runtime-env-agent-port", "metrics-export-port", *role_ports]
        picked = free_ports(len(named) + 16)  # + the ports of up to 16 worker processes
        ports = dict(zip(named, picked, strict=False))
        temp_dir = self.root / name
        command = [*RAY, "start", *role, "--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus),
                   "--temp-dir", str(temp_dir), "--object-store-memory", str(100_000_000), "--disable-usage-stats",
                   "--worker-port-list", ",".join(map(str, picked[len(named):]))]
        command += [a for key, port in ports.items() for a in (f"--{key}", str(port))]
        command += ["--resources", json.dumps(resources)] if resources else []
        log = self.root / f"{name}.log"
        with open(log, "w") as out:
            started = subprocess.Popen(command, env={**self.env, NODE_MARKER: name}, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            node = RayNode(name, temp_dir, started.pid, ports)
            self.nodes.append(node)  # before waiting: stop() ends it even if it never comes up
            code = started.wait(timeout=300)
        if code != 0:
            raise RuntimeError(f"`ray start` for node {name} failed ({code}):\n{log.read_text()[-3000:]}")
        return node

    def ray(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A `ray` CLI command against this cluster (with its token)."""
        return subprocess.run([*RAY, *args, "--address", self.address], env=self.env, capture_output=True, text=True, timeout=timeout)

    def list_state(self, kind: str) -> list[dict]:
        """Ray's state API (`ray list KIND --detail`) as a list of records."""
        done = self.ray("list", kind, "--detail", "--format", "json", "--limit", "10000")
        if done.returncode != 0:
            raise RuntimeError(f"ray list {kind} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return json.loads(done.stdout)

    def wait_for_nodes(self, count: int, timeout: float = 120) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            alive = [n for n in self.list_state("nodes") if n["state"] == "ALIVE"]
            if len(alive) >= count or time.monotonic() > deadline:
                return alive
            time.sleep(1)

    def pids(self, node: str | None = None) -> list[int]:
        """PIDs of this cluster's processes (of one node when given)."""
        return marked_pids(str(self.root), f"{NODE_MARKER}={node}" if node else None)

    def running_tasks(self, node: str) -> dict[int, str]:
        """{worker PID: task name} of the tasks a node runs now: Ray titles a busy worker process `ray::TASK NAME`."""
        titles = {pid: cmdline(pid) for pid in self.pids(node)}
        return {pid: t[5:] for pid, t in titles.items() if t.startswith("ray::") and t[5:] not in NOT_TASKS}

    def raylet_pid(self, node: str) -> int:
        raylets = [pid for pid in self.pids(node) if exe_name(pid) == "raylet"]
        if len(raylets) != 1:
            raise RuntimeError(f"node {node}: expected one raylet, found PIDs {raylets}")
        return raylets[0]

    def kill_node(self, node: str, first: tuple[int, ...] = ()) -> None:
        """The node dies as a machine would: SIGKILL to the PIDs `first` (a busy worker), to its raylet's PID, then
        to every other process of the node (workers, whose running tasks die with them, and agents), each by PID."""
        for pid in first:
            kill(pid)
        raylet = self.raylet_pid(node)
        os.kill(raylet, signal.SIGKILL)
        for pid in self.pids(node):
            kill(pid)

    def stop(self) -> None:
        """End every process of this cluster (each node's process group, then any straggler by PID); remove its files."""
        for node in self.nodes:
            try:
                os.killpg(node.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        kill_marked(str(self.root))
        shutil.rmtree(self.root, ignore_errors=True)
