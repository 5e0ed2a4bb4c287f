"""`curate score`: run scoring stages over a pool and write their sidecars under scores/STAGE/.

The stage options are not written out here: each stage's config dataclass declares them (`curate.fields.option`:
help, default and bounds per field), and `curate.cliopts` turns every field of every stage in `STAGES` into a
typer option `--STAGE-FIELD` when the command line is parsed. A new stage is one file plus its entry in `STAGES`;
its options appear in `curate score --help` (and are range-checked) by themselves.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any

import typer
from tierclip.curate.cliopts import DerivedCommand, OptionSpec, checked, config_from, option_specs, typer_parameter, unique_flags


def score_pool_command(values: dict[str, Any]) -> None:
    """Compute stage sidecars shard by shard; completed shards are skipped, so a killed run resumes where it stopped."""
    from tierclip.curate.scoring.runner import score_pool

    names = [s.strip() for s in values["stages"].split(",") if s.strip()]
    for report in score_pool(values["pool"], names, stage_configs(values), engine=values["engine"], workers=values["workers"],
                             address=values["ray_address"], force=values["force"]):
        extra = f"; {report.build}" if report.build else ""
        print(f"{report.stage}: {report.shards_done} shards computed, {report.shards_skipped} already done{extra}")


def stage_option_specs() -> list[tuple[str, OptionSpec]]:
    """(stage name, option) for every option of every registered stage; a flag claimed twice is a bug."""
    from tierclip.curate.stages import STAGES

    found = [(name, spec) for name, stage in STAGES.items() for spec in option_specs(stage.config, stage.prefix)]
    unique_flags([spec for _, spec in found])
    return found


def stage_configs(values: dict[str, Any]) -> dict[str, Any]:
    """One config per stage from the parsed options (paths that exist made absolute)."""
    from tierclip.curate.stages import STAGES

    return {name: config_from(stage.config, values, stage.prefix) for name, stage in STAGES.items()}


def _parameters() -> list[inspect.Parameter]:
    from tierclip.curate.stages import STAGES

    keyword = inspect.Parameter.KEYWORD_ONLY
    fixed = [
        inspect.Parameter("pool", keyword, annotation=Path,
                          default=typer.Argument(..., help="Pool folder (holds pool.json).", metavar="POOL")),
        inspect.Parameter("stages", keyword, annotation=str, default=typer.Option(
            "basic,lang", "--stages", "-s", help=f"Comma-separated stages: {', '.join(STAGES)}. "
                                                 "Dependencies listed too run first (clip before image_dedup and cluster).")),
        inspect.Parameter("engine", keyword, annotation=str, default=checked(
            "local", "--engine", kind=str, choices=("local", "ray"),
            help="local: a process pool on this machine; ray: Ray tasks over shards and global phases.")),
        inspect.Parameter("workers", keyword, annotation=int, default=checked(
            2, "--workers", "-j", ge=1, help="Worker processes (local) or CPUs of a local Ray instance (ray).")),
        inspect.Parameter("ray_address", keyword, annotation=typing.Optional[str], default=typer.Option(  # noqa: UP045 (typer)
            None, "--ray-address", help="Ray cluster address (e.g. ray://host:10001); default: start Ray locally.")),
        inspect.Parameter("force", keyword, annotation=bool, default=typer.Option(
            False, "--force", help="Delete and recompute the listed stages' sidecars (needed to change their options).")),
    ]
    return fixed + [typer_parameter(spec, f"{name}: ") for name, spec in stage_option_specs()]


score = DerivedCommand("score", score_pool_command.__doc__, _parameters, score_pool_command)
