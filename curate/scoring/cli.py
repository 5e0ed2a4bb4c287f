"""`curate score`: run scoring stages over a pool and write their sidecars under scores/STAGE/.

The stage options are not written out here: each stage's config dataclass
declares them (`curate.stages.base.option`: flag and help text per field), and
`ScoreCommand` turns every field of every stage in `STAGES` into a typer
option when the command line is parsed. A new stage is one file plus its
entry in `STAGES`; its options appear in `curate score --help` by themselves.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path
from typing import Any

import typer


def score_pool_command(pool: Path, stages: str, engine: str, workers: int, ray_address: str | None, force: bool,
                       **stage_options: Any) -> None:
    """Compute stage sidecars shard by shard; completed shards are skipped, so a killed run resumes where it stopped."""
    from tierclip.curate.scoring.runner import score_pool

    names = [s.strip() for s in stages.split(",") if s.strip()]
    for report in score_pool(pool, names, stage_configs(stage_options), engine=engine, workers=workers,
                             address=ray_address, force=force):
        extra = f"; {report.build}" if report.build else ""
        print(f"{report.stage}: {report.shards_done} shards computed, {report.shards_skipped} already done{extra}")


# -- options derived from the stages' config dataclasses --------------------------------------------
def _param_name(stage: str, field: str) -> str:
    return f"{stage}__{field}"


def option_fields() -> list[tuple[str, dataclasses.Field, str, type]]:
    """(stage name, field, flag, type) for every option of every registered stage; a flag used twice is a bug."""
    from tierclip.curate.stages import STAGES

    found, seen = [], {}
    for name, stage in STAGES.items():
        hints = typing.get_type_hints(stage.config)
        for field in dataclasses.fields(stage.config):
            flag = field.metadata.get("flag") or f"--{stage.prefix}-{field.name.replace('_', '-')}"
            if flag in seen:
                raise RuntimeError(f"stages '{seen[flag]}' and '{name}' both declare the option {flag}")
            seen[flag] = name
            found.append((name, field, flag, hints[field.name]))
    return found


def stage_configs(values: dict[str, Any]) -> dict[str, Any]:
    """One config per stage from the parsed options (`score_pool` makes the path options absolute)."""
    from tierclip.curate.stages import STAGES

    options: dict[str, dict[str, Any]] = {name: {} for name in STAGES}
    for name, field, _, _ in option_fields():
        options[name][field.name] = values.get(_param_name(name, field.name), field.default)
    return {name: STAGES[name].config(**kwargs) for name, kwargs in options.items()}


def _parameters() -> list[inspect.Parameter]:
    from tierclip.curate.stages import STAGES

    keyword = inspect.Parameter.KEYWORD_ONLY
    fixed = [
        inspect.Parameter("pool", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Path,
                          default=typer.Argument(..., help="Pool folder (holds pool.json).")),
        inspect.Parameter("stages", keyword, annotation=str, default=typer.Option(
            "basic,lang", "--stages", "-s", help=f"Comma-separated stages: {', '.join(STAGES)}. "
                                                 "Dependencies listed too run first (clip before image_dedup and cluster).")),
        inspect.Parameter("engine", keyword, annotation=str, default=typer.Option(
            "local", "--engine", help="local: a process pool on this machine; ray: Ray tasks over shards and global phases.")),
        inspect.Parameter("workers", keyword, annotation=int, default=typer.Option(
            2, "--workers", "-j", help="Worker processes (local) or CPUs of a local Ray instance (ray).")),
        inspect.Parameter("ray_address", keyword, annotation=typing.Optional[str], default=typer.Option(  # noqa: UP045 (typer)
            None, "--ray-address", help="Ray cluster to run on: HEAD:PORT of its `ray start --head --port PORT`, with "
                                        "RAY_AUTH_MODE=token and its token here (docs/architecture.md); default: a local Ray.")),
        inspect.Parameter("force", keyword, annotation=bool, default=typer.Option(
            False, "--force", help="Delete and recompute the listed stages' sidecars (needed to change their options).")),
    ]
    derived = [
        inspect.Parameter(_param_name(name, field.name), keyword, annotation=kind,
                          default=typer.Option(field.default, flag, help=f"{name}: {field.metadata.get('help', '')}"))
        for name, field, flag, kind in option_fields()
    ]
    return fixed + derived


class ScoreCommand:
    """The `curate score` callback; its signature (and so its options) is built from `STAGES` when typer reads it."""

    __name__ = "score"
    __qualname__ = "score"
    __doc__ = score_pool_command.__doc__
    __annotations__: dict = {}  # noqa: RUF012 (typing.get_type_hints reads it; the real types are in the signature)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.Signature(_parameters())

    def __call__(self, pool: Path, stages: str, engine: str, workers: int, ray_address: str | None, force: bool,
                 **stage_options: Any) -> None:
        score_pool_command(pool, stages, engine, workers, ray_address, force, **stage_options)


score = ScoreCommand()
