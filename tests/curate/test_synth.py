"""`curate synth`: defect rates, ground truth that matches what was injected, determinism, eval set."""

from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image
from tierclip.curate.cli import app
from tierclip.curate.errors import UserError
from tierclip.curate.evalset import read_evalset
from tierclip.curate.pool import Pool, read_tar_samples
from tierclip.curate.synth.captions import english_mentions
from tierclip.curate.synth.config import DEFECTS, make_config
from tierclip.curate.synth.defects import INJECTORS
from tierclip.curate.synth.evalset import TASKS
from tierclip.curate.synth.languages import OTHER_LANGUAGES, shape_nouns
from tierclip.curate.synth.writer import GT_FLAGS, synthesize
from typer.testing import CliRunner

WEB_N = 3000
ENGLISH_ONLY_WORDS = {"the", "and", "of", "with", "shape", "shapes", "there", "is", "at", "photo", "picture"}


def _make(root: Path, n: int, **options):
    profile = options.pop("profile", "web")
    rates = options.pop("rates", None)
    options = {"image_size": 32, "shard_size": 1000, "eval_n": 0, "workers": 1, **options}
    config = make_config(n, root, profile, rates, **options)
    synthesize(config, progress=False)
    return config


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """A default web-profile pool of 3000 at 32 px, its meta and its samples by key."""
    root = tmp_path_factory.mktemp("synth") / "web"
    config = _make(root, WEB_N, eval_n=128)
    pool = Pool(root)
    meta = pool.scan_meta().collect()
    samples = {s.key: s for shard in pool.shard_ids() for s in read_tar_samples(pool.tar_path(shard))}
    return config, meta, samples


def _rows(meta: pl.DataFrame, flag: str) -> list[dict]:
    return meta.filter(pl.col(flag)).to_dicts()


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _aligned_difference(a: Image.Image, b: Image.Image) -> float:
    """Smallest mean absolute pixel difference over shifts of up to 2 px (inner crop)."""
    x, y = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    inner = y[2:-2, 2:-2]
    return min(float(np.abs(x[2 + dy:x.shape[0] - 2 + dy, 2 + dx:x.shape[1] - 2 + dx] - inner).mean())
               for dy in range(-2, 3) for dx in range(-2, 3))


def _truth(row: dict) -> tuple[Counter, Counter]:
    return Counter(row["gt_shapes"]), Counter(row["gt_colors"])


# -- rates -------------------------------------------------------------------------------
def test_default_rates_within_two_points_and_one_flag_per_row(web):
    config, meta, _ = web
    assert meta.height == WEB_N
    for name, rate in config.rates.as_dict().items():
        share = meta[f"gt_{name}"].mean()
        assert abs(share - rate) <= 0.02, (name, share, rate)
    assert abs(meta["gt_clean"].mean() - config.rates.clean) <= 0.02
    assert 0.30 <= meta["gt_clean"].mean() <= 0.40  # most samples have a defect, like a web pool
    flags_per_row = meta.select(pl.sum_horizontal([pl.col(c).cast(pl.Int32) for c in GT_FLAGS]))
    assert flags_per_row.to_series().to_list() == [1] * WEB_N


def test_requested_rates_within_two_points(tmp_path):
    rates = {"misaligned": 0.4, "corrupt": 0.1, "non_english": 0.15, "boilerplate": 0.0, "attribute_swap": 0.0}
    config = _make(tmp_path / "p", 1000, shard_size=250, rates=rates)
    meta = Pool(tmp_path / "p").scan_meta().collect()
    for name in DEFECTS:
        assert abs(meta[f"gt_{name}"].mean() - getattr(config.rates, name)) <= 0.02, name
    assert meta["gt_boilerplate"].sum() == 0
    assert set(INJECTORS) == set(DEFECTS)
    assert abs(meta["gt_misaligned"].mean() - 0.4) <= 0.02


# -- ground truth matches the injected defect -----------------------------------------------
def test_clean_captions_name_exactly_the_true_shapes_and_colours(web):
    _, meta, samples = web
    clean = _rows(meta, "gt_clean")
    assert len(clean) > 800
    for row in clean:
        assert english_mentions(row["caption"]) == _truth(row), row["caption"]
        assert samples[row["key"]].caption == row["caption"]
        assert row["status"] == "success" and row["gt_lang"] == "en"


def test_clean_images_decode_at_pool_size_and_are_all_different(web):
    _, meta, samples = web
    clean = _rows(meta, "gt_clean")
    hashes = {hashlib.sha1(samples[row["key"]].image).hexdigest() for row in clean}
    assert len(hashes) == len(clean)
    for row in clean[:200]:
        assert _decode(samples[row["key"]].image).size == (row["width"], row["height"]) == (32, 32)


