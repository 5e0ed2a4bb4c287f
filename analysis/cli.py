"""`analysis`: collect training runs, fit scaling curves and write scaling reports."""

from __future__ import annotations

from tierclip.analysis.commands import collect_command, report_command
from tierclip.curate.cliutil import new_app, run_app

app = new_app(__doc__)
app.command("collect")(collect_command)
app.command("report")(report_command)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
