"""`train run` and `train sweep`: commands derived from their configs, which build a config and call the library.

No option is written out here. `train run`'s are the fields of `train.config.RunOptions` and of every method's
config (`train.methods.METHODS`, `--PREFIX-FIELD`), `train sweep`'s the fields of `train.sweep.SweepOptions`; they
become typer options (help, default, bounds checked when the command line is parsed) when typer reads the
commands' signatures (`curate.cliopts.DerivedCommand`), so a method added to METHODS has its options at once.
"""

from __future__ import annotations

import inspect

import typer
from tierclip.curate.cliopts import DerivedCommand, typer_parameter


def run_parameters() -> list[inspect.Parameter]:
    """POOL and the run-level options, then every method's options (help prefixed with the methods that use them)."""
    from tierclip.train.config import run_option_specs
    from tierclip.train.methods import method_option_specs, method_users

    context = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    run = [typer_parameter(spec) for spec in run_option_specs()]
    methods = [typer_parameter(spec, f"{', '.join(method_users(spec.config))}: ") for spec in method_option_specs()]
    return [context, *run, *methods]


def run_command(values: dict) -> None:
    """Train a CLIP-family model on a pool subset; evaluate it when --eval is given."""
    from tierclip.train.config import make_run_config, run_option_specs
    from tierclip.train.run import run_training

    ctx = values.pop("ctx")
    run_keys = {spec.key for spec in run_option_specs()}
    given = {key: value for key, value in values.items() if key in run_keys or _on_command_line(ctx, key)}
    print(run_training(make_run_config(**given)))


def _on_command_line(ctx, key: str) -> bool:
    """A method option the user gave (the others keep their method's defaults and are not checked against --method)."""
    source = ctx.get_parameter_source(key)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def sweep_parameters() -> list[inspect.Parameter]:
    from tierclip.curate.cliopts import option_specs
    from tierclip.train.sweep import SweepOptions

    return [typer_parameter(spec) for spec in option_specs(SweepOptions)]


def sweep_command(values: dict) -> None:
    """Run a grid of `train run`s one after another (finished runs skipped, unfinished resumed), or print them."""
    from tierclip.curate.cliopts import config_from
    from tierclip.train.sweep import SweepOptions, sweep

    for line in sweep(config_from(SweepOptions, values)):
        print(line)


run = DerivedCommand("run", run_command.__doc__, run_parameters, run_command)
sweep = DerivedCommand("sweep", sweep_command.__doc__, sweep_parameters, sweep_command)
