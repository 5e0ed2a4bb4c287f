"""One CLI vocabulary (docs/cli.md): checked on the commands themselves, through typer's click commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from tierclip.analysis.cli import app as analysis_app
from tierclip.curate.cli import app as curate_app
from tierclip.train.cli import app as train_app

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = (ROOT / "docs" / "cli.md").read_text()
# Names the glossary replaced: none may come back as an option.
RETIRED = {"--score-column", "--threads", "--processes", "--format", "--score-col"}
POOL_COMMANDS = ("curate validate", "curate score", "curate filter", "curate tiers", "curate quality", "train run")
COMMA_LIST_EXCEPTIONS = {"--dedup"}  # names the action; its value lists the kinds (docs/cli.md)
SHARED = {"--quiet"}  # every command has it (curate/cliutil.py); docs/cli.md's names table says so once


def _walk(command, path):
    if hasattr(command, "commands"):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, [*path, name])
    else:
        yield " ".join(path), command


COMMANDS = dict(item for name, app in (("curate", curate_app), ("train", train_app), ("analysis", analysis_app))
                for item in _walk(typer.main.get_command(app), [name]))


def options(command) -> list:
    return [p for p in command.params if p.param_type_name == "option" and not p.hidden]


def arguments(command) -> list[str]:
    return [p.name.upper() for p in command.params if p.param_type_name == "argument"]


def glossary_section(path: str) -> str:
    match = re.search(rf"^### `{re.escape(path)}( [A-Z ]+)?`\n(.*?)(?=^### |\Z)", GLOSSARY, re.S | re.M)
    assert match, f"docs/cli.md has no section for `{path}`"
    return match.group(2)


def test_every_command_and_option_is_in_the_glossary():
    assert len(COMMANDS) >= 25
    for path, command in COMMANDS.items():
        listed = set(re.findall(r"`(--[a-z0-9-]+)`", glossary_section(path)))
        assert {p.opts[0] for p in options(command)} - SHARED == listed, path
        assert SHARED <= {p.opts[0] for p in options(command)}, path
    assert all(f"| `{name}`" in GLOSSARY for name in SHARED)


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_no_retired_names_and_one_meaning_per_name(path):
    for param in options(COMMANDS[path]):
        names = set(param.opts + param.secondary_opts)
        assert not names & RETIRED, (path, names)
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


def test_retired_options_are_refused():
    from typer.testing import CliRunner

    result = CliRunner().invoke(curate_app, ["filter", "pool", "--out", "x", "--score-column", "clip_score"])
    assert result.exit_code == 2 and "No such option" in result.output
