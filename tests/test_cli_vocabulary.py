"""One CLI vocabulary and one naming rule (docs/cli.md): checked on the commands themselves, through typer's click commands."""

from __future__ import annotations

import re

import pytest
from tierclip.curate.fields import flag_name

from tests.cli_reference import DOC, commands, generated, written

COMMANDS = commands()
GLOSSARY = DOC.read_text()
POOL_COMMANDS = ("curate validate", "curate score", "curate filter", "curate tiers", "curate quality", "train run")
COMMA_LIST_EXCEPTIONS = {"--dedup"}  # names the action; its value lists the kinds (docs/cli.md)
SCORE_OWN_OPTIONS = {"--stages", "--engine", "--workers", "--ray-address", "--force"}
SHARED = {"--quiet"}  # every command has it (curate/cliutil.py); docs/cli.md's names table says so once


def options(command) -> list:
    return [p for p in command.params if p.param_type_name == "option" and not p.hidden]


def arguments(command) -> list[str]:
    return [p.name.upper() for p in command.params if p.param_type_name == "argument"]


def glossary_section(path: str) -> str:
    match = re.search(rf"^### `{re.escape(path)}( [A-Z ]+)?`\n(.*?)(?=^### |^<!-- end|\Z)", GLOSSARY, re.S | re.M)
    assert match, f"docs/cli.md has no section for `{path}`"
    return match.group(2)


def test_docs_list_exactly_the_options_the_commands_have():
    assert written() == generated(), "docs/cli.md is out of date: run `.venv/bin/python -m tests.cli_reference`"
    assert len(COMMANDS) >= 25
    for path, command in COMMANDS.items():
        listed = set(re.findall(r"`(--[a-z0-9-]+)`", glossary_section(path)))
        names = {name for p in options(command) for name in p.opts + p.secondary_opts if name.startswith("--")}
        assert names - SHARED == listed, path
        assert SHARED <= names, path
    assert all(f"| `{name}`" in GLOSSARY for name in SHARED)


def test_an_option_is_the_name_of_the_field_it_sets():
    """Rule 1: the flag is the field's (or parameter's) name with dashes: no option renames what it sets."""
    for path, command in COMMANDS.items():
        for param in options(command):
            assert param.opts[0] == "--" + param.name.replace("_", "-"), (path, param.opts, param.name)


def test_stage_and_method_options_carry_their_registry_name():
    """Rule 2: `curate score` options are --STAGE-FIELD, `train run` method options --METHOD-FIELD (declared once)."""
    import dataclasses

    from tierclip.curate.stages import STAGES
    from tierclip.train.config import RunOptions
    from tierclip.train.methods import METHODS, method_option_specs

    stage_flags = {flag_name(stage.prefix, f.name) for stage in STAGES.values() for f in dataclasses.fields(stage.config)}
    assert {p.opts[0] for p in options(COMMANDS["curate score"])} - SHARED == SCORE_OWN_OPTIONS | stage_flags
    method_specs = method_option_specs()
    prefixes = {name.replace("_", "-") for name in METHODS}
    assert all(spec.prefix in prefixes for spec in method_specs)
    assert all(method.config.__dict__.get("prefix", name) == name for name, method in METHODS.items())
    run_flags = {flag_name("", f.name) for f in dataclasses.fields(RunOptions) if not f.metadata.get("argument")}
    assert {p.opts[0] for p in options(COMMANDS["train run"])} - SHARED == run_flags | {spec.flag for spec in method_specs}
    assert len({spec.flag for spec in method_specs}) == len(method_specs)  # DeFILIP reuses, never redeclares


def test_the_same_setting_elsewhere_keeps_its_name():
    """Rule 3: curate quality's lists re-run a filter or stage setting under its name, made plural."""
    elsewhere = {p.opts[0] for path in ("curate filter", "curate score") for p in options(COMMANDS[path])}
    for param in options(COMMANDS["curate quality"]):
        flag = param.opts[0]
        if "comma list" in (param.help or "").lower():
            singular = flag.removesuffix("-values") if flag.endswith("-values") else flag.removesuffix("s")
            assert singular in elsewhere, flag


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_one_meaning_per_name(path):
    for param in options(COMMANDS[path]):
        names = set(param.opts + param.secondary_opts)
        helptext = (param.help or "").lower()
        if "--workers" in names:
            assert path.startswith("curate ") and "process" in helptext, (path, param.help)
        if "--min-score" in names:
            assert param.type_descriptor.annotation is float, path  # one number; a list is --min-scores
        if ("comma list" in helptext or "comma-separated" in helptext) and not names & COMMA_LIST_EXCEPTIONS:
            assert param.opts[0].endswith("s"), (path, param.opts[0])


def test_pool_is_the_first_argument_of_pool_commands():
    for path in POOL_COMMANDS:
        assert arguments(COMMANDS[path])[:1] == ["POOL"], path
    assert arguments(COMMANDS["curate inspect"]) == ["TARGET"]  # a pool or a subset
