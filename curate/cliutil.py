"""Shared plumbing for the three console commands: one-line errors for user mistakes."""

from __future__ import annotations

import sys

import typer
from tierclip.curate.errors import UserError


def new_app(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True, pretty_exceptions_enable=False,
                       add_completion=False, rich_markup_mode=None)


def run_app(app: typer.Typer) -> None:
    """Run a typer app; a `UserError` becomes `error: ...` on stderr and exit code 2.

    So does an OSError (a read-only output folder, a full disk, a missing file): one line with the path
    and the system's reason, never a traceback. Atomic writes (curate/atomic.py) put the path in.
    """
    try:
        app()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except FileNotFoundError as exc:
        print(f"error: {exc.filename}: no such file or folder", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None


def os_error_line(exc: OSError) -> str:
    """`PATH: reason` (plus a hint for the two a user can act on)."""
    import errno

    reason = exc.strerror or str(exc)
    hint = {errno.ENOSPC: "; free some space or choose another --out", errno.EROFS: "; choose a writable --out",
            errno.EACCES: "; check its permissions or choose another --out"}.get(exc.errno, "")
    return f"{exc.filename or 'write failed'}: {reason}{hint}"


def print_table(rows: list[tuple], headers: tuple[str, ...]) -> None:
    """A plain aligned text table (counts per reason, summaries)."""
    cells = [tuple(str(c) for c in headers)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if n and c.replace(".", "").isdigit() else c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
