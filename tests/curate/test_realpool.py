"""`curate ingest packages`: the real-image pool from the installed packages (`just setup-packages` fetches them;
without them these tests fail, they never skip)."""

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import polars as pl
import pytest
from tierclip.curate.evalset import read_evalset
from tierclip.curate.pool import Pool
from tierclip.curate.realpool import packages
from tierclip.curate.realpool.build import PackagesConfig, available_sources, build_pool
from tierclip.curate.realpool.evalsets import balanced_column
from tierclip.curate.realpool.items import normalize_name
from tierclip.curate.realpool.noise import rotate

SOURCES = ("emoji-google", "openmoji", "tuxpaint")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "pool"
    cfg = PackagesConfig(out=out, sources=SOURCES, sources_given=True, trusted_n=300, seed=3)
    return cfg, build_pool(cfg)


def pool_meta(root) -> pl.DataFrame:
    return Pool(root).scan_meta().collect()


def test_every_package_of_the_list_is_installed():
    """The set-up (`just setup-packages`) ran: every package the pool reads is where the builder looks."""
    missing = [p.spec for p in packages.read_packages() if not packages.is_present(p)]
    assert missing == [], f"run `just setup-packages`: missing {missing}"


def test_rows_carry_source_licence_and_attribution(built):
    cfg, summary = built
    meta = pool_meta(cfg.out)
    assert set(meta["source"].unique()) == set(SOURCES)
    assert meta.select(pl.col("source", "license", "attribution").null_count()).row(0) == (0, 0, 0)
    licences = dict(meta.group_by("source").agg(pl.col("license").first()).rows())
    assert licences == {"emoji-google": "Apache-2.0", "openmoji": "CC-BY-SA-4.0", "tuxpaint": "GPL-2.0"}
    assert summary["sources"]["tuxpaint"]["license"] == "GPL-2.0"
    assert json.loads((cfg.out / "packages.json").read_text())["recipe"]["packages"]  # the package versions used
    sample = next(Pool(cfg.out).samples(0))
    assert {"source", "license", "attribution", "path"} <= set(sample.extra)


def test_concept_holdout_leaves_no_heldout_name_in_training(built):
    cfg, summary = built
    evalset = read_evalset(cfg.eval_dir)
    held_concepts = set(evalset.samples["concept"].to_list())
    held_names = held_concepts | {normalize_name(n) for n in evalset.samples["caption"].to_list()}
    for root in (cfg.out, cfg.trusted_dir):
        meta = pool_meta(root)
        assert not held_concepts & set(meta["concept"].drop_nulls().to_list())
        texts = meta["caption"].drop_nulls().to_list() + meta["original_caption"].drop_nulls().to_list()
        assert not held_names & {normalize_name(t) for t in texts}
    assert summary["heldout_concepts"] == round(0.2 * summary["concepts"])


def test_every_style_and_skin_tone_of_a_heldout_emoji_goes_with_it(built):
    from tierclip.curate.realpool.build import READERS
    from tierclip.curate.realpool.emoji import read_text

    cfg, _ = built
    samples = read_evalset(cfg.eval_dir).samples
    text = read_text()
    items = [item for source in ("emoji-google", "openmoji") for item in READERS[source](text)]
    held = set(samples["concept"].to_list())
    expected = Counter(item.concept for item in items if item.concept in held)
    assert Counter(samples["concept"].to_list()) == expected
    toned = samples.filter(pl.col("skin_tone").is_not_null()).group_by("concept", "source").agg(pl.col("skin_tone").n_unique())
    assert toned.height > 0 and toned["skin_tone"].min() == 5


def test_misaligned_rows_are_flagged_and_really_mismatched(built):
    cfg, summary = built
    meta = pool_meta(cfg.out)
    rotated = meta.filter(pl.col("gt_misaligned"))
    assert rotated.height == summary["misaligned"] and abs(rotated.height - 0.3 * meta.height) <= summary["rotation_kept"] + 1
    assert (rotated["caption"] != rotated["original_caption"]).all()
    assert meta.filter(~pl.col("gt_misaligned"))["original_caption"].null_count() == meta.height - rotated.height
    flags = meta.select(pl.any_horizontal("gt_misaligned", "gt_non_english", "gt_stock_title", "gt_exact_dup", "gt_entity"))
    assert (meta["gt_clean"] == ~flags.to_series()).all()
    foreign = meta.filter(pl.col("gt_non_english"))
    assert foreign.height > 0 and (foreign["gt_lang"] != "en").all()


