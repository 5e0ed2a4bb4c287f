"""`analysis report` against hostile or broken inputs: a `$...$` in a folder name, a NaN metric, `samples_seen: 0`,
a report killed mid-write, an --out that holds other files, and out-of-range numbers for its own options."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from tierclip.analysis.cli import app
from tierclip.analysis.report import ReportConfig, report
from tierclip.analysis.staging import _umask
from tierclip.analysis.study import StudyConfig
from tierclip.curate.errors import UserError
from typer.testing import CliRunner

from tests.analysis.fake_runs import write_grid, write_run

CFG = StudyConfig(task="shape", metric="top1", n_boot=4)


@pytest.fixture()
def runs(tmp_path):
    write_grid(tmp_path / "runs", tiers=("top10", "full"), sizes=(1000, 2000, 4000, 8000), methods=("clip",), seeds=(0, 1))
    return tmp_path / "runs"


def test_mathtext_in_a_tier_name_is_drawn_literally(runs, tmp_path):
    tier = r"$\undefinedcmd{_$"  # matplotlib's mathtext cannot parse this: it used to abort the report
    for seed in (0, 1):
        write_run(runs, tier=tier, method="clip", subset_size=8000, samples_seen=30000, seed=seed, shape_top1=0.5,
                  name=f"dollar{seed}")
    paths, study = report([runs], ReportConfig(tmp_path / "rep", "png", CFG))
    assert tier in set(study.points["tier"].to_list())
    assert paths["best_tier"].stat().st_size > 1000 and tier in (tmp_path / "rep" / "summary.md").read_text()


def test_nan_metric_and_zero_samples_seen_go_to_problems(runs, tmp_path):
    nan_run = write_run(runs, tier="top10", method="clip", subset_size=1000, samples_seen=30000, seed=5, shape_top1=0.3,
                        name="nan-run")
    (nan_run / "eval.jsonl").write_text(json.dumps({"task": "shape", "metric": "top1", "value": float("nan")}) + "\n"
                                        + json.dumps({"task": "color", "metric": "top1", "value": 0.5}) + "\n")
    write_run(runs, tier="top10", method="clip", subset_size=1000, samples_seen=0, seed=6, shape_top1=0.3, name="zero-run")
    paths, study = report([runs], ReportConfig(tmp_path / "rep", "png", CFG))
    problems = [str(p) for p in study.problems]
    assert any("nan-run/eval.jsonl: line 1" in p and "not a finite number" in p for p in problems)
    assert any("zero-run/results.json" in p and "samples_seen=0" in p for p in problems)
    assert "zero-run" not in set(study.points["run"].to_list()) and "nan-run" not in set(study.points["run"].to_list())
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "nan-run/eval.jsonl: line 1" in page and "zero-run/results.json" in page


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from tierclip.analysis import plots
    from tierclip.analysis.report import ReportConfig, report
    from tierclip.analysis.study import StudyConfig

    def die_while_saving(fig, out):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_bytes(b"")  # the figure file is open and empty when the kill arrives
        os.kill(os.getpid(), signal.SIGKILL)

    plots._save = die_while_saving
    report([sys.argv[1]], ReportConfig(Path(sys.argv[2]), "png", StudyConfig(task="shape", metric="top1", n_boot=4)))
""")


def _kill_mid_report(runs, out):
    result = subprocess.run([sys.executable, "-c", KILLER, str(runs), str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr


def test_a_killed_report_leaves_the_old_report_whole(runs, tmp_path):
    out = tmp_path / "rep"
    _kill_mid_report(runs, out)
    assert not out.exists()  # no half report: nothing at --out at all
    report([runs], ReportConfig(out, "png", CFG))
    assert out.stat().st_mode & 0o777 == 0o777 & ~_umask()  # a plain folder, not the staging folder's owner-only mode
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _kill_mid_report(runs, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the complete old report, byte for byte
    assert not any(p.stat().st_size == 0 for p in out.iterdir())
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(".rep.staging-")]
    assert len(stale) == 1  # the last killed writer's staging folder (each run removes those of dead writers)
    assert [p.stat().st_size for p in stale[0].iterdir()] == [0]  # where the empty figure went
    write_run(runs, tier="top10", method="clip", subset_size=500, samples_seen=30000, seed=0, shape_top1=0.2, name="new")
    _, study = report([runs], ReportConfig(out, "png", CFG))
    assert "new" in set(study.points["run"].to_list()) and (out / "index.html").read_bytes() != before["index.html"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rep.")]  # stale stages cleaned, no leftovers


def test_out_holding_other_files_is_refused_not_deleted(runs, tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "my-notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="holds files that are not part of a report \\(my-notes.txt\\)"):
        report([runs], ReportConfig(out, "png", CFG))
    assert (out / "my-notes.txt").read_text() == "keep me" and len(list(out.iterdir())) == 1
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="exists and is not a folder"):
        report([runs], ReportConfig(tmp_path / "file", "png", CFG))


@pytest.mark.parametrize("option, value, message", [
    ("--tau", "nan", "--tau nan: must be a number in [0.05, 1000]"),
    ("--tau", "-1", "--tau -1: must be a number in [0.05, 1000]"),
    ("--n-boot", "-1", "--n-boot -1: must be an integer >= 0"),
    ("--seed", "-3", "--seed -3: must be an integer in [0, 4294967295]"),
    ("--headline-size", "0", "--headline-size 0: must be an integer >= 1"),
])
def test_out_of_range_options_are_one_line_and_write_nothing(runs, tmp_path, option, value, message):
    out = tmp_path / "rep"
    result = subprocess.run([sys.executable, "-m", "tierclip.analysis.cli", "report", str(runs), "--out", str(out),
                             option, value], capture_output=True, text=True, timeout=300, env={**os.environ})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}"), result.stderr
    assert not out.exists()


def test_study_config_refuses_bad_numbers_in_process():
    for bad in ({"tau": float("nan")}, {"n_boot": -1}, {"tau": float("inf")}, {"level": 1.5}, {"headline_size": -2}):
        with pytest.raises(UserError):
            StudyConfig(**bad)
    result = CliRunner().invoke(app, ["report", "runs", "--out", "x", "--n-boot", "-1"])
    assert result.exit_code == 2 and "--n-boot -1: must be an integer >= 0" in result.output


def test_every_figure_label_is_plain_text(tmp_path, monkeypatch):
    """With mathtext off, no label may rely on it: matplotlib's default log-axis labels ($\\mathdefault{10^{3}}$)
    would show as markup, so every log axis gets plain-number labels."""
    from tierclip.analysis import plots

    from tests.analysis.test_degenerate import flat_and_clean_runs

    flat_and_clean_runs(tmp_path / "runs")
    for tier in ("flat", "clean"):  # a second budget: the repetition law gets 5 (samples seen, size) pairs
        for seed in (0, 1):
            write_run(tmp_path / "runs", tier=tier, method="clip", subset_size=1000, samples_seen=16000, seed=seed,
                      shape_top1=0.5 + 0.1 * seed)
    texts = []

    def keep(fig, out):
        fig.canvas.draw()
        texts.extend(t.get_text() for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels())
        return plots._pyplot().close(fig) or out

    monkeypatch.setattr(plots, "_save", keep)
    _, study = report([tmp_path / "runs"], ReportConfig(tmp_path / "rep", "png", CFG))
    assert any(f.drawable for f in study.repetition_fits) and "10,000" in texts
    assert texts and not [t for t in texts if "$" in t or "mathdefault" in t]
