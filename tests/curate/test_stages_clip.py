"""clip, image_dedup and cluster through `curate score` with a tiny random open_clip checkpoint laid out like a train run."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from tierclip.curate.cli import app
from tierclip.curate.errors import UserError
from tierclip.curate.evalset import write_evalset
from tierclip.curate.stages.clip import ClipConfig, embeddings_tag, load_model
from typer.testing import CliRunner

from tests.curate.stage_fixtures import TINY_MODEL, image_bytes, save_tiny_checkpoint
from tests.tiny import make_pool

RED, BLUE, GREEN = image_bytes((220, 20, 20)), image_bytes((20, 20, 220), (20, 10)), image_bytes((20, 200, 20))


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clip")
    checkpoint = save_tiny_checkpoint(tmp / "run")
    pool = tmp / "pool"
    make_pool(pool, [[(RED, "a red square"), (RED, "a red square again"), (b"\x89PNG broken", "broken")],
                     [(None, "no image"), (BLUE, "a blue square"), (GREEN, None)]])
    evalset = tmp / "eval"
    (evalset / "images").mkdir(parents=True)
    (evalset / "images" / "blue.png").write_bytes(BLUE)
    write_evalset(evalset, "ref", [{"name": "retrieval", "kind": "retrieval", "caption_column": "caption"}],
                  pl.DataFrame({"file": ["images/blue.png"], "caption": ["blue"]}))
    result = CliRunner().invoke(app, [
        "score", str(pool), "--stages", "cluster,image_dedup,clip", "--clip-model", TINY_MODEL, "--clip-pretrained", str(checkpoint),
        "--workers", "1", "--clip-batch-size", "2", "--clip-loader-workers", "2", "--cluster-k", "2", "--cluster-semdedup-eps", "0.01",
        "--cluster-reference", str(evalset)])
    assert result.exit_code == 0, result.output
    frames = {s: pl.read_parquet(pool / "scores" / s / "*.parquet") for s in ("clip", "image_dedup", "cluster")}
    return pool, checkpoint, frames, result.output


def test_clip_scores_finite_null_for_unreadable_and_embeddings_aligned(scored):
    pool, checkpoint, frames, _ = scored
    scores = frames["clip"]["clip_score"].to_list()
    assert scores[2] is None and scores[3] is None  # broken bytes, no image
    assert all(np.isfinite(scores[i]) and -1 <= scores[i] <= 1 for i in (0, 1, 4, 5))
    tag = embeddings_tag(ClipConfig(model=TINY_MODEL, pretrained=str(checkpoint)))
    assert tag == f"{TINY_MODEL}-run-checkpoint"
    shard0, shard1 = (np.load(pool / "embeddings" / tag / f"0000{s}.npy") for s in (0, 1))
    assert shard0.shape == (3, 2, 16) and shard0.dtype == np.float16
    assert np.isnan(shard0[2, 0]).all() and np.isnan(shard1[0, 0]).all() and np.isfinite(shard0[:, 1]).all()
    emb = np.concatenate([shard0, shard1]).astype(np.float32)
    for row in (0, 1, 4, 5):
        assert emb[row, 0] @ emb[row, 1] == pytest.approx(scores[row], abs=2e-3)
    assert np.array_equal(emb[0, 0], emb[1, 0])  # same image bytes, same image embedding


def test_image_dedup_groups_identical_images_and_keeps_the_best_scored(scored):
    _, _, frames, _ = scored
    out, scores = frames["image_dedup"], frames["clip"]["clip_score"].to_list()
    assert out["image_dup_group"].to_list() == [0, 0, 2, 3, 4, 5]
    best = 0 if scores[0] >= scores[1] else 1
    assert out["image_dup_keep"].to_list()[:2] == [best == 0, best == 1]
    assert out["image_dup_keep"].to_list()[2:] == [True] * 4
    sha1 = out["image_sha1"].to_list()
    assert sha1[0] == sha1[1] and len(sha1[0]) == 40 and sha1[3] is None and len(set(sha1[4:])) == 2


def test_cluster_flags_on_the_pool(scored):
    _, _, frames, output = scored
    out = frames["cluster"]
    assert out["cluster_id"].to_list()[2:4] == [None, None] and out["cluster_dist"].null_count() == 2
    assert set(out["cluster_id"].drop_nulls().to_list()) == {0, 1}
    assert out["semdedup_keep"].to_list()[:2].count(True) == 1 and out["semdedup_keep"].to_list()[2:] == [True] * 4
    near = out["cluster_near_ref"].to_list()
    blue_cluster = out["cluster_id"][4]
    assert near[4] is True  # the reference set is the blue image itself
    assert near == [cid == blue_cluster if cid is not None else False for cid in out["cluster_id"].to_list()]
    assert "cluster: 2 shards computed" in output


def test_clip_model_errors(tmp_path):
    with pytest.raises(UserError, match="unknown open_clip model"):
        load_model(ClipConfig(model="no-such-model", pretrained="x"))
    with pytest.raises(UserError, match="neither a checkpoint file nor a pretrained tag"):
        load_model(ClipConfig(model="RN50", pretrained=str(tmp_path / "missing.pt")))
    with pytest.raises(UserError, match="no such model config"):
        load_model(ClipConfig(model="RN50", pretrained="openai", model_config=str(tmp_path / "none.json")))


def test_model_config_option_registers_a_custom_config(scored, tmp_path):
    import json
    import shutil

    from tests.curate.stage_fixtures import TINY_CONFIG

    _, checkpoint, _, _ = scored
    lone = tmp_path / "elsewhere" / "weights.pt"  # no model_configs/ next to it
    lone.parent.mkdir()
    shutil.copy(checkpoint, lone)
    config = tmp_path / "tc-stagetest-other.json"
    config.write_text(json.dumps(TINY_CONFIG))
    model, _, _, device = load_model(ClipConfig(model="tc-stagetest-other", pretrained=str(lone), model_config=str(config)))
    assert device == "cpu" and model.visual is not None


def test_rebatch_regroups_worker_chunks_into_model_batches_in_order():
    import torch
    from tierclip.curate.stages.clip import rebatch

    chunks = [(torch.arange(s, s + n).float()[:, None], torch.ones(n, dtype=torch.bool)) for s, n in ((0, 3), (3, 3), (6, 1))]
    batches = list(rebatch(chunks, 4))
    assert [len(ok) for _, ok in batches] == [4, 3]
    assert torch.cat([p for p, _ in batches]).flatten().tolist() == list(range(7))


def test_embeddings_do_not_depend_on_loader_workers(tmp_path):
    from tierclip.curate.stages.clip import encode

    checkpoint = save_tiny_checkpoint(tmp_path / "run")
    blobs = [RED, BLUE, None, GREEN, b"broken", RED, BLUE] * 3
    captions = [f"caption {i}" for i in range(len(blobs))]
    results = [encode(ClipConfig(model=TINY_MODEL, pretrained=str(checkpoint), batch_size=5, loader_workers=w), blobs, captions)
               for w in (0, 3)]
    (image0, text0), (image3, text3) = results
    assert image0.shape == (21, 16) and np.isnan(image0[2]).all() and np.isnan(image0[4]).all()
    np.testing.assert_allclose(image3, image0, atol=1e-6)
    np.testing.assert_allclose(text3, text0, atol=1e-6)


def _plain_loop(cfg: ClipConfig, blobs: list, captions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The clip stage's arithmetic written out in one process: decode, preprocess, tokenize, batch, forward, normalise."""
    import torch
    import torch.nn.functional as F
    from tierclip.curate.images import ImageDecodeError, decode_image

    model, preprocess, tokenizer, _ = load_model(cfg)
    images, texts = [], []
    with torch.inference_mode():
        for start in range(0, len(blobs), cfg.batch_size):
            pixels, ok = [], []
            for blob in blobs[start:start + cfg.batch_size]:
                try:
                    pixels.append(preprocess(decode_image(blob)))
                    ok.append(True)
                except ImageDecodeError:
                    pixels.append(torch.zeros(3, 32, 32))
                    ok.append(False)
            image = F.normalize(model.encode_image(torch.stack(pixels)).float(), dim=-1).numpy()
            image[~np.array(ok)] = np.nan
            images.append(image)
            tokens = tokenizer(captions[start:start + cfg.batch_size])
            texts.append(F.normalize(model.encode_text(tokens).float(), dim=-1).numpy())
    return np.concatenate(images), np.concatenate(texts)


