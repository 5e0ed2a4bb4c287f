"""Process hygiene: worker processes die with their parent, and one run at a time holds a pool's outputs.

- `die_with_parent` is the initializer of every worker process we start (the local engine's process
  pool, the clip stage's and training's DataLoader workers). A `kill -9` of `curate score` cannot run
  any clean-up code, and Python's process pools do not notice a dead parent until they next talk to
  it; on Linux the kernel can deliver a signal to a child when its parent dies (`prctl
  PR_SET_PDEATHSIG`), which neither `multiprocessing` nor torch exposes, hence ctypes here. Without
  it the workers (~190 MB each) and multiprocessing's resource tracker stayed alive under PID 1.
  (A local Ray instance is already fate-shared with its driver by Ray itself.)
- `RunLock` is an exclusive `flock` on a file beside the outputs a run writes (`POOL/.score.lock`),
  holding the PID for the message. The kernel drops the lock when its holder dies, so a killed run never blocks the next
  one, while a still-running one (or an orphan that inherited the descriptor) refuses it in one line.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tierclip.curate.errors import UserError

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int | None = None, *_ignored) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; a no-op elsewhere).

    `parent_pid`: the parent's PID when the child was started; if the parent already died before
    this ran (the race prctl cannot cover), exit now. Extra arguments are ignored so this can be
    a DataLoader `worker_init_fn` (which passes the worker id).
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl (an unusual libc): workers then end when their queue breaks
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def loader_worker_init(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: the DataLoader forks its workers from the process that iterates it."""
    die_with_parent(None)


@contextmanager
def sigint_ignored_by_children() -> Iterator[None]:
    """Ignore SIGINT while worker processes are started: an ignored signal stays ignored through fork and exec (a
    blocked mask does not survive the spawn start method), so a Ctrl-C in the terminal, which signals the whole
    process group, interrupts only the parent, which stops the run in one line (curate/cliutil.py) instead of every
    worker printing its own KeyboardInterrupt; the workers then die with it. A Ctrl-C during the few milliseconds
    of starting workers is lost (press again). Outside the main thread (where Python allows no signal handler) this
    does nothing."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class RunLock:
    """`with RunLock(path, what):` - an exclusive lock on the file `path` for the duration of a run."""

    def __init__(self, path: str | Path, what: str):
        self.path = Path(path)
        self.what = what
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UserError(f"{self.path}: another {self.what} (pid {holder}) is writing here; wait for it to finish "
                            f"or stop it, then run again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None
