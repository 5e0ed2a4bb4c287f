"""A real single-host Slurm for the tests: munge, slurmctld and two slurmd ("nodes" n1 and n2) on this machine.

Debian's slurm-wlm runs several slurmd on one host (`slurmd -N NAME`, each node with its own port). Everything
lives in one temporary folder: its own munge key and socket, slurm.conf (commands find it through SLURM_CONF),
spool, state and logs; ports are picked free. The daemons run in the foreground as children of the test, with a
marker in their environment (tests/procs.py), so `stop()` ends them and every job process, by PID.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.procs import MARKER, free_ports, kill_marked

NODES = ("n1", "n2")
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "srun", "sinfo")

SLURM_CONF = """ClusterName=tierclip-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
AuthInfo=socket={root}/munge/socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
MinJobAge=600
"""


def program(name: str) -> str | None:
    """The program's path: on PATH, or in /usr/sbin (Debian puts the daemons there, off a normal user's PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if program(p) is None]


class SlurmCluster:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="tcslurm-", dir="/tmp"))
        self.env = {**os.environ, "SLURM_CONF": str(self.root / "slurm.conf"), MARKER: str(self.root)}
        self.daemons: list[subprocess.Popen] = []

    def start(self) -> None:
        for folder in ("munge", "state", "log", *(f"spool/{n}" for n in NODES)):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / "munge").chmod(0o711)  # munged wants its folder not writable by others and the socket reachable
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o400)
        self._daemon("munged", ["-F", "--force", f"--socket={self.root}/munge/socket", f"--key-file={key}",
                                f"--pid-file={self.root}/munge/pid", f"--log-file={self.root}/log/munged.log",
                                f"--seed-file={self.root}/munge/seed"])
        self._wait(lambda: (self.root / "munge" / "socket").exists(), "munged's socket")
        self._write_conf()
        self._daemon("slurmctld", ["-D", "-i", "-f", self.env["SLURM_CONF"]])
        for node in NODES:
            self._daemon("slurmd", ["-D", "-f", self.env["SLURM_CONF"], "-N", node])
        self._wait(self._nodes_idle, "both slurmd nodes idle", timeout=120)

    def _write_conf(self) -> None:
        ctld, *node_ports = free_ports(1 + len(NODES))
        host = socket.gethostname()
        text = SLURM_CONF.format(host=host, ctld_port=ctld, user=getpass.getuser(), root=self.root)
        text += "".join(f"NodeName={n} NodeHostname={host} NodeAddr=127.0.0.1 Port={p} CPUs=1 State=UNKNOWN\n"
                        for n, p in zip(NODES, node_ports, strict=True))
        text += f"PartitionName=main Nodes={','.join(NODES)} Default=YES MaxTime=INFINITE State=UP\n"
        Path(self.env["SLURM_CONF"]).write_text(text)

    def _daemon(self, name: str, args: list[str]) -> None:
        log = open(self.root / "log" / f"{name}-{len(self.daemons)}.out", "w")  # noqa: SIM115 (open while it runs)
        self.daemons.append(subprocess.Popen([program(name), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def _nodes_idle(self) -> bool:
        done = self.run("sinfo", "-h", "-N", "-o", "%N %T")
        states = dict(line.split() for line in done.stdout.splitlines() if line.strip())
        return all(states.get(n, "").startswith("idle") for n in NODES)

    def _wait(self, ready, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [d.args[0] for d in self.daemons if d.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"slurm test cluster: no {what} ({', '.join(dead) or 'timeout'} exited); logs:\n{self.logs()}")
            time.sleep(0.2)

    def run(self, *command: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(list(command), env=env or self.env, capture_output=True, text=True, timeout=timeout)

    def job_state(self, job: str) -> str:
        fields = dict(f.split("=", 1) for f in self.run("scontrol", "-o", "show", "job", job).stdout.split() if "=" in f)
        return fields.get("JobState", "UNKNOWN")

    def wait_job(self, job: str, timeout: float = 900) -> str:
        deadline = time.monotonic() + timeout
        while (state := self.job_state(job)) in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING") and time.monotonic() < deadline:
            time.sleep(1)
        return state

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in sorted((self.root / "log").glob("*")))

    def stop(self) -> None:
        """End the daemons and every job process (all marked, by PID); remove the folder."""
        for daemon in self.daemons:
            daemon.kill()
        kill_marked(str(self.root))
        for daemon in self.daemons:
            daemon.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)
