"""Command-line options derived from config dataclasses, and the parser that range-checks every numeric option.

A config's fields (declared with `curate.fields.option`) become typer options: the flag follows the naming rule
(`--PREFIX-FIELD`, docs/cli.md), the help and default are the field's, and the option's parser converts the text
and checks it with the field's bounds before the command runs, so nothing is written for a refused value.
`curate score` derives its stage options this way and `train run` its run and method options; options written
by hand in other commands use `checked()` / `numbers()`, which build the same parser from the same bounds.

A config may hold other configs (DeFILIP's config holds DeCLIP's and FILIP's): a nested config contributes its
own options under its own `prefix`, once, however many configs hold it.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import typer
from tierclip.curate.errors import UserError
from tierclip.curate.fields import check_value, field_bounds, field_choices, flag_name, numeric_kind, option, option_key


class BadValue(typer.BadParameter):
    """A refused option value; the message is the whole line (`--seed -1: must be an integer >= 0`)."""

    def format_message(self) -> str:
        return self.message


class ValueParser:
    """typer's `parser=` for one option: the command-line text (or the default) to a value, checked against the field."""

    def __init__(self, name: str, fld: dataclasses.Field, annotation: Any):
        self.name, self.fld, self.annotation = name, fld, annotation
        self.kind = numeric_kind(annotation)
        self.bounds = field_bounds(fld, annotation)

    def __call__(self, raw: Any) -> Any:
        value = self.convert(raw)
        try:
            check_value(self.name, value, self.fld, self.annotation, shown=str(raw))
        except UserError as exc:
            raise BadValue(str(exc)) from None
        return value

    def convert(self, raw: Any) -> Any:
        if not isinstance(raw, str) or self.kind is None:
            return raw
        try:
            return self.kind(raw)  # int("1e400") and int("1.5") fail: an int option takes digits only
        except ValueError:
            raise BadValue(f"{self.name} {raw}: must be {self.bounds.describe()}") from None


class CommaListParser(ValueParser):
    """A comma list (`--fractions 0.1,0.3`, `--dedup text,image`): each item converted and checked; gives a tuple."""

    def convert(self, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        items = [item.strip() for item in raw.split(",") if item.strip()]
        return tuple(ValueParser.convert(self, item) for item in items)


class KeyValueParser(ValueParser):
    """A repeatable KEY=VALUE option (`--aug jitter=0.2`) checked against the fields of `fld`'s `key_values` config."""

    def __call__(self, raw: Any) -> Any:
        try:
            key_value(str(raw), self.fld.metadata["key_values"], self.name)
        except UserError as exc:
            raise BadValue(str(exc)) from None
        return raw


def key_value(item: str, config: type, name: str) -> tuple[str, Any]:
    """"jitter=0.2" -> ("jitter", 0.2), "crop_scale=0.3,1" -> ("crop_scale", (0.3, 1.0)); checked against `config`'s field."""
    key, sep, text = item.partition("=")
    fields = {fld.name: fld for fld in dataclasses.fields(config)}
    if not sep or key not in fields:
        raise UserError(f"{name} {item}: expected KEY=VALUE with KEY one of {', '.join(fields)}")
    try:
        numbers = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"{name} {item}: {text!r} is not a number or a comma list of numbers") from None
    value = numbers[0] if len(numbers) == 1 else numbers
    check_value(name, value, fields[key], typing.get_type_hints(config)[key], shown=item)
    return key, value


def checked(default: Any, *flags: str, help: str, kind: type = int, **checks: Any) -> Any:
    """A hand-written typer option of type `kind` with the checks of `curate.fields.option` (`ge=0`, `gt=0`, `le=1`,
    `choices=...`, `pattern=...`), applied by the same parser as a derived option's."""
    fld = option(default, help, **checks)
    return typer.Option(default, *flags, help=_help(help, fld, numeric_kind(kind)), parser=ValueParser(flags[0], fld, kind))


