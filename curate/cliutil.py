"""Shared plumbing for the three console commands: one-line errors for user mistakes, `--quiet` on every command."""

from __future__ import annotations

import functools
import inspect
import sys

import typer
from tierclip.curate.errors import UserError

INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C (128 + SIGINT)
QUIET_HELP = "No progress output (bars or progress lines); results and errors are still printed."


class App(typer.Typer):
    """A typer app whose every command gets `--quiet` (declared once, here)."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)
        return lambda callback: register(QuietCommand(callback))


class QuietCommand:
    """A command callback plus the `--quiet` option; the signature is read from the callback when typer asks
    (so `curate score`'s options, derived from the stages when the command line is parsed, stay lazy)."""

    def __init__(self, callback):
        functools.update_wrapper(self, callback)
        self.callback = callback

    @property
    def __signature__(self) -> inspect.Signature:
        signature = inspect.signature(self.callback, eval_str=True)
        quiet = inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                                  default=typer.Option(False, "--quiet", "-q", help=QUIET_HELP))
        return signature.replace(parameters=[*signature.parameters.values(), quiet])

    def __call__(self, *args, quiet: bool = False, **kwargs):
        from tierclip.curate.progress import set_quiet

        set_quiet(quiet)
        try:
            return self.callback(*args, **kwargs)
        except KeyboardInterrupt:  # here, before click turns it into "Aborted!"
            stop("interrupted (Ctrl-C); what was complete is kept: run the same command again to go on", INTERRUPTED)


def new_app(help_text: str) -> typer.Typer:
    return App(help=help_text, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, rich_markup_mode=None)


def run_app(app: typer.Typer, args: list[str] | None = None) -> None:
    """Run a typer app; a `UserError` becomes `error: ...` on stderr and exit code 2.

    So does a command-line mistake (an unknown option, a value out of range, `1e400` for an integer): one line
    instead of click's usage block. And an OSError (a read-only output folder, a full disk, a missing file):
    one line with the path and the system's reason, never a traceback. Atomic writes (curate/atomic.py) put the
    path in. Ctrl-C in a command is one line too, exit code 130 (`QuietCommand`). Exits with the command's own
    code otherwise (0, or a typer.Exit's).
    """
    # typer ships its own copy of click; its usage errors are not exported at typer's top level.
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    try:
        code = typer.main.get_command(app).main(args=args, standalone_mode=False)
    except NoArgsIsHelpError as exc:  # the command alone: its help, as typer prints it
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except UsageError as exc:
        print(f"error: {' '.join(exc.format_message().split())}{_usage_hint(exc)}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except UserError as exc:
        stop(f"error: {exc}", 2)
    except FileNotFoundError as exc:
        stop(f"error: {exc.filename}: no such file or folder", 2)
    except OSError as exc:
        stop(f"error: {os_error_line(exc)}", 2)
    except typer.Abort:
        stop("Aborted!", 1)
    raise SystemExit(code if isinstance(code, int) else 0)


def stop(line: str, code: int) -> None:
    """Close open progress bars (a terminal bar would run into the line), print the line, exit with `code`."""
    tqdm_module = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm_module, "tqdm", None), "_instances", ())):
        bar.close()
    print(line, file=sys.stderr)
    raise SystemExit(code) from None


def _usage_hint(exc) -> str:
    """` (see curate filter --help)` for a usage error that is not about one value."""
    from tierclip.curate.cliopts import BadValue

    if isinstance(exc, BadValue) or getattr(exc, "ctx", None) is None:
        return ""
    return f" (see {exc.ctx.command_path} --help)"


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