def test_misaligned_caption_is_another_samples_and_does_not_describe_the_image(web):
    _, meta, _ = web
    clean_by_caption = {row["caption"]: row for row in _rows(meta, "gt_clean")}
    for row in _rows(meta, "gt_misaligned"):
        donor = clean_by_caption[row["caption"]]  # the caption of a clean sample...
        assert donor["uid"] != row["uid"]
        assert not set(zip(donor["gt_shapes"], donor["gt_colors"], strict=True)) & set(zip(row["gt_shapes"], row["gt_colors"], strict=True))
        assert english_mentions(row["caption"]) != _truth(row)  # ...that does not describe this image


def test_attribute_swap_caption_has_exactly_one_wrong_attribute(web):
    _, meta, _ = web
    for row in _rows(meta, "gt_attribute_swap"):
        (shapes, colors), (true_shapes, true_colors) = english_mentions(row["caption"]), _truth(row)
        wrong = sum((shapes - true_shapes).values()) + sum((colors - true_colors).values())
        assert wrong == 1, row["caption"]
        assert sum(shapes.values()) == sum(colors.values()) == len(row["gt_shapes"])


def test_boilerplate_names_no_shape_or_colour(web):
    _, meta, _ = web
    rows = _rows(meta, "gt_boilerplate")
    for row in rows:
        assert english_mentions(row["caption"]) == (Counter(), Counter()), row["caption"]
        assert row["gt_lang"] is None and row["caption"].strip()
    assert any(re.fullmatch(r"IMG_\d{4}\.JPG|click to enlarge|stock photo \d{5}", row["caption"]) for row in rows)


def test_non_english_captions_come_from_another_languages_templates(web):
    _, meta, _ = web
    rows = _rows(meta, "gt_non_english")
    assert {row["gt_lang"] for row in rows} == set(OTHER_LANGUAGES)
    for row in rows:
        words = set(re.findall(r"\w+", row["caption"]))
        assert words & shape_nouns(row["gt_lang"]), row["caption"]
        assert not {w.lower() for w in words} & ENGLISH_ONLY_WORDS, row["caption"]


def test_exact_duplicate_has_the_originals_bytes_and_caption(web):
    _, meta, samples = web
    by_uid = {row["uid"]: row for row in meta.to_dicts()}
    rows = _rows(meta, "gt_exact_dup")
    for row in rows:
        original = by_uid[row["gt_dup_of"]]
        assert original["key"] < row["key"] and original["shard"] == row["shard"]
        assert samples[row["key"]].image == samples[original["key"]].image
        assert row["caption"] == original["caption"] == samples[row["key"]].caption
        assert row["gt_shapes"] == original["gt_shapes"]
    assert sum(by_uid[row["gt_dup_of"]]["gt_clean"] for row in rows) >= 0.95 * len(rows)
    assert meta.filter(~pl.col("gt_exact_dup") & ~pl.col("gt_near_dup"))["gt_dup_of"].null_count() == WEB_N - 2 * len(rows)


def test_near_duplicate_is_a_slightly_changed_copy(web):
    _, meta, samples = web
    by_uid = {row["uid"]: row for row in meta.to_dicts()}
    for row in _rows(meta, "gt_near_dup"):
        original = by_uid[row["gt_dup_of"]]
        mine, theirs = samples[row["key"]].image, samples[original["key"]].image
        assert mine != theirs
        a, b = _decode(mine).convert("RGB"), _decode(theirs).convert("RGB")
        assert a.size == b.size
        assert _aligned_difference(a, b) < 12  # the same picture, up to a 2-px shift and JPEG noise
        assert row["caption"] != original["caption"]
        assert english_mentions(row["caption"]) == english_mentions(original["caption"])


def test_tiny_images_are_tiny(web):
    _, meta, samples = web
    for row in _rows(meta, "gt_tiny"):
        size = _decode(samples[row["key"]].image).size
        assert size == (row["width"], row["height"]) and max(size) <= 12


def test_corrupt_images_do_not_decode(web):
    _, meta, samples = web
    for row in _rows(meta, "gt_corrupt"):
        with pytest.raises(Exception):  # noqa: B017 - PIL raises OSError, SyntaxError or its own errors
            _decode(samples[row["key"]].image)
        assert row["status"] == "corrupt_image" and row["error"] and row["width"] is None
    assert set(meta.filter(pl.col("status") == "corrupt_image")["uid"]) == set(meta.filter(pl.col("gt_corrupt"))["uid"])


def test_empty_captions(web):
    _, meta, samples = web
    for row in _rows(meta, "gt_empty_caption"):
        assert row["caption"].strip() == "" and samples[row["key"]].caption == row["caption"]
        assert row["status"] == "empty_caption"
    assert meta.filter(~pl.col("gt_corrupt") & ~pl.col("gt_empty_caption"))["status"].unique().to_list() == ["success"]


def test_meta_rows_follow_the_pool_format(web):
    _, meta, samples = web
    assert meta["key"].n_unique() == WEB_N and meta["uid"].n_unique() == WEB_N
    assert list(samples) == meta["key"].to_list()
    assert meta["key"][5] == "000000005" and meta["url"][5] == "synth://0/5"


