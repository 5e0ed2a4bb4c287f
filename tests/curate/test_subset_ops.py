"""Subset set operations and DataComp .npy export / import."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from tierclip.curate.cli import app
from tierclip.curate.errors import UserError
from tierclip.curate.selection.setops import combine, export_npy, import_npy
from tierclip.curate.selection.uidorder import sort_uids
from tierclip.curate.subset import pool_ref, read_subset, write_subset
from typer.testing import CliRunner

from tests.curate.selection_pools import all_uids, meta_pool


@pytest.fixture
def two_subsets(tmp_path):
    pool = meta_pool(tmp_path / "pool", [{} for _ in range(10)])
    uids = all_uids(pool)
    a = write_subset(tmp_path / "a", uids[:6], {"pool": pool_ref(pool), "rule": "first six"})
    b = write_subset(tmp_path / "b", uids[4:], {"pool": pool_ref(pool), "rule": "last six"})
    return pool, uids, a, b


@pytest.mark.parametrize(("op", "expected"), [("intersect", range(4, 6)), ("union", range(10)), ("minus", range(4))])
def test_set_operations(two_subsets, tmp_path, op, expected):
    pool, uids, a, b = two_subsets
    out = combine(op, a.path, b.path, tmp_path / op)
    assert set(out.uids["uid"]) == {uids[i] for i in expected}
    assert out.uids["uid"].to_list() == sorted(out.uids["uid"].to_list())
    assert out.manifest["pool"]["name"] == pool.name and out.manifest["parent"] == [str(a.path), str(b.path)]


def test_set_operation_across_pools_is_a_clear_error(two_subsets, tmp_path):
    _, _, a, _ = two_subsets
    other = meta_pool(tmp_path / "other", [{} for _ in range(3)], name="otherpool")
    c = write_subset(tmp_path / "c", all_uids(other), {"pool": pool_ref(other)})
    with pytest.raises(UserError, match="from pool 'otherpool' but .* from pool 'metapool'"):
        combine("union", a.path, c.path, tmp_path / "x")
    result = CliRunner().invoke(app, ["subset", "intersect", str(a.path), str(c.path), "--out", str(tmp_path / "y")])
    assert isinstance(result.exception, UserError) and not (tmp_path / "y").exists()


def test_npy_round_trip_uses_datacomp_dtype_and_order(two_subsets, tmp_path):
    pool, uids, a, _ = two_subsets
    assert export_npy(a.path, tmp_path / "a.npy") == 6
    array = np.load(tmp_path / "a.npy")
    assert array.dtype == np.dtype("u8,u8")
    # DataComp's own conversion (baselines/apply_filter.py) followed by its save_uids sort
    reference = np.array([(int(u[:16], 16), int(u[16:32], 16)) for u in read_subset(a.path).uids["uid"]], np.dtype("u8,u8"))
    reference.sort()
    assert np.array_equal(array, reference)
    back = import_npy(tmp_path / "a.npy", pool, tmp_path / "a2")
    assert back.uids.equals(a.uids) and back.manifest["pool"]["name"] == pool.name


def test_npy_high_bits_survive(tmp_path):
    rows = [{"uid": u} for u in ("ffffffffffffffff0100000000000000", "8000000000000000ffffffffffffff00", "00" * 16)]
    pool = meta_pool(tmp_path / "pool", rows, n_shards=1)
    subset = write_subset(tmp_path / "s", all_uids(pool), {"pool": pool_ref(pool)})
    export_npy(subset.path, tmp_path / "s.npy")
    assert import_npy(tmp_path / "s.npy", pool, tmp_path / "s2").uids.equals(subset.uids)


def test_import_npy_rejects_foreign_uids_and_wrong_dtype(two_subsets, tmp_path):
    pool, _, _, _ = two_subsets
    np.save(tmp_path / "foreign.npy", np.array([(1, 2)], np.dtype("u8,u8")))
    with pytest.raises(UserError, match="1 of 1 uids are not in pool metapool.*another pool"):
        import_npy(tmp_path / "foreign.npy", pool, tmp_path / "x")
    np.save(tmp_path / "plain.npy", np.arange(4))
    with pytest.raises(UserError, match="expected DataComp's 1-d array of dtype u8,u8"):
        import_npy(tmp_path / "plain.npy", pool, tmp_path / "x")


def test_cli_export_and_import(two_subsets, tmp_path):
    pool, _, a, _ = two_subsets
    runner = CliRunner()
    assert runner.invoke(app, ["subset", "export-npy", str(a.path), "--out", str(tmp_path / "a.npy")]).exit_code == 0
    result = runner.invoke(app, ["subset", "import-npy", str(tmp_path / "a.npy"), "--pool", str(pool.root), "--out", str(tmp_path / "i")])
    assert result.exit_code == 0, result.output
    assert read_subset(tmp_path / "i").uids.equals(a.uids)


def test_uid_sort_by_halves_equals_string_sort():
    rng = np.random.default_rng(0)
    hex_uids = [rng.bytes(16).hex() for _ in range(500)] + ["f" * 32, "0" * 32, "8" + "0" * 31]
    assert sort_uids(pl.Series(hex_uids)).to_list() == sorted(hex_uids)
    assert sort_uids(pl.Series(["b", "a", "c" * 32])).to_list() == ["a", "b", "c" * 32]
