"""Processes that tests start as clusters (Ray nodes, Slurm and munge daemons): free ports, and finding and
ending exactly the processes one test started, by PID.

Every process such a test starts carries a marker in its environment (`MARKER=<a folder of that test>`), and the
processes those start inherit it, so `marked_pids` finds them all (also daemons that left their parent) and
nothing of another test or helper running on the same machine.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

MARKER = "TIERCLIP_TEST_CLUSTER"


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (all held open together, so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def marked_pids(value: str, extra: str | None = None) -> list[int]:
    """PIDs of processes whose environment holds MARKER=value (and the entry `extra`, e.g. "NODE=second", when given)."""
    wanted = [f"{MARKER}={value}".encode(), *([extra.encode()] if extra else [])]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        if all(w in environ for w in wanted):
            found.append(int(entry.name))
    return found


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def kill_marked(value: str, rounds: int = 3) -> None:
    """SIGKILL every process marked with `value`, by PID (a few rounds: one may fork while we kill)."""
    for _ in range(rounds):
        for pid in marked_pids(value):
            kill(pid)
        time.sleep(0.2)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def exe_name(pid: int) -> str:
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    """PIDs of the live processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def gone(pids: list[int], timeout: float) -> bool:
    """True once none of `pids` lives (waiting up to `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)
