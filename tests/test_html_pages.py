"""Our HTML pages in a real browser: headless Chromium (Debian's `chromium`) over the DevTools protocol.

Both pages are opened from file:// as a user opens them: the `analysis report` of a grid of fake runs
(with a tier and a run named like markup) and the `curate inspect` gallery of a tiny pool whose captions
hold a <script> and an onerror handler. Checked: every <img> loaded (naturalWidth > 0), no console
error, uncaught exception or failed load, and the captions did not execute (they show as text).

`TIERCLIP_SCREENSHOT_DIR=docs/img pytest tests/test_html_pages.py` also saves the report's screenshot
there (docs/img/analysis-report.png: the top of the report of the fake-run grid, shown in docs/analysis.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import Browser

SCRIPT_CAPTION = '<script>window.__pwned = "script"; console.error("caption script ran")</script>a red circle'
HANDLER_CAPTION = '<img src=x onerror="window.__pwned = \'onerror\'">a blue square'
PROBES = {
    "images": "[...document.images].map(i => [i.getAttribute('src').slice(0, 40), i.complete, i.naturalWidth])",
    "pwned": "typeof window.__pwned === 'undefined' ? null : window.__pwned",
    "scripts": "document.scripts.length",
    "text": "document.body.innerText",
}


@pytest.fixture(scope="module")
def browser():
    with Browser(width=1200, height=900) as opened:
        yield opened


def assert_clean(report, min_images: int) -> None:
    assert report.errors == []
    images = report.values["images"]
    assert len(images) >= min_images
    assert [src for src, complete, width in images if not complete or width == 0] == []
    assert report.values["pwned"] is None and report.values["scripts"] == 0


def test_analysis_report_in_a_browser(browser, tmp_path):
    from tierclip.analysis.report import ReportConfig, report
    from tierclip.analysis.study import StudyConfig

    from tests.analysis.fake_runs import write_grid, write_run

    runs = tmp_path / "runs"
    write_grid(runs, sizes=(1000, 3000, 6000, 10000), methods=("clip", "slip"), seeds=(0, 1))  # 4 sizes: fits drawn
    config = StudyConfig(task="shape", metric="top1", n_boot=10)
    paths, _ = report([runs], ReportConfig(tmp_path / "report", "png", config))
    loaded = browser.load(paths["index"], PROBES)
    assert_clean(loaded, min_images=5)
    shots = os.environ.get("TIERCLIP_SCREENSHOT_DIR")
    if shots:
        browser.screenshot(Path(shots) / "analysis-report.png", max_height=1600)
    for seed in (0, 1):  # a tier named like markup, shown in tables, legends and data cards
        write_run(runs, tier=SCRIPT_CAPTION, method="clip", subset_size=500, samples_seen=30000, seed=seed,
                  shape_top1=0.3, name=f"markup{seed}")
    paths, _ = report([runs], ReportConfig(tmp_path / "report-markup", "png", config))
    loaded = browser.load(paths["index"], PROBES)
    assert_clean(loaded, min_images=5)
    assert "<script>window.__pwned" in loaded.values["text"]  # the tier name is shown as text


def test_inspect_gallery_in_a_browser(browser, tmp_path):
    from tierclip.curate.selection.inspect_page import write_report
    from tierclip.curate.selection.inspect_rows import InspectConfig

    from tests.tiny import make_pool, png_bytes

    pairs = [(png_bytes((200, 40 * i, 0), size=(32, 32)), caption)
             for i, caption in enumerate([SCRIPT_CAPTION, HANDLER_CAPTION, "a green triangle"])]
    pool = make_pool(tmp_path / "pool", [pairs, [(b"not an image", SCRIPT_CAPTION)]], name="hostile")
    page = write_report(pool.root, tmp_path / "inspect", InspectConfig(per_reason=10))
    loaded = browser.load(page, PROBES)
    assert_clean(loaded, min_images=4)  # 3 thumbnails (the broken image shows "no image") + the charts
    thumbnails = [src for src, _, _ in loaded.values["images"] if src.startswith("data:image/png")]
    assert len(thumbnails) == 3
    text = loaded.values["text"]
    assert text.count("<script>window.__pwned") == 2 and "onerror=" in text


def test_the_checks_catch_a_broken_page(browser, tmp_path):
    """The same probes on a page that does what ours must not: a missing image and a script that runs."""
    page = tmp_path / "bad.html"
    page.write_text('<!doctype html><html><body><img src="missing.png"><img src="data:image/png;base64,AAAA">'
                    f"{SCRIPT_CAPTION}</body></html>")
    loaded = browser.load(page, PROBES)
    assert any("missing.png" in error for error in loaded.errors)
    assert any("caption script ran" in error for error in loaded.errors)
    assert [width for _, _, width in loaded.values["images"]] == [0, 0]
    assert loaded.values["pwned"] == "script" and loaded.values["scripts"] == 1
    with pytest.raises(AssertionError):
        assert_clean(loaded, min_images=1)