def test_zero_shot_tasks_are_balanced_and_retrieval_covers_every_heldout_image(built):
    cfg, _ = built
    evalset = read_evalset(cfg.eval_dir)
    tasks = {task["name"]: task for task in evalset.tasks}
    assert tasks["heldout_retrieval"]["kind"] == "retrieval"
    assert evalset.samples["caption"].null_count() == 0
    assert (cfg.eval_dir / evalset.samples["file"][0]).is_file()
    for name in ("group", "skin_tone"):
        counts = Counter(evalset.samples[tasks[name]["label_column"]].drop_nulls().to_list())
        assert len(set(counts.values())) == 1 and sorted(counts) == sorted(tasks[name]["classnames"])
    assert len(tasks["skin_tone"]["classnames"]) == 5


def test_same_packages_and_options_give_the_same_pool_bytes(tmp_path):
    def build(out):
        build_pool(PackagesConfig(out=out, sources=("emoji-twitter", "tuxpaint"), sources_given=True, trusted_n=40, seed=1))
        return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and p.name != "pool.json"}

    first, second = build(tmp_path / "a"), build(tmp_path / "b")
    assert first.keys() == second.keys() and len(first) > 10
    assert [k for k in first if first[k] != second[k]] == []


def test_a_missing_npm_package_is_one_line(tmp_path):
    env = {**__import__("os").environ, packages.CACHE_ENV: str(tmp_path / "empty")}
    done = subprocess.run([sys.executable, "-m", "tierclip.curate.cli", "ingest", "packages", "--out", str(tmp_path / "p")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "npm package emoji-datasource-google@16.0.0 not found" in lines[0]
    assert "just setup-packages" in lines[0] and not (tmp_path / "p").exists()


def test_a_missing_debian_package_is_skipped_by_default_and_refused_when_named(tmp_path, monkeypatch, capsys):
    from tierclip.curate.errors import UserError

    monkeypatch.setenv(packages.DEBIAN_ROOT_ENV, str(tmp_path))
    chosen = available_sources(PackagesConfig(out=tmp_path / "p"))
    assert chosen == ("emoji-google", "emoji-twitter", "openmoji")
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 2 and all(line.startswith("skipping source") for line in printed)
    with pytest.raises(UserError, match="debian package tuxpaint-stamps-default not found"):
        available_sources(PackagesConfig(out=tmp_path / "p", sources=("tuxpaint",), sources_given=True))


def test_rotation_never_keeps_a_caption_and_never_swaps_within_a_concept():
    captions = [f"c{i}" for i in range(100)]
    concepts = [f"k{i // 4}" for i in range(100)]  # four styles per concept
    rotation = rotate(captions, concepts, [True] * 100, 0.5, np.random.default_rng(0))
    assert len(rotation.donors) + rotation.kept == 50
    assert all(row != donor and concepts[row] != concepts[donor] for row, donor in rotation.donors.items())


def test_balanced_column_keeps_equal_counts_of_the_classes_with_enough_rows():
    labels = ["a"] * 10 + ["b"] * 4 + ["c"] * 2 + [None]
    column, classes = balanced_column(labels, 3, np.random.default_rng(0))
    assert classes == ["a", "b"] and Counter(v for v in column if v) == {"a": 4, "b": 4}
    assert all(v is None or v == labels[i] for i, v in enumerate(column))


def test_subsets_of_the_pool_name_their_sources_and_licences(built, tmp_path):
    from tierclip.curate.cli import app
    from typer.testing import CliRunner

    cfg, _ = built
    result = CliRunner().invoke(app, ["filter", str(cfg.out), "--where", "source != 'tuxpaint'", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    shares = json.loads((tmp_path / "s" / "manifest.json").read_text())["source_shares"]
    assert set(shares) == {"emoji-google", "openmoji"} and sum(s["share"] for s in shares.values()) == pytest.approx(1.0)
    assert shares["openmoji"]["license"] == "CC-BY-SA-4.0"