def numbers(default: str | None, *flags: str, help: str, **bounds: Any) -> Any:
    """A hand-written comma list of numbers (a plural flag), each element checked: gives a tuple of floats."""
    fld = option(default, help, **bounds)
    return typer.Option(default, *flags, help=_help(help, fld, float), parser=CommaListParser(flags[0], fld, tuple[float, ...]))


# -- options from a config dataclass ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One derived option: the field it sets, in which config, under which prefix."""

    config: type
    field: dataclasses.Field
    annotation: Any
    prefix: str = ""

    @property
    def key(self) -> str:
        return option_key(self.prefix, self.field.name)

    @property
    def flag(self) -> str:
        return flag_name(self.prefix, self.field.name)


def nested_configs(config: type) -> list[type]:
    """`config` and every config it holds (depth first), each once."""
    found = [config]
    for annotation in typing.get_type_hints(config).values():
        if dataclasses.is_dataclass(annotation):
            found += [c for c in nested_configs(annotation) if c not in found]
    return found


def option_specs(config: type, prefix: str = "") -> list[OptionSpec]:
    """One spec per field of `config` that is not itself a config (a held config gives its own, by its prefix)."""
    hints = typing.get_type_hints(config)
    return [OptionSpec(config, fld, hints[fld.name], prefix) for fld in dataclasses.fields(config)
            if not dataclasses.is_dataclass(hints[fld.name])]


def unique_flags(specs: list[OptionSpec]) -> list[OptionSpec]:
    """The specs, refusing two fields that claim one flag (a naming bug, found when the command is built)."""
    seen: dict[str, OptionSpec] = {}
    for spec in specs:
        if spec.flag in seen:
            raise RuntimeError(f"{spec.flag} is declared by both {seen[spec.flag].config.__name__} and {spec.config.__name__}")
        seen[spec.flag] = spec
    return specs


def typer_parameter(spec: OptionSpec, help_prefix: str = "") -> inspect.Parameter:
    """The typer parameter of one derived option (a positional argument when the field says so)."""
    meta, default = spec.field.metadata, spec.field.default
    annotation, cli_default = _cli_type(spec.annotation), (None if isinstance(default, tuple) else default)
    if meta.get("comma"):  # one text holding the list
        annotation, cli_default = typing.Optional[str], (",".join(map(str, default)) or None)  # noqa: UP045 (typer)
    help_text = help_prefix + _help(meta.get("help", ""), spec.field, numeric_kind(spec.annotation))
    parser = _parser(spec)
    if meta.get("argument"):
        info = typer.Argument(cli_default, help=help_text, parser=parser, show_default=default is not ..., metavar=spec.key.upper())
    else:
        names = [f"{spec.flag}/--no-{spec.flag[2:]}" if annotation is bool and default else spec.flag]
        names += [meta["short"]] if meta.get("short") else []
        info = typer.Option(cli_default, *names, help=help_text, parser=parser, show_default=default is not ...)
    return inspect.Parameter(spec.key, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=info)


def _parser(spec: OptionSpec) -> ValueParser | None:
    meta = spec.field.metadata
    if meta.get("key_values"):
        return KeyValueParser(spec.flag, spec.field, spec.annotation)
    if meta.get("comma"):
        return CommaListParser(spec.flag, spec.field, spec.annotation)
    if numeric_kind(spec.annotation) or meta.get("choices") or meta.get("pattern"):
        return ValueParser(spec.flag, spec.field, _element(spec.annotation))
    return None


