"""`analysis collect` and `analysis report`: build a config, call the library, print where the output is."""

from __future__ import annotations

from pathlib import Path

import typer
from tierclip.curate.cliopts import checked


def collect_command(
    runs: list[Path] = typer.Argument(..., help="Run folders, folders holding run folders (e.g. runs/), or globs."),
    out: Path = typer.Option(..., "--out", help="Parquet file for the tidy table (one row per run x task x metric)."),
) -> None:
    """Collect finished runs (results.json + eval.jsonl + config.json) into one Parquet table."""
    from tierclip.analysis.collect import collect
    from tierclip.curate import atomic
    from tierclip.curate.errors import UserError

    table, problems = collect(runs)
    for problem in problems:
        typer.echo(f"skipped/problem: {problem}", err=True)
    if table.is_empty():
        raise UserError(f"{', '.join(map(str, runs))}: no finished runs found")
    atomic.write_parquet(out, table)
    typer.echo(f"{table['run'].n_unique()} runs, {table.height} rows -> {out} ({len(problems)} problems)")


def report_command(
    runs: list[Path] = typer.Argument(..., help="Run folders, folders holding run folders (e.g. runs/), or globs."),
    out: Path = typer.Option(..., "--out", help="Report folder: index.html, summary.md, fits.json and the figures."),
    figure_format: str = typer.Option("png", "--figure-format", help="Format of the figures written: png, svg or pdf."),
    task: str = typer.Option(None, "--task", help="Eval task to report (default: the task most runs report)."),
    metric: str = typer.Option(None, "--metric", help="Metric of that task (default: top1 when present)."),
    n_boot: int = checked(200, "--n-boot", ge=0, help="Bootstrap resamples behind every confidence interval (0 = no intervals)."),
    seed: int = checked(0, "--seed", ge=0, le=2**32 - 1, help="Seed of the bootstrap resampling."),
    tau: float = checked(None, "--tau", kind=float, ge=0.05, le=1000,
                         help="Hold the repetition half-life tau fixed (epochs) instead of fitting it."),
    headline_size: int = checked(None, "--headline-size", ge=1, help="Subset size at which the summary compares tiers "
                                 "(default: the size shared by the most tiers, then seeds, then the largest)."),
) -> None:
    """Fit scaling curves over finished runs and write an HTML + Markdown report with figures."""
    from tierclip.analysis.plots import FORMATS
    from tierclip.analysis.report import ReportConfig, report
    from tierclip.analysis.study import StudyConfig
    from tierclip.curate.errors import UserError

    if figure_format not in FORMATS:
        raise UserError(f"--figure-format must be one of {', '.join(FORMATS)}, not {figure_format!r}")
    cfg = ReportConfig(out, figure_format, StudyConfig(task=task, metric=metric, n_boot=n_boot, seed=seed, tau=tau,
                                                       headline_size=headline_size))
    paths, study = report(runs, cfg)
    for line in study.conclusions[:6]:
        typer.echo(line)
    for finding in study.findings:
        typer.echo(f"finding: {finding.claim} — {finding.verdict}")
    typer.echo(f"{len(study.problems)} problems; report: {paths['index']} and {paths['summary']}")