# -- the pool as a whole ----------------------------------------------------------------------
def test_pool_passes_validate(web):
    config, _, _ = web
    result = CliRunner().invoke(app, ["validate", str(config.out)])
    assert result.exit_code == 0, result.output
    assert f"{WEB_N} rows" in result.output


def test_same_seed_same_bytes_whatever_the_workers_and_after_a_resume(tmp_path):
    options = dict(shard_size=100, rates={"exact_dup": 0.1, "near_dup": 0.1})
    first = _make(tmp_path / "a", 300, workers=1, **options)
    _make(tmp_path / "b", 300, workers=2, **options)
    (tmp_path / "b" / "meta" / "00001.parquet").unlink()  # as if killed before shard 1 finished
    _make(tmp_path / "b", 300, workers=1, **options)
    _make(tmp_path / "c", 300, seed=1, **options)
    for shard in range(first.n_shards):
        for part in (f"meta/{shard:05d}.parquet", f"shards/{shard:05d}.tar"):
            assert (tmp_path / "a" / part).read_bytes() == (tmp_path / "b" / part).read_bytes(), part
            assert (tmp_path / "a" / part).read_bytes() != (tmp_path / "c" / part).read_bytes(), part


def test_duplicates_follow_their_original_even_in_small_shards(tmp_path):
    _make(tmp_path / "small", 40, shard_size=3, profile="clean", rates={"exact_dup": 0.25, "near_dup": 0.25})
    meta = Pool(tmp_path / "small").scan_meta().collect()
    by_uid = {row["uid"]: row for row in meta.to_dicts()}
    dups = meta.filter(pl.col("gt_exact_dup") | pl.col("gt_near_dup")).to_dicts()
    assert len(dups) == 20
    for row in dups:
        original = by_uid[row["gt_dup_of"]]
        assert original["shard"] == row["shard"] and original["key"] < row["key"]


def test_clean_profile_has_no_defects(tmp_path):
    _make(tmp_path / "clean", 400, profile="clean")
    meta = Pool(tmp_path / "clean").scan_meta().collect()
    assert meta["gt_clean"].all() and meta["status"].unique().to_list() == ["success"]
    assert meta["gt_dup_of"].null_count() == 400


def test_user_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="add up"):
        make_config(10, tmp_path / "x", rate_overrides={"misaligned": 0.7, "corrupt": 0.5})
    with pytest.raises(UserError, match="--profile"):
        make_config(10, tmp_path / "x", profile="dirty")
    with pytest.raises(UserError, match="--shard-size"):
        _make(tmp_path / "one", 10, shard_size=1, profile="clean", rates={"exact_dup": 0.2})
    assert not (tmp_path / "one").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        _make(tmp_path / "busy", 10)


# -- eval set ----------------------------------------------------------------------------------
def test_eval_set_has_shape_color_and_retrieval_tasks(web):
    config, meta, pool_samples = web
    evalset = read_evalset(config.out / "eval")
    assert [task["name"] for task in evalset.tasks] == ["shape", "color", "retrieval"]
    samples = evalset.samples
    assert samples.height == 128
    assert Counter(samples["shape"]) == Counter({name: 16 for name in TASKS[0]["classnames"]})
    assert Counter(samples["color"]) == Counter({name: 16 for name in TASKS[1]["classnames"]})
    for row in samples.head(16).to_dicts():
        assert _decode(evalset.image_path(row["file"]).read_bytes()).size == (32, 32)
        assert english_mentions(row["caption"]) == (Counter([row["shape"]]), Counter([row["color"]]))
    pool_images = {hashlib.sha1(s.image).hexdigest() for s in pool_samples.values()}
    eval_images = {hashlib.sha1(evalset.image_path(f).read_bytes()).hexdigest() for f in samples["file"]}
    assert len(eval_images) == 128 and not eval_images & pool_images  # held out: no image shared with the pool


def test_eval_prompt_words_occur_in_training_captions(web):
    config, meta, _ = web
    vocabulary = {w for caption in meta.filter(pl.col("gt_clean"))["caption"] for w in re.findall(r"[a-z]+", caption.lower())}
    for task in read_evalset(config.out / "eval").tasks:
        if task["kind"] != "zeroshot":
            continue
        words = {w for template in task["templates"] for w in re.findall(r"[a-z]+", template.lower())}
        words |= {w for name in task["classnames"] for w in name.split()}
        assert words <= vocabulary, words - vocabulary


def test_cli_writes_pool_and_eval_set(tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["synth", "--n", "120", "--out", str(out), "--image-size", "32", "--shard-size", "50",
                                      "--profile", "clean", "--rate-tiny", "0.5", "--eval-n", "16",
                                      "--eval-out", str(tmp_path / "ev"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "gt_tiny" in result.output
    meta = Pool(out).scan_meta().collect()
    assert meta.height == 120 and meta["gt_tiny"].sum() == 60 and Pool(out).info.n_shards == 3
    assert read_evalset(tmp_path / "ev").samples.height == 16
