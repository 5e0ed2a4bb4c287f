"""`curate`: build, score, filter and inspect pools of image-text pairs."""

from __future__ import annotations

from pathlib import Path

import typer
from tierclip.curate.cliutil import new_app, print_table, run_app

app = new_app(__doc__)


@app.command()
def validate(
    pool: Path = typer.Argument(..., help="Pool folder (holds pool.json)."),
    no_shards: bool = typer.Option(False, "--no-shards", help="Skip reading the tar shards (faster; checks meta and sidecars only)."),
) -> None:
    """Check a pool against the format and print its row counts per status."""
    from tierclip.curate.pool import Pool
    from tierclip.curate.validate import validate_pool

    opened = Pool(pool)
    report = validate_pool(opened, check_shards=not no_shards)
    print(f"pool {opened.name}: {report.n_rows} rows in {opened.info.n_shards} shards, stages: {', '.join(opened.stages()) or '-'}")
    print_table(sorted(report.status_counts.items(), key=lambda kv: -kv[1]), ("status", "rows"))
    for problem in report.problems:
        print(f"problem: {problem}")
    if not report.ok:
        raise typer.Exit(1)


from tierclip.curate.ingest.cli import download, ingest_app  # noqa: E402
from tierclip.curate.quality.cli import quality  # noqa: E402
from tierclip.curate.scoring.cli import score  # noqa: E402
from tierclip.curate.selection.cli import filter_command, inspect_command, reshard_command, subset_app, tiers_command  # noqa: E402
from tierclip.curate.synth.cli import synth  # noqa: E402

app.add_typer(ingest_app, name="ingest")
app.command("download")(download)
app.command("score")(score)
app.command("synth")(synth)
app.command("filter")(filter_command)
app.command("tiers")(tiers_command)
app.command("inspect")(inspect_command)
app.command("reshard")(reshard_command)
app.add_typer(subset_app, name="subset")
app.command("quality")(quality)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
