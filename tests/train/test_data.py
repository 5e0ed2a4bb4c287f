"""Training data: uid filtering, status filter, repetitions, corrupt samples, determinism, rank slices."""

from __future__ import annotations

import polars as pl
import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.pool import write_meta
from tierclip.train.data import PositionDataset, StreamPlan, build_index, make_loader, repetitions

from tests.tiny import make_pool, png_bytes
from tests.train.helpers import color_pairs, color_pool


def _to_tensor(image):
    import torchvision.transforms.functional as F

    return F.to_tensor(image)


def _tokenizer():
    from tierclip.train.models import get_tokenizer

    return get_tokenizer("tc-rn-tiny")


def test_index_keeps_only_subset_uids_with_success_status(tmp_path):
    pool = color_pool(tmp_path / "pool", shards=2, per_shard=8)
    meta0 = pool.meta(0)
    write_meta(pool.root, 0, meta0.with_columns(
        pl.when(pl.col("key") == meta0["key"][0]).then(pl.lit("corrupt_image")).otherwise(pl.col("status")).alias("status")))
    all_uids = pl.concat([pool.meta(0)["uid"], pool.meta(1)["uid"]])
    wanted = pl.concat([all_uids[:5], all_uids[10:12], pl.Series(["f" * 32])])  # 5 from shard 0 (one failed), 2 from shard 1, 1 unknown
    index = build_index(pool, wanted)
    assert index.n == 6
    assert set(index.uids) == set(wanted[1:7])
    assert index.counts == {"subset": 8, "in_pool": 7, "not_success": 1, "missing_in_shard": 0, "usable": 6}
    assert build_index(pool, None).n == 15


def test_epochs_cover_the_subset_and_repetitions_count(tmp_path):
    pool = color_pool(tmp_path / "pool", shards=1, per_shard=10)
    index = build_index(pool, None)
    dataset = PositionDataset(index, {}, _tokenizer(), seed=3)
    first = [int(dataset.permutation(0)[i]) for i in range(10)]
    second = [int(dataset.permutation(1)[i]) for i in range(10)]
    assert sorted(first) == sorted(second) == list(range(10))
    assert first != second  # each epoch is reshuffled
    assert repetitions(25, index.n) == 2.5


def test_corrupt_samples_are_replaced_and_counted(tmp_path):
    pairs = color_pairs(6)
    pairs[2] = (b"this is not an image", "a photo of a broken shape")
    pool = make_pool(tmp_path / "pool", [pairs])
    index = build_index(pool, None)
    dataset = PositionDataset(index, {"image": _to_tensor}, _tokenizer(), seed=0)
    loader = make_loader(dataset, StreamPlan(6), 0, 2, workers=0, seed=0)
    batches = list(loader)
    assert [tuple(b["image"].shape) for b in batches] == [(6, 3, 32, 32)] * 2
    assert sum(int(b["n_corrupt"].sum()) for b in batches) == 2  # once per epoch


def test_batches_are_a_function_of_positions_not_of_workers(tmp_path):
    import torchvision.transforms as T

    pool = color_pool(tmp_path / "pool", shards=2, per_shard=6)
    views = {"image": _to_tensor, "image_aug": T.Compose([T.RandomResizedCrop(16, scale=(0.2, 1.0)), T.ToTensor()])}
    dataset = PositionDataset(build_index(pool, None), views, _tokenizer(), seed=1)
    plan = StreamPlan(4)
    in_process = list(make_loader(dataset, plan, 0, 4, workers=0, seed=1))
    with_worker = list(make_loader(dataset, plan, 0, 4, workers=1, seed=1))
    resumed = list(make_loader(dataset, plan, 2, 4, workers=0, seed=1))
    for a, b in zip(in_process, with_worker, strict=True):
        assert all((a[k] == b[k]).all() for k in ("image", "image_aug", "text"))
    assert all((a["image_aug"] == b["image_aug"]).all() for a, b in zip(in_process[2:], resumed, strict=True))
    assert not (in_process[0]["image_aug"] == in_process[3]["image_aug"]).all()


def test_rank_slices_partition_the_global_batch():
    plans = [StreamPlan(12, accum_steps=2, rank=r, world_size=3) for r in range(3)]
    step_positions = sorted(p for plan in plans for a in range(2) for p in plan.positions(5, a))
    assert step_positions == list(range(60, 72))
    with pytest.raises(UserError, match="must divide"):
        StreamPlan(10, accum_steps=2, world_size=3)


def test_missing_shard_and_empty_subset_are_user_errors(tmp_path):
    pool = color_pool(tmp_path / "pool", shards=2, per_shard=4)
    with pytest.raises(UserError, match="no usable samples"):
        build_index(pool, pl.Series(["0" * 32]))
    pool.tar_path(1).unlink()
    with pytest.raises(UserError, match="missing shard"):
        build_index(pool, None)


def test_metadata_only_rows_are_not_trained_on(tmp_path):
    pool = make_pool(tmp_path / "pool", [[(png_bytes(size=(32, 32)), "a red shape"), (None, "caption without image")]])
    assert build_index(pool, None).counts["missing_in_shard"] == 1
