"""`train`: fit CLIP, CLIP+Aug, SLIP and FLIP on pool subsets and evaluate them zero-shot."""

from __future__ import annotations

from tierclip.curate.cliutil import new_app, run_app
from tierclip.train.eval_cli import eval_run, make_evalset_app
from tierclip.train.run_cli import run, sweep

app = new_app(__doc__)

app.command("eval")(eval_run)
app.add_typer(make_evalset_app, name="make-evalset")
app.command("run")(run)
app.command("sweep")(sweep)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