def test_embeddings_equal_the_plain_loop_bit_for_bit_with_workers_kept_across_shards(tmp_path):
    from tierclip.curate.stages import clip

    checkpoint = save_tiny_checkpoint(tmp_path / "run")
    blobs = [RED, BLUE, None, GREEN, b"broken", image_bytes((90, 10, 200), (48, 40), "JPEG")] * 3
    captions = [f"caption {i}" for i in range(len(blobs))]
    expected = _plain_loop(ClipConfig(model=TINY_MODEL, pretrained=str(checkpoint), batch_size=4), blobs, captions)
    for workers in (0, 2):
        cfg = ClipConfig(model=TINY_MODEL, pretrained=str(checkpoint), batch_size=4, loader_workers=workers)
        pids = []
        for _ in range(2):  # two shards: the second reuses the loader (and its worker processes)
            image, text = clip.encode(cfg, iter(blobs), captions)
            assert np.array_equal(image, expected[0], equal_nan=True) and np.array_equal(text, expected[1])
            loader = next(iter(clip._DECODERS.values()))[0]
            pids.append([w.pid for w in loader._iterator._workers] if workers else [])
        assert pids[0] == pids[1] and len(pids[0]) == workers
    clip.close_loaders()


def test_read_ahead_yields_in_order_and_raises_the_source_error_after_its_items():
    from tierclip.curate.stages.clip import read_ahead

    def source():
        yield from range(5)
        raise UserError("shard 3: sample 5 has key 'x' but meta has 'y'")

    seen = []
    with pytest.raises(UserError, match="sample 5"):
        for item in read_ahead(source(), 2):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_jpeg_draft_is_an_option_recorded_with_the_scores_and_moves_only_large_jpegs(tmp_path):
    import io
    import json

    from PIL import Image

    checkpoint = save_tiny_checkpoint(tmp_path / "run")
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(buffer, "JPEG")
    large, small = buffer.getvalue(), image_bytes((200, 120, 20), (48, 48), "JPEG")
    pool = make_pool(tmp_path / "pool", [[(large, "a green square"), (small, "an orange square"), (RED, "a red square")]])
    common = ["score", str(pool.root), "--stages", "clip", "--clip-model", TINY_MODEL, "--clip-pretrained", str(checkpoint),
              "--workers", "1", "--clip-loader-workers", "0"]
    tag = embeddings_tag(ClipConfig(model=TINY_MODEL, pretrained=str(checkpoint)))
    runs = []
    for extra in ([], ["--clip-jpeg-draft", "--force"]):
        result = CliRunner().invoke(app, [*common, *extra])
        assert result.exit_code == 0, result.output
        runs.append(np.load(pool.root / "embeddings" / tag / "00000.npy"))
    full, drafted = runs
    assert not np.array_equal(full[0, 0], drafted[0, 0])          # 256 px >= 2 x 32: decoded at reduced scale
    assert np.array_equal(full[1:], drafted[1:])                  # a 48-px JPEG and a PNG: decoded in full
    options = json.loads((pool.root / "scores" / "clip" / "_config.json").read_text())["options"]
    assert options["jpeg_draft"] is True
    again = CliRunner().invoke(app, common)                       # without the option: other results, so refused
    assert isinstance(again.exception, UserError) and "other options (jpeg_draft)" in str(again.exception)