def _cli_type(annotation: Any) -> Any:
    """The annotation typer needs: a tuple[X, ...] field is a repeatable option, list[X]."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return list[args[0]]
    return annotation


def _element(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    return args[0] if typing.get_origin(annotation) is tuple and args and args[-1] is Ellipsis else annotation


def _help(text: str, fld: dataclasses.Field, kind: type | None) -> str:
    """The help text with what the value must be (bounds or choices), so `--help` and docs/cli.md say it."""
    bounds, choices = field_bounds(fld, kind) if kind else None, field_choices(fld)
    pattern = fld.metadata.get("pattern")
    what = bounds.describe() if bounds else ("one of " + ", ".join(choices) if choices else (pattern[1] if pattern else ""))
    return f"{text} [{what}]" if what else text


def config_from(config: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    """`config` built from option values keyed by `OptionSpec.key`; a held config from its own prefix; absent keys
    keep the field's default. Checked by the config itself (`curate.fields.Checked`)."""
    hints, kwargs = typing.get_type_hints(config), {}
    for fld in dataclasses.fields(config):
        annotation = hints[fld.name]
        if dataclasses.is_dataclass(annotation):
            kwargs[fld.name] = config_from(annotation, values, getattr(annotation, "prefix", ""))
            continue
        key = option_key(prefix, fld.name)
        if key in values and not (values[key] is None and isinstance(fld.default, tuple)):
            kwargs[fld.name] = _normalized(values[key], fld)
    return config(**kwargs)


def flat_options(cfg: Any) -> dict[str, Any]:
    """A config's values keyed like its options (`declip_queue_size`), held configs' by their own prefix."""
    found: dict[str, Any] = {}
    for fld in dataclasses.fields(cfg):
        value = getattr(cfg, fld.name)
        if dataclasses.is_dataclass(value):
            found |= flat_options(value)
        else:
            found[option_key(getattr(cfg, "prefix", ""), fld.name)] = list(value) if isinstance(value, tuple) else value
    return found


def _normalized(value: Any, fld: dataclasses.Field) -> Any:
    if isinstance(value, list):
        value = tuple(value)
    if fld.metadata.get("path") and isinstance(value, (str, Path)) and Path(value).exists():
        value = str(Path(value).resolve())
    return value


class DerivedCommand:
    """A typer command whose parameters are computed when typer reads its signature, so a registry entry added
    at run time (a stage, a method) has its options; `body(values)` gets every parameter by name."""

    def __init__(self, name: str, doc: str, parameters: Callable[[], list[inspect.Parameter]], body: Callable[[dict], Any]):
        self.__name__ = self.__qualname__ = name
        self.__doc__ = doc
        self.__annotations__: dict = {}  # typing.get_type_hints reads it; the real types are in the signature
        self._parameters, self._body = parameters, body

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.Signature(self._parameters())

    def __call__(self, **values: Any) -> Any:
        return self._body(values)


# -- docs/cli.md's option tables ---------------------------------------------------------------------------------------
SHARED_OPTIONS = ("quiet",)  # every command has them (curate/cliutil.py); docs/cli.md's names table lists them once


def command_reference(commands: Mapping[str, Any]) -> str:
    """Markdown for each command (`### \\`curate score POOL\\``): a table of its options, each with its default and its
    help (which says what the value must be). Built from the click commands typer makes, so it is what `--help` says.
    The options every command shares (`SHARED_OPTIONS`) are left out of the tables."""
    parts = []
    for path, command in sorted(commands.items()):
        arguments = " ".join(p.name.upper() for p in command.params if p.param_type_name == "argument")
        rows = [_reference_row(p) for p in command.params
                if p.param_type_name == "option" and not p.hidden and p.name not in SHARED_OPTIONS]
        table = "| option | default | meaning |\n|---|---|---|\n" + "\n".join(rows) + "\n" if rows else "No options.\n"
        parts.append(f"### `{' '.join(filter(None, (path, arguments)))}`\n\n{table}")
    return "\n".join(parts)


def _reference_row(param: Any) -> str:
    names = ", ".join(f"`{name}`" for name in [*param.opts, *param.secondary_opts])
    default = param.default
    if getattr(param, "is_flag", False) and isinstance(default, bool):
        shown = "on" if default else "off"
    elif default is None or default == () or default == [] or default is ...:
        shown = ""
    else:
        shown = f"`{default}`"
    meaning = " ".join((param.help or "").split()).replace("|", "\\|")
    return f"| {names} | {shown} | {meaning} |"
