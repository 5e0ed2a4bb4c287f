"""Config fields that carry their own help, default and bounds, and the one range check every option goes through.

A config is a frozen dataclass whose fields are declared with `option(default, help, ge=..., ...)`. The
command-line options are derived from those fields (`curate.cliopts`), and so are their checks: the parser of
each option and `Checked.__post_init__` both call `check_value` with the field's `Bounds`, so a value out of
range is refused in one line whether it comes from the command line, a sweep file or Python.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from tierclip.curate.errors import UserError


@dataclass(frozen=True)
class Bounds:
    """The range of a numeric option: `ge`/`gt` below, `le`/`lt` above; nan is never in range, inf only when
    `finite` is False (and the bounds allow it)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    finite: bool = True
    integer: bool = False

    def accepts(self, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if self.finite and math.isinf(value):
            return False
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def describe(self) -> str:
        """`an integer >= 0`, `a finite number > 0`, `a number in (0, 1)`, `a number or -inf`."""
        if not self.finite and self.lt == math.inf and self.ge is None and self.gt is None:
            return "a number or -inf"
        kind = "an integer" if self.integer else ("a finite number" if self.finite and not self._bounded_both() else "a number")
        low = f">= {_text(self.ge)}" if self.ge is not None else (f"> {_text(self.gt)}" if self.gt is not None else "")
        high = f"<= {_text(self.le)}" if self.le is not None else (f"< {_text(self.lt)}" if self.lt is not None else "")
        if low and high:
            left, right = ("[" if self.ge is not None else "("), ("]" if self.le is not None else ")")
            return f"{kind} in {left}{low.split()[1]}, {high.split()[1]}{right}"
        return " ".join(part for part in (kind, low or high) if part)

    def _bounded_both(self) -> bool:
        return (self.ge is not None or self.gt is not None) and (self.le is not None or self.lt is not None)


def _text(number: float) -> str:
    return str(int(number)) if float(number).is_integer() and abs(number) < 1e15 else repr(number)


def option(default: Any, help: str, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
           lt: float | None = None, finite: bool = True, choices: Any = None, pattern: tuple[str, str] | None = None,
           path: bool = False, argument: bool = False, short: str | None = None, key_values: type | None = None,
           comma: bool = False) -> Any:
    """A config field that becomes a command-line option: its flag is the field's name (with the owner's prefix),
    `help` its help text, and the bounds (`ge`, `gt`, `le`, `lt`; numbers finite unless `finite=False`) its check.

    `choices`: the allowed strings (or a function giving them); `pattern`: (a regular expression the whole string
    must match, what that means); `path`: the value names a file or folder (made absolute when it exists);
    `argument`: a positional argument instead of an option; `short`: a one-letter alias (`-j`); `key_values`: a
    repeatable KEY=VALUE option checked against that config's fields (`--aug jitter=0.2`); `comma`: a tuple field
    given as one comma list (`--fractions 0.1,0.3`, `--dedup text,image`), each item checked. The default `...`
    makes the option required.
    """
    bounds = None
    if any(b is not None for b in (ge, gt, le, lt)) or not finite:
        bounds = Bounds(ge=ge, gt=gt, le=le, lt=lt, finite=finite)
    metadata = {"help": help, "bounds": bounds, "choices": choices, "pattern": pattern, "path": path, "argument": argument,
                "short": short, "key_values": key_values, "comma": comma}
    return field(default=default, metadata=metadata)


def numeric_kind(annotation: Any) -> type | None:
    """int or float for an int/float annotation (optional, or the element of a tuple/list), else None."""
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None) and a is not Ellipsis]
    if annotation in (int, float):
        return annotation
    return next((a for a in args if a in (int, float)), None)


def field_bounds(fld: dataclasses.Field, annotation: Any) -> Bounds | None:
    """The field's bounds, marked integer for an int field; every numeric field must declare some."""
    kind = numeric_kind(annotation)
    if kind is None:
        return None
    bounds = fld.metadata.get("bounds") or Bounds()
    return dataclasses.replace(bounds, integer=kind is int)


def check_value(name: str, value: Any, fld: dataclasses.Field, annotation: Any, shown: str | None = None) -> None:
    """Refuse `value` for the field in one line naming `name` (a flag, a sweep key): out of range, not one of the
    choices, not matching the pattern. None (an optional option left unset) and `...` are not checked here."""
    if value is None or value is Ellipsis:
        return
    shown = shown if shown is not None else _shown(value)
    bounds = field_bounds(fld, annotation)
    if bounds is not None:
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if not bounds.accepts(item):
                raise UserError(f"{name} {shown}: must be {bounds.describe()}")
    choices, pattern = field_choices(fld), fld.metadata.get("pattern")
    items = value if isinstance(value, (tuple, list)) else (value,)
    if choices and any(item not in choices for item in items):
        raise UserError(f"{name} {shown}: must be one of {', '.join(choices)}")
    if pattern and not re.fullmatch(pattern[0], str(value)):
        raise UserError(f"{name} {shown}: must be {pattern[1]}")


def field_choices(fld: dataclasses.Field) -> tuple[str, ...] | None:
    """The allowed values: a tuple, or a function giving them when asked (a registry that may grow, e.g. METHODS)."""
    choices = fld.metadata.get("choices")
    return tuple(choices()) if callable(choices) else choices


def _shown(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(_shown(v) for v in value)
    return str(value) if not isinstance(value, str) else value


class Checked:
    """Mixin of config dataclasses: every field checked against its declaration when the config is made.

    Names in messages: `option_name(field)`, the option: `--PREFIX-FIELD` with the class's `prefix` (method
    configs) or `--FIELD`.
    """

    def __post_init__(self) -> None:
        import typing

        hints = typing.get_type_hints(type(self))
        for fld in dataclasses.fields(self):
            if not dataclasses.is_dataclass(hints[fld.name]):  # a held config checked itself
                check_value(self.option_name(fld.name), getattr(self, fld.name), fld, hints[fld.name])

    @classmethod
    def option_name(cls, field_name: str) -> str:
        return flag_name(getattr(cls, "prefix", ""), field_name)


def flag_name(prefix: str, name: str) -> str:
    """The naming rule (docs/cli.md): `--` + prefix + field name, words joined by dashes."""
    return "--" + "-".join(part for part in (prefix, name) if part).replace("_", "-")


def option_key(prefix: str, name: str) -> str:
    """The same name with underscores: a parameter name, a sweep `[options]` key, a config.json key."""
    return flag_name(prefix, name)[2:].replace("-", "_")


@dataclass(frozen=True)
class NoOptions:
    """A stage or method without options."""
