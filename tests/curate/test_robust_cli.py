"""Issue 11, items 5, 6, 8, 11 and 12: pool.json checked against its files, subsets tied to their pool,
bad option values refused up front, and one `error:` line (exit 2, nothing half-made) instead of a traceback."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from tierclip.curate.cli import main as curate_main
from tierclip.curate.errors import UserError
from tierclip.curate.pool import Pool
from tierclip.curate.subset import pool_ref, write_subset
from tierclip.train.cli import main as train_main

from tests.curate.robust_util import one_error_line, run_main
from tests.tiny import make_pool, png_bytes

REPO = Path(__file__).resolve().parents[2]


def pool_of(root: Path, shards: int = 3, per_shard: int = 4, name: str = "tiny", offset: int = 0) -> Pool:
    return make_pool(root, [[(png_bytes(((offset + s * 50 + i) % 256, 9, 9)), f"caption {offset} {s} {i}")
                             for i in range(per_shard)] for s in range(shards)], name=name)


def refused(main, args, monkeypatch, capsys, prog="curate") -> str:
    code, _, err = run_main(main, args, monkeypatch, capsys, prog)
    assert code == 2, err
    return one_error_line(err)


# -- 5. pool.json against its files ------------------------------------------------------------------
def test_edited_n_shards_is_refused_by_every_reader_naming_both_numbers(tmp_path, monkeypatch, capsys):
    pool = pool_of(tmp_path / "pool")
    info = json.loads((pool.root / "pool.json").read_text())
    (pool.root / "pool.json").write_text(json.dumps({**info, "n_shards": 1, "n_samples": 4}))
    for args in (["filter", str(pool.root), "--out", str(tmp_path / "s")],
                 ["inspect", str(pool.root), "--out", str(tmp_path / "r")],
                 ["score", str(pool.root), "--stages", "basic"]):
        line = refused(curate_main, args, monkeypatch, capsys)
        assert "n_shards 1" in line and "holds 3 meta files" in line, line
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()
    assert not (pool.root / "scores").exists()


def test_edited_n_samples_and_extra_tar_are_refused(tmp_path):
    pool = pool_of(tmp_path / "pool")
    info = json.loads((pool.root / "pool.json").read_text())
    (pool.root / "pool.json").write_text(json.dumps({**info, "n_samples": 100}))
    with pytest.raises(UserError, match="says n_samples 100 but the 3 meta files hold 12 rows"):
        Pool(pool.root)
    (pool.root / "pool.json").write_text(json.dumps(info))
    (pool.root / "shards" / "00003.tar").write_bytes(b"")
    with pytest.raises(UserError, match="says n_shards 3 but .*shards holds 4 tar shards"):
        Pool(pool.root)


@pytest.mark.parametrize("text, message", [("{}", "missing field(s) name, source, created, n_samples, n_shards"),
                                           ("[1, 2]", "expected a JSON object"),
                                           ('{"name": "x", "source": "s", "created": "c", "n_samples": "12", "n_shards": 3}',
                                            "field 'n_samples' is '12'"),
                                           ("{not json", "not valid JSON")])
def test_malformed_pool_json_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys, text, message):
    pool = pool_of(tmp_path / "pool")
    (pool.root / "pool.json").write_text(text)
    line = refused(curate_main, ["filter", str(pool.root), "--out", str(tmp_path / "s")], monkeypatch, capsys)
    assert str(pool.root / "pool.json") in line and message in line and "__init__" not in line


# -- 6. a subset carries its pool's identity ---------------------------------------------------------
def test_train_refuses_a_subset_of_another_pool_with_the_same_name(tmp_path, monkeypatch, capsys):
    first = pool_of(tmp_path / "a", shards=2, name="same")
    second = pool_of(tmp_path / "b", shards=1, name="same")  # half the rows of the first
    write_subset(tmp_path / "subset", first.scan_meta().collect()["uid"], {"pool": pool_ref(first), "rule": "all"})
    line = refused(train_main, ["run", str(second.root), "--subset", str(tmp_path / "subset"),
                                "--out", str(tmp_path / "run")], monkeypatch, capsys, "train")
    assert "another pool named 'same'" in line and "4 of 8 subset uids are not in this pool" in line
    assert "--allow-pool-mismatch" in line and not (tmp_path / "run").exists()


def test_allow_pool_mismatch_goes_on_and_says_how_many_rows_are_missing(tmp_path, capsys):
    from tierclip.train.config import make_run_config
    from tierclip.train.run import check_inputs, open_data

    first = pool_of(tmp_path / "a", shards=2, name="same")
    second = pool_of(tmp_path / "b", shards=1, name="same")
    write_subset(tmp_path / "subset", first.scan_meta().collect()["uid"], {"pool": pool_ref(first)})
    cfg = make_run_config(tmp_path / "run", second.root, tmp_path / "subset", allow_pool_mismatch=True)
    data = open_data(cfg, *check_inputs(cfg))
    assert data.index.n == 4
    err = capsys.readouterr().err
    assert "WARNING" in err and "4 of 8 subset uids are not in this pool" in err


def test_an_old_manifest_without_fingerprint_is_noted_and_missing_rows_still_refused(tmp_path, capsys):
    from tierclip.train.config import make_run_config
    from tierclip.train.run import check_inputs, open_data

    pool = pool_of(tmp_path / "pool", shards=2)
    other = pool_of(tmp_path / "other", shards=1, offset=7)
    uids = pl.concat([pool.meta(0)["uid"], other.meta(0)["uid"]])
    write_subset(tmp_path / "old", uids, {"pool": {"path": str(pool.root), "name": pool.name}})
    cfg = make_run_config(tmp_path / "run", pool.root, tmp_path / "old")
    with pytest.raises(UserError, match="4 of 8 subset uids are not rows of pool"):
        open_data(cfg, *check_inputs(cfg))
    assert "records no pool fingerprint" in capsys.readouterr().err


def test_set_operations_refuse_subsets_of_two_pools_with_one_name(tmp_path):
    from tierclip.curate.selection.setops import combine

    first, second = pool_of(tmp_path / "a", name="same"), pool_of(tmp_path / "b", shards=1, name="same")
    write_subset(tmp_path / "x", first.meta(0)["uid"], {"pool": pool_ref(first)})
    write_subset(tmp_path / "y", second.meta(0)["uid"], {"pool": pool_ref(second)})
    with pytest.raises(UserError, match="from another pool named 'same'"):
        combine("union", tmp_path / "x", tmp_path / "y", tmp_path / "z")


# -- 8. values that would select nothing -------------------------------------------------------------
@pytest.mark.parametrize("args, message", [(["--min-score", "nan"], "--min-score nan: must be a number"),
                                           (["--min-score", "inf"], "--min-score inf: must be a number"),
                                           (["--lang", "en", "--min-lang-prob", "2"], "--min-lang-prob 2: must be a number in [0, 1]"),
                                           (["--lang", "xx"], "--lang 'xx': not a fastText lid.176 language code")])
def test_filter_refuses_values_that_select_nothing(tmp_path, monkeypatch, capsys, args, message):
    pool = pool_of(tmp_path / "pool", shards=1)
    line = refused(curate_main, ["filter", str(pool.root), "--out", str(tmp_path / "s"), *args], monkeypatch, capsys)
    assert message in line and not (tmp_path / "s").exists()


def test_lid176_codes_match_the_shipped_model():
    import fasttext
    from tierclip.curate.langcodes import LID176_LANGS
    from tierclip.curate.stages.lang import default_model_path

    labels = fasttext.load_model(str(default_model_path())).get_labels()
    assert {label.removeprefix("__label__") for label in labels} == LID176_LANGS


# -- 11. one line, exit 2, nothing half-made --------------------------------------------------------------
def test_full_disk_names_the_file_and_leaves_no_half_made_subset(tmp_path, monkeypatch, capsys):
    pool = pool_of(tmp_path / "pool", shards=1)

    def disk_full(self, path, **kw):  # what polars raises on ENOSPC
        Path(path).write_bytes(b"PAR1")  # a partial temporary file, as a real full disk leaves
        raise pl.exceptions.ComputeError("parquet: File out of specification: underlying IO error: "
                                         "No space left on device (os error 28)")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", disk_full)
    line = refused(curate_main, ["filter", str(pool.root), "--out", str(tmp_path / "s")], monkeypatch, capsys)
    assert line == f"error: {tmp_path / 's' / 'uids.parquet'}: No space left on device; free some space or choose another --out"
    assert not (tmp_path / "s").exists()


def test_read_only_output_folder_is_one_line(tmp_path, monkeypatch, capsys):
    pool = pool_of(tmp_path / "pool", shards=1)
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kw):  # the tests may run as root, for whom chmod does not make a folder read-only
        if tmp_path / "ro" in (self, *self.parents):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kw)

    monkeypatch.setattr(Path, "mkdir", read_only)
    for args in (["inspect", str(pool.root), "--out", str(tmp_path / "ro" / "report")],
                 ["filter", str(pool.root), "--out", str(tmp_path / "ro" / "s")]):
        line = refused(curate_main, args, monkeypatch, capsys)
        assert str(tmp_path / "ro") in line and "Read-only file system; choose a writable --out" in line


def test_bad_numbers_are_one_line_before_anything_is_written(tmp_path, monkeypatch, capsys):
    pool = pool_of(tmp_path / "pool", shards=1)
    out = tmp_path / "out"
    line = refused(curate_main, ["inspect", str(pool.root), "--out", str(out), "--per-reason", "-3"], monkeypatch, capsys)
    assert "--per-reason -3" in line and not out.exists()
    line = refused(curate_main, ["score", str(pool.root), "--stages", "basic", "--workers", "-1"], monkeypatch, capsys)
    assert "--workers -1" in line and not (pool.root / "scores").exists()
    for args, message in ((["--lr", "nan"], "--lr nan"), (["--weight-decay", "nan"], "--weight-decay nan: must be a finite number >= 0"),
                          (["--loader-workers", "-1"], "--loader-workers -1: must be an integer >= 0"), (["--lr", "-1"], "--lr -1"),
                          (["--declip-mask-rate", "2"], "--declip-mask-rate 2: must be a number in (0, 1)"),
                          (["--filip-weight", "nan"], "--filip-weight nan: must be a finite number >= 0")):
        line = refused(train_main, ["run", str(pool.root), "--out", str(out), *args], monkeypatch, capsys, "train")
        assert message in line and "lower --lr" not in line, line
        assert not out.exists()


def test_a_where_with_python_is_one_short_line(tmp_path, monkeypatch, capsys):
    pool = pool_of(tmp_path / "pool", shards=1)
    for where in ('caption.system("ls")', 'pl.col("x").system()'):
        line = refused(curate_main, ["filter", str(pool.root), "--out", str(tmp_path / "s"), "--where", where],
                       monkeypatch, capsys)
        assert line.startswith("error: --where: cannot parse") and len(line) < 200 and "Ident {" not in line, line


# -- 12. train run checks paths before importing torch -------------------------------------------------------
def test_train_run_reports_a_wrong_pool_path_without_importing_torch(tmp_path):
    probe = ("import sys\n"
             "from tierclip.train.cli import main\n"
             f"sys.argv = ['train', 'run', {str(tmp_path / 'no-such-pool')!r}, '--out', {str(tmp_path / 'run')!r}]\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    print('exit', exc.code, 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.stdout.strip() == "exit 2 False", done.stdout + done.stderr
    assert done.stderr.strip() == f"error: {tmp_path / 'no-such-pool'}: no such pool folder"


@pytest.mark.parametrize("command", ["ingest", "score"])
def test_full_disk_during_ingest_and_score_is_one_line_with_the_path(tmp_path, monkeypatch, capsys, command):
    from tests.curate.robust_util import write_folder

    pool = pool_of(tmp_path / "pool", shards=1)
    write_folder(tmp_path / "src", {"a.png": png_bytes()})
    real_write = pl.DataFrame.write_parquet

    def disk_full(self, path, **kw):
        if "meta" in str(path) or "scores" in str(path):
            raise pl.exceptions.ComputeError("parquet: underlying IO error: No space left on device (os error 28)")
        return real_write(self, path, **kw)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", disk_full)
    args = {"ingest": ["ingest", "folder", str(tmp_path / "src" / "images"), "--captions", str(tmp_path / "src" / "captions.csv"),
                       "--out", str(tmp_path / "new")],
            "score": ["score", str(pool.root), "--stages", "basic", "--workers", "1"]}[command]
    line = refused(curate_main, args, monkeypatch, capsys)
    where = {"ingest": tmp_path / "new" / "meta" / "00000.parquet", "score": pool.root / "scores" / "basic" / "00000.parquet"}
    assert line == f"error: {where[command]}: No space left on device; free some space or choose another --out"
    assert not list(tmp_path.rglob(".tmp-*"))


def test_a_checkpoint_on_a_full_disk_is_an_oserror_naming_it(tmp_path, monkeypatch):
    import builtins

    import torch
    from tierclip.train import checkpoint

    real_open = builtins.open

    def full_disk_open(path, mode="r", *args, **kw):
        return real_open("/dev/full", mode, *args, **kw) if ".tmp-" in str(path) and "w" in mode else real_open(path, mode, *args, **kw)

    if not Path("/dev/full").exists():
        pytest.fail("/dev/full is needed to simulate a full disk")
    monkeypatch.setattr(builtins, "open", full_disk_open)
    with pytest.raises(OSError) as caught:
        checkpoint.save(tmp_path / "checkpoint.pt", {"w": torch.zeros(100_000)})
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "checkpoint.pt")
    assert not list(tmp_path.iterdir())
