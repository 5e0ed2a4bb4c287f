"""Progress output for long work: a tqdm bar on a terminal, a few plain lines in a log, nothing with `--quiet`.

A tqdm bar redraws itself with carriage returns several times a second; written to a file or a pipe
(a batch job's log) each redraw stays, and a 20k-sample training run fills its log with bars. When
stderr is not a terminal, `progress` prints one plain line (tqdm's own status text, without the bar)
each time another tenth of the total is done, or once a minute when the total is unknown, and one at
the end. `--quiet` (every command has it, see curate/cliutil.py) turns progress output off; it is
kept in the environment (`TIERCLIP_QUIET=1`) so worker processes honour it too.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator

QUIET_ENV = "TIERCLIP_QUIET"
LINE_FORMAT = "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
OPEN_FORMAT = "{desc}: {n_fmt} [{elapsed}, {rate_fmt}{postfix}]"  # total unknown
MILESTONES = 10  # lines per run when the total is known
UNKNOWN_TOTAL_EVERY_S = 60.0


def set_quiet(quiet: bool) -> None:
    if quiet:
        os.environ[QUIET_ENV] = "1"
    else:
        os.environ.pop(QUIET_ENV, None)


def is_quiet() -> bool:
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


def progress(iterable: Iterable | None = None, total: float | None = None, desc: str = "", unit: str = "it",
             disable: bool = False, **bar_options):
    """A tqdm bar (terminal), plain progress lines (no terminal) or nothing (`disable`, `--quiet`); the same calls
    (`update`, `set_postfix`, `close`, iteration, `with`) work on each."""
    from tqdm import tqdm

    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if disable or is_quiet():
        return tqdm(iterable, total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, **bar_options)
    return ProgressLines(iterable, total, desc, unit, initial=bar_options.get("initial", 0))


class ProgressLines:
    """The part of tqdm's interface the commands use, printing a plain line at each tenth of `total` and at the end."""

    def __init__(self, iterable: Iterable | None, total: float | None, desc: str, unit: str, initial: int = 0):
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n, self.initial, self.postfix, self.closed = initial, initial, "", False
        self.started = self.last_line = time.monotonic()
        self.printed = self._milestone()

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        if self._milestone() > self.printed or (not self.total and time.monotonic() - self.last_line >= UNKNOWN_TOTAL_EVERY_S):
            self.printed = self._milestone()
            self._line()

    def set_postfix(self, refresh: bool = True, **values) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        if not self.closed and (self.n or self.total):
            if self.printed < MILESTONES or not self.total:
                self._line()
        self.closed = True

    def _milestone(self) -> int:
        return int(MILESTONES * self.n / self.total) if self.total else 0

    def _line(self) -> None:
        from tqdm import tqdm

        self.last_line = time.monotonic()
        text = tqdm.format_meter(self.n, self.total, self.last_line - self.started, prefix=self.desc, unit=self.unit,
                                 postfix=self.postfix or None, bar_format=LINE_FORMAT if self.total else OPEN_FORMAT,
                                 initial=self.initial)
        print(text, file=sys.stderr, flush=True)
