"""Every numeric option of every command is range-checked when the command line is read, from its declared bounds.

Each numeric option gets 0, -1, nan, inf and 1e400. Whether a value is in range is derived from the option's own
declaration (curate.fields.Bounds), never listed here: an out-of-range value must give exactly one `error:` line
naming the option, exit code 2 and nothing written; an in-range one must parse.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest
from tierclip.curate.cliopts import KeyValueParser, ValueParser
from tierclip.curate.fields import Bounds, field_bounds

from tests.cli_reference import commands
from tests.curate.robust_util import one_error_line

FUZZ = ("0", "-1", "nan", "inf", "1e400")
COMMANDS = commands()


def parser_of(param):
    descriptor = getattr(param, "type_descriptor", None)
    return descriptor.parameter_info.parser if descriptor is not None else None


def numeric(param) -> bool:
    descriptor = getattr(param, "type_descriptor", None)
    annotation = descriptor.annotation if descriptor is not None else None
    return annotation in (int, float) or any(a in (int, float) for a in typing.get_args(annotation))


def cases() -> list[tuple[str, str, str, str]]:
    """(command, flag, text given, kind) for every numeric option and fuzz value; `--aug KEY=` for each numeric key."""
    found = []
    for path, command in sorted(COMMANDS.items()):
        for param in command.params:
            parser = parser_of(param)
            if isinstance(parser, KeyValueParser):
                found += [(path, param.opts[0], f"{key}={value}", key) for key in _numeric_keys(parser) for value in FUZZ]
            elif isinstance(parser, ValueParser) and parser.bounds is not None:
                found += [(path, param.opts[0], value, "") for value in FUZZ]
    return found


def _numeric_keys(parser: KeyValueParser) -> list[str]:
    config = parser.fld.metadata["key_values"]
    hints = typing.get_type_hints(config)
    return [f.name for f in dataclasses.fields(config) if field_bounds(f, hints[f.name]) is not None]


def accepted(parser: ValueParser, text: str, key: str) -> bool:
    """Whether the declared bounds take `text` (an int option takes digits only: nan, inf and 1e400 are not integers)."""
    bounds = parser.bounds
    if key:
        config = parser.fld.metadata["key_values"]
        fld = next(f for f in dataclasses.fields(config) if f.name == key)
        bounds, text = field_bounds(fld, typing.get_type_hints(config)[key]), text.partition("=")[2]
    try:
        value = int(text) if bounds.integer else float(text)
    except ValueError:
        return False
    return bounds.accepts(value)


def invocation(path: str, flag: str, text: str, key: str, tmp_path) -> list[str]:
    """Arguments running `path` with `flag TEXT` (twice for a pair such as crop_scale) and a value for every other
    required parameter (paths under tmp_path that do not exist, numbers in range)."""
    command = COMMANDS[path]
    args = path.split()[1:]
    for param in command.params:
        if param.required and param.opts[0] != flag:
            value = _valid(parser_of(param)) if numeric(param) else str(tmp_path / f"in-{param.name}")
            args += [value] if param.param_type_name == "argument" else [param.opts[0], value]
    given = f"{text},{text.partition('=')[2]}" if key and _is_pair(parser_of(_param(command, flag)), key) else text
    return [*args, flag, given]


def _param(command, flag: str):
    return next(p for p in command.params if p.opts and p.opts[0] == flag)


def _is_pair(parser: KeyValueParser, key: str) -> bool:
    return typing.get_origin(typing.get_type_hints(parser.fld.metadata["key_values"])[key]) is tuple


def _valid(parser: ValueParser) -> str:
    bounds = parser.bounds or Bounds()
    for candidate in (bounds.ge, (bounds.gt or 0) + 1, 1, 0):
        if candidate is not None and bounds.accepts(int(candidate) if bounds.integer else float(candidate)):
            return str(int(candidate) if bounds.integer else candidate)
    raise AssertionError(f"{parser.name}: no valid value found")


def app_of(path: str):
    from tierclip.analysis.cli import app as analysis_app
    from tierclip.curate.cli import app as curate_app
    from tierclip.train.cli import app as train_app

    return {"curate": curate_app, "train": train_app, "analysis": analysis_app}[path.split()[0]]


def test_every_numeric_option_declares_bounds():
    """No int or float option is parsed by typer alone: each has the one checking parser, with bounds."""
    unchecked = [(path, p.opts) for path, command in COMMANDS.items() for p in command.params
                 if numeric(p) and not (isinstance(parser_of(p), ValueParser) and parser_of(p).bounds is not None)]
    assert unchecked == []
    assert len(cases()) >= 5 * 60


@pytest.mark.parametrize("path, flag, text, key", cases())
def test_out_of_range_is_one_line_exit_2_and_nothing_written(path, flag, text, key, tmp_path, monkeypatch, capsys):
    from tierclip.curate.cliutil import run_app

    monkeypatch.chdir(tmp_path)
    args = invocation(path, flag, text, key, tmp_path)
    parser = parser_of(_param(COMMANDS[path], flag))
    if accepted(parser, text, key):  # parse only: an in-range value must not be refused (the command is not run)
        leaf_args = args[len(path.split()) - 1:]
        with COMMANDS[path].make_context(path, leaf_args) as ctx:
            assert ctx.params[_param(COMMANDS[path], flag).name] is not None
        return
    with pytest.raises(SystemExit) as exited:
        run_app(app_of(path), args)
    line = one_error_line(capsys.readouterr().err)
    assert exited.value.code == 2 and line.startswith(f"error: {flag} ") and "must be" in line, line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path, flag", [("train run", "--device"), ("train eval", "--device"), ("curate score", "--clip-device")])
def test_a_device_is_checked_when_parsed(path, flag, tmp_path, monkeypatch, capsys):
    from tierclip.curate.cliutil import run_app

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        run_app(app_of(path), invocation(path, flag, "tpu", "", tmp_path))
    assert exited.value.code == 2
    assert one_error_line(capsys.readouterr().err) == f"error: {flag} tpu: must be auto, cpu, cuda or cuda:N"
    assert list(tmp_path.iterdir()) == []
