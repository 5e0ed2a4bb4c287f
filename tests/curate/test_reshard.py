"""curate reshard: a subset becomes a valid pool with the same samples, sidecars and embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from tierclip.curate.cli import app
from tierclip.curate.errors import UserError
from tierclip.curate.pool import Pool, read_tar_samples
from tierclip.curate.selection.config import FilterConfig
from tierclip.curate.selection.query import write_filtered
from tierclip.curate.selection.reshard import ReshardConfig, reshard
from tierclip.curate.subset import pool_ref, write_subset
from tierclip.curate.validate import validate_pool
from typer.testing import CliRunner

from tests.curate.selection_pools import add_sidecar, all_uids, meta_pool
from tests.tiny import make_pool, png_bytes


@pytest.fixture
def image_pool(tmp_path):
    shards = [[(png_bytes((30 * i, 10 * s, 0)), f"caption {s}-{i}") for i in range(4)] for s in range(3)]
    pool = make_pool(tmp_path / "pool", shards, name="imgpool")
    add_sidecar(pool, "clip", {"clip_score": [i / 12 for i in range(12)]})
    for shard in pool.shard_ids():
        embedding = np.arange(4 * 2 * 3, dtype=np.float16).reshape(4, 2, 3) + 100 * shard
        pool.embeddings_path("tiny-model", shard).parent.mkdir(parents=True, exist_ok=True)
        np.save(pool.embeddings_path("tiny-model", shard), embedding)
    return pool


def _samples(pool: Pool) -> dict[str, tuple]:
    return {s.key: (s.image, s.caption) for shard in pool.shard_ids() for s in read_tar_samples(pool.tar_path(shard))}


def test_reshard_writes_a_valid_pool_with_the_same_samples(image_pool, tmp_path):
    _, subset = write_filtered(image_pool, FilterConfig(min_score=0.3), tmp_path / "sub")
    new = reshard(subset.path, image_pool, tmp_path / "new", ReshardConfig(shard_size=3))
    report = validate_pool(new)
    assert report.ok, report.problems
    assert new.info.n_samples == subset.n == 8 and new.info.n_shards == 3
    assert sorted(all_uids(new)) == subset.uids["uid"].to_list()
    source, copied = _samples(image_pool), _samples(new)
    assert copied == {key: source[key] for key in copied} and len(copied) == 8
    assert new.stages() == ["clip"] and new.scan_scores("clip").collect()["clip_score"].min() >= 0.3
    rows = np.concatenate([np.load(new.embeddings_path("tiny-model", s)) for s in new.shard_ids()])
    assert rows.shape == (8, 2, 3) and rows[0, 0, 0] == 100 * 1 + 0  # first kept row: shard 1, row 0 (score 4/12)
    assert (tmp_path / "new" / "subset_manifest.json").is_file()


def test_reshard_is_deterministic(image_pool, tmp_path):
    _, subset = write_filtered(image_pool, FilterConfig(min_score=0.5), tmp_path / "sub")
    first = reshard(subset.path, image_pool, tmp_path / "a", ReshardConfig(shard_size=2))
    second = reshard(subset.path, image_pool, tmp_path / "b", ReshardConfig(shard_size=2))
    for shard in first.shard_ids():
        assert first.tar_path(shard).read_bytes() == second.tar_path(shard).read_bytes()
        assert first.meta_path(shard).read_bytes() == second.meta_path(shard).read_bytes()


def test_reshard_metadata_only_pool_via_cli(tmp_path):
    pool = meta_pool(tmp_path / "meta", [{"caption": f"c{i}"} for i in range(7)])
    subset = write_subset(tmp_path / "s", all_uids(pool)[2:], {"pool": pool_ref(pool)})
    result = CliRunner().invoke(app, ["reshard", str(subset.path), "--out", str(tmp_path / "new"), "--shard-size", "4"])
    assert result.exit_code == 0, result.output
    new = Pool(tmp_path / "new")
    assert validate_pool(new).ok and new.info.n_samples == 5 and new.info.n_shards == 2 and not new.has_images()


def test_reshard_rejects_a_subset_of_another_pool_and_an_existing_pool(image_pool, tmp_path):
    other = meta_pool(tmp_path / "other", [{} for _ in range(2)], name="other")
    foreign = write_subset(tmp_path / "f", all_uids(other), {"pool": pool_ref(other)})
    with pytest.raises(UserError, match="built from pool 'other', not 'imgpool'"):
        reshard(foreign.path, image_pool, tmp_path / "x", ReshardConfig())
    with pytest.raises(UserError, match="already holds a pool"):
        reshard(foreign.path, image_pool, image_pool.root, ReshardConfig())
