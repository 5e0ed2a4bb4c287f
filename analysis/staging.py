"""A folder written whole or not at all: `staged_folder(OUT)` yields a fresh sibling folder to write into, and only
when the block finishes does it take OUT's place.

* New OUT: the staged folder is renamed to OUT (one rename).
* Existing OUT: the two folders are swapped in one step where the system can (Linux `renameat2` with
  RENAME_EXCHANGE), else OUT is renamed aside, the new folder renamed in and the old one deleted; either way a reader
  finds the old complete folder or the new complete one.
* A killed writer leaves only its `.OUT.staging-PID-*` folder, which the next call for OUT removes once PID is gone.
* OUT is replaced only when every file in it is one the caller names as its own (`allowed`): a folder holding
  anything else is refused with one line rather than deleted.

Python's standard library swaps no folders atomically (os.replace refuses a non-empty target), hence the small
ctypes call below.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tierclip.curate.errors import UserError

AT_FDCWD, RENAME_EXCHANGE = -100, 2


@contextmanager
def staged_folder(out: str | os.PathLike, allowed: set[str] = frozenset()) -> Iterator[Path]:
    """Yield an empty folder beside `out`; on success it becomes `out` (replacing an existing one whose files are all
    in `allowed`)."""
    out = Path(out)
    _check_replaceable(out, allowed)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_stages(out)
    stage = Path(tempfile.mkdtemp(prefix=f"{_stage_prefix(out)}{os.getpid()}-", dir=out.parent))
    os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes it owner-only; the report gets a plain folder's mode
    try:
        yield stage
        _swap_in(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _stage_prefix(out: Path) -> str:
    return f".{out.name}.staging-"


def _check_replaceable(out: Path, allowed: set[str]) -> None:
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; choose another --out")
    foreign = sorted(path.name for path in out.iterdir() if path.name not in allowed)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UserError(f"{out}: holds files that are not part of a report ({shown}); a report replaces its whole folder, "
                        "so choose a new --out or move them")


def _remove_stale_stages(out: Path) -> None:
    """Staging folders of writers that were killed (their PID no longer runs)."""
    prefix = _stage_prefix(out)
    for path in out.parent.glob(f"{prefix}*"):
        pid = path.name.removeprefix(prefix).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_in(stage: Path, out: Path) -> None:
    """Put `stage` at `out`; the previous `out`, if any, ends up at `stage` (deleted by the caller)."""
    if not out.exists():
        os.rename(stage, out)
        return
    if _exchange(stage, out):
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, aside / "old")
    os.rename(stage, out)
    os.rename(aside, stage)  # the caller deletes it with the stage


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system or file system lacks it."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))
