"""report: from fake run folders (3 tiers x 4 sizes x 2 methods, accuracies from known curves + noise)."""

import json
import re

import pytest
from tierclip.analysis.cli import app
from tierclip.analysis.report import AXIS_SECTIONS, SECTIONS, ReportConfig, report
from tierclip.analysis.study import StudyConfig
from typer.testing import CliRunner

from tests.analysis.fake_runs import write_grid, write_run

EVIL_TIER = "<script>alert('tier')</script>&"
EVIL_RUN = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    runs = root / "runs"
    write_grid(runs, sizes=(1000, 3000, 6000, 10000), methods=("clip", "slip"), seeds=(0, 1))
    for seed in (0, 1):  # an oddly named tier with too few runs for any fit
        write_run(runs, tier=EVIL_TIER, method="clip", subset_size=500, samples_seen=30000, seed=seed, shape_top1=0.3,
                  name=f"evil{seed}")
    results = json.loads((runs / "evil0" / "results.json").read_text())
    (runs / "evil0" / "results.json").write_text(json.dumps({**results, "run": EVIL_RUN}))
    broken = write_run(runs, tier="top10", method="clip", subset_size=1000, samples_seen=30000, seed=9, shape_top1=0.9,
                       name="broken")
    (broken / "results.json").write_text("{ this is not json")
    missing = write_run(runs, tier="top10", method="clip", subset_size=1000, samples_seen=30000, seed=8, shape_top1=0.9,
                        name="missing")
    (missing / "results.json").unlink()
    write_run(runs, tier="top10", method="clip", subset_size=1000, samples_seen=30000, seed=7, shape_top1=0.9,
              name="unfinished", done=False)
    out = root / "report"
    paths, study = report([runs], ReportConfig(out, "png", StudyConfig(task="shape", metric="top1", n_boot=10)))
    return out, paths, study


def test_html_has_every_section_and_figure(built):
    out, paths, _ = built
    page = (out / "index.html").read_text()
    for key, title in SECTIONS.items():  # one model: no architecture, family or text-depth section
        assert (f"<h2>{title}</h2>" in page) == (key not in AXIS_SECTIONS), key
    assert page.rstrip().endswith("</table>\n</section>\n</body></html>".rstrip()) and "Findings vs the seed papers" in page
    sources = re.findall(r'(?:src|href)="([^"#]+)"', page)
    assert len(sources) >= 5
    # one budget: no repetition-law fit, so no repetition figure; the fit section says why in words
    assert "acc_vs_samples_seen" not in page and "Not drawn: no tier has a repetition-law fit" in page
    for source in sources:
        assert (out / source).is_file() and (out / source).stat().st_size > 1000, source
    summary = (out / "summary.md").read_text()
    for key, title in SECTIONS.items():
        assert (f"## {title}" in summary) == (key not in AXIS_SECTIONS), key


def test_conclusions_and_fits_from_known_curves(built):
    out, _, study = built
    # top10 is the best tier at 30k samples seen in the known curves (TIER_LAWS), for both methods
    assert all(row["tier"] == "top10" for row in study.best.filter(study.best["rank"] == 1).iter_rows(named=True)
               if row["tier"] != EVIL_TIER)
    summary = (out / "summary.md").read_text()
    # the headline: every tier at one size (the largest shared by all three), the same two seeds, gaps with intervals
    assert "at 30,000 samples seen (clip), every tier at subset size 10,000, seeds 0, 1: " in summary
    assert re.search(r"top\d+ 0\.\d{3} vs full 0\.\d{3}: \+\d+\.\d points \(95 % interval \+[\d.]+ to \+[\d.]+: a clear gain\)",
                     summary)
    quality = {f.measured.split(": ")[1].split(" ")[0]: f for f in study.findings if f.key == "quality"}
    assert set(quality) == {"top10", "top30"}  # each filtered tier vs full, at the headline size
    assert all(f.estimate.value > 0 and f.verdict in ("reproduced", "inconclusive") for f in quality.values())
    assert "reproduced" in {f.verdict for f in quality.values()}
    assert all("+0.026 ImageNet zero-shot" in f.paper_effect for f in quality.values())
    assert {f.verdict for f in study.findings if f.key != "quality"} <= {"not tested by these runs"}
    fitted = [f for f in study.sample_fits if f.model is not None]
    assert {(f.tier, f.method) for f in fitted} == {(t, m) for t in ("top10", "top30", "full") for m in ("clip", "slip")}
    # one budget x 3 sizes = 3 distinct points: too few for the 4-parameter repetition law, said so
    fits = json.loads((out / "fits.json").read_text())
    repetition = [f for f in fits["fits"] if f["x"] == "samples_seen"]
    assert repetition and all("need at least" in f["refusal"] for f in repetition)
    assert all(f["params"]["alpha"] > 0 for f in fits["fits"] if f["x"] == "unique_samples" and f["params"])


def test_bad_runs_named_and_rest_reported(built):
    out, _, study = built
    page, summary = (out / "index.html").read_text(), (out / "summary.md").read_text()
    for text in (page, summary):
        assert "broken/results.json: line 1" in text
        assert "missing/results.json: file is missing" in text
        assert "unfinished: no DONE file" in text
    runs = set(study.points["run"].to_list())
    assert not {"broken", "missing", "unfinished"} & runs and len(runs) == 48 + 2


def test_refused_fit_is_reported_not_fatal(built):
    out, _, _ = built
    page = (out / "index.html").read_text()
    assert "fit refused" in page and "need at least" in page


def test_names_from_runs_are_escaped(built):
    out, _, _ = built
    page, summary = (out / "index.html").read_text(), (out / "summary.md").read_text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;tier&#x27;)&lt;/script&gt;&amp;" in page
    assert "<script>" not in summary and "&lt;script>alert('tier')&lt;/script>&amp;" in summary
    assert "&gt;" not in summary and "&#x27;" not in summary  # the raw Markdown stays readable


def test_cli_report_svg_and_bad_format(tmp_path):
    write_grid(tmp_path / "runs", tiers=("top10", "full"), sizes=(1000, 3000), methods=("clip",), seeds=(0,))
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), "--figure-format", "svg",
                                 "--n-boot", "5"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rep" / "acc_vs_samples.svg").stat().st_size > 1000
    assert 'src="acc_vs_samples.svg"' in (tmp_path / "rep" / "index.html").read_text()
    bad = runner.invoke(app, ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r2"), "--figure-format", "gif"])
    assert bad.exit_code != 0


def test_gaps_in_words_one_seed_interval_noise_and_too_wide():
    from tierclip.analysis.study import gap_text

    def row(mean, std, n):
        return {"mean": mean, "std": std, "n": n}

    assert gap_text(row(0.30, None, 1), row(0.20, None, 1)) == "+10.0 points (one seed each: no interval)"
    # Welch: gap 0.10, se = 0.01 * sqrt(2/3), df = 4, t = 2.776 -> 0.10 ± 0.0227
    assert gap_text(row(0.30, 0.01, 3), row(0.20, 0.01, 3)) == "+10.0 points (95 % interval +7.7 to +12.3: a clear gain)"
    assert "within seed noise" in gap_text(row(0.30, 0.2, 3), row(0.29, 0.2, 3))
    # two seeds, a large spread: the interval would leave [-1, 1], so the gap is not bounded (said, not printed as one)
    wide = gap_text(row(0.50, 0.3, 2), row(0.20, 0.3, 2))
    assert wide.startswith("+30.0 points, but the seeds are too few to bound it") and "leaves [-1, 1]" in wide
