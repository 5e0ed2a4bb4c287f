"""`curate ingest datacomp DIR`: DataComp metadata parquets as a metadata-only pool.

DataComp ships, per pool, parquet files with `uid` (32 hex), `url`, `text`,
`original_width`, `original_height`, `clip_b32_similarity_score`,
`clip_l14_similarity_score` (and more we do not need). We write:

- `meta/NNNNN.parquet`: uid, key (row number, 9+ digits), shard, caption (= text), url,
  width/height (= original_*), status, error. No `shards/` tars: the images are not
  downloaded. Rows whose metadata is usable have status `success` so selection treats
  them like any other row; `Pool.has_images()` is False for such a pool (the convention).
- `scores/datacomp/NNNNN.parquet` (+ `_stats`, `_done`): uid + the two CLIP scores, so
  `curate filter` can select on DataComp's own scores before anything is downloaded.

Millions of rows stream through in shard-sized polars frames (vectorised checks); only
the set of uids seen so far (8 bytes each, seen.py) grows with the pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from curate import atomic
from curate.errors import UserError
from curate.ingest.report import IngestReport
from curate.ingest.seen import SeenSet
from curate.ingest.source import Source
from curate.ingest.writer import WriterConfig
from curate.pool import META_SCHEMA, OK, shard_name, write_meta
from curate.uids import derive_uid

STAGE = "datacomp"
REQUIRED = ("uid", "url", "text")
COLUMN_TYPES = {"uid": pl.Utf8, "url": pl.Utf8, "text": pl.Utf8, "original_width": pl.Int32, "original_height": pl.Int32,
                "clip_b32_similarity_score": pl.Float64, "clip_l14_similarity_score": pl.Float64}
SCORE_COLUMNS = ("clip_b32_similarity_score", "clip_l14_similarity_score")
READ_BATCH_ROWS = 65_536


def open_datacomp(root: Path) -> Source:
    files = _metadata_files(Path(root))
    total = sum(_check_schema(path) for path in files)
    config = {"source": "datacomp", "input": str(Path(root).resolve()), "files": [p.name for p in files]}
    return Source("datacomp", config, _batches(files), total=total, write=write_frames)


def _metadata_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise UserError(f"{root}: no such file or folder (expected DataComp metadata parquet files)")
    files = sorted(root.rglob("*.parquet"))
    if not files:
        raise UserError(f"{root}: no .parquet files (expected DataComp metadata: uid, url, text, ...)")
    return files


def _check_schema(path: Path) -> int:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for non-parquet bytes
        raise UserError(f"{path}: not a readable parquet file ({exc})") from None
    names = parquet.schema_arrow.names
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise UserError(f"{path}: no column {missing[0]!r}; DataComp metadata has {', '.join(REQUIRED)} "
                        f"(this file has {', '.join(names[:10])})")
    return parquet.metadata.num_rows


def _batches(files: list[Path]) -> Iterator[pl.DataFrame]:
    import pyarrow.parquet as pq

    for path in files:
        parquet = pq.ParquetFile(path)
        present = [c for c in COLUMN_TYPES if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=present):
            frame = pl.from_arrow(batch)
            yield frame.select(
                pl.col(c).cast(t, strict=False) if c in present else pl.lit(None, dtype=t).alias(c)
                for c, t in COLUMN_TYPES.items()
            )


def rebatch(frames: Iterator[pl.DataFrame], size: int) -> Iterator[pl.DataFrame]:
    """Frames of exactly `size` rows (the last may be shorter)."""
    pending, held = [], 0
    for frame in frames:
        pending.append(frame)
        held += frame.height
        while held >= size:
            whole = pl.concat(pending)
            yield whole.head(size)
            rest = whole.slice(size)
            pending, held = [rest], rest.height
    if held:
        yield pl.concat(pending)


# -- writing -----------------------------------------------------------------------------
def write_frames(frames: Iterator[pl.DataFrame], cfg: WriterConfig, report: IngestReport, progress=None) -> IngestReport:
    seen = SeenSet()
    first_row = 0
    for shard, frame in enumerate(rebatch(frames, cfg.shard_size)):
        meta_path = cfg.out / "meta" / f"{shard_name(shard)}.parquet"
        if meta_path.is_file():
            done = pl.read_parquet(meta_path, columns=["uid", "status"])
            seen.add_many(uid_hashes(done["uid"].to_list()))
            report.count(done["status"].to_list())
            report.n_resumed_shards += 1
        else:
            meta = shard_meta(frame, shard, first_row, seen)
            _write_sidecar(cfg.out, shard, meta.select("uid"), frame)
            write_meta(cfg.out, shard, meta)
            report.count(meta["status"].to_list())
        report.n_shards += 1
        first_row += frame.height
        if progress is not None:
            progress.update(frame.height)
    return report


def shard_meta(frame: pl.DataFrame, shard: int, first_row: int, seen: SeenSet) -> pl.DataFrame:
    source_uid = pl.col("uid").str.strip_chars().str.to_lowercase()
    rows = frame.with_columns(
        key=pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64).cast(pl.Utf8).str.pad_start(9, "0"),
        norm_uid=pl.when(source_uid.str.contains("^[0-9a-f]{32}$")).then(source_uid),
        empty=pl.col("text").is_null() | (pl.col("text").str.strip_chars() == ""),
    )
    valid = rows["norm_uid"].is_not_null().to_numpy()
    repeated = np.zeros(frame.height, dtype=bool)
    valid_uids = rows["norm_uid"].filter(valid)
    hashes = uid_hashes(valid_uids.to_list())
    repeated[valid] = seen.contains_many(hashes) | ~valid_uids.is_first_distinct().to_numpy()
    uids = _final_uids(rows, valid, repeated, seen)
    seen.add_many(uid_hashes(uids))
    status = np.where(~valid, "invalid_uid", np.where(repeated, "duplicate_uid", np.where(rows["empty"].to_numpy(), "empty_caption", OK)))
    return rows.select(
        pl.Series("uid", uids, dtype=pl.Utf8),
        "key",
        pl.lit(shard, dtype=pl.Int32).alias("shard"),
        pl.col("text").alias("caption"),
        "url",
        pl.col("original_width").alias("width"),
        pl.col("original_height").alias("height"),
        pl.Series("status", status.tolist(), dtype=pl.Utf8),
        _errors(rows, status),
    ).cast(META_SCHEMA)


def _final_uids(rows: pl.DataFrame, valid: np.ndarray, repeated: np.ndarray, seen: SeenSet) -> list[str]:
    """The source uid where it is valid and new; else one derived from key and caption (rare rows: a loop)."""
    uids = rows["norm_uid"].to_list()
    taken = {u for u, ok, rep in zip(uids, valid, repeated, strict=True) if ok and not rep}
    for i in np.flatnonzero(~valid | repeated):
        key, text = rows["key"][int(i)], rows["text"][int(i)]
        salt = 0
        while True:
            uid = derive_uid(key if not salt else f"{key}#{salt}", None, text)
            if uid not in taken and not seen.contains_many(uid_hashes([uid]))[0]:
                break
            salt += 1
        uids[int(i)] = uid
        taken.add(uid)
    return uids


def _errors(rows: pl.DataFrame, status: np.ndarray) -> pl.Series:
    messages = {
        "invalid_uid": pl.format("source uid '{}' is not 32 hex characters; derived one", pl.col("uid").fill_null("null")),
        "duplicate_uid": pl.format("source uid {} already used by an earlier row; derived one", pl.col("norm_uid")),
        "empty_caption": pl.lit("caption is empty"),
    }
    expr = pl.lit(None, dtype=pl.Utf8)
    for name, message in messages.items():
        expr = pl.when(pl.Series(status == name)).then(message).otherwise(expr)
    return rows.select(expr.alias("error"))["error"]


def uid_hashes(uids: list[str]) -> np.ndarray:
    """The 64-bit fold of 32-hex uids (same as writer.uid_hash), vectorised."""
    if not uids:
        return np.zeros(0, dtype=np.uint64)
    halves = np.frombuffer(bytes.fromhex("".join(uids)), dtype=">u8").reshape(-1, 2).astype(np.uint64)
    return halves[:, 0] ^ halves[:, 1]


def _write_sidecar(out: Path, shard: int, uids: pl.DataFrame, frame: pl.DataFrame) -> None:
    """The `datacomp` stage's sidecar, in the layout of `Pool.write_scores` (the pool has no pool.json yet)."""
    scores = uids.with_columns(frame.select(SCORE_COLUMNS))
    stage_dir = out / "scores" / STAGE
    atomic.write_parquet(stage_dir / f"{shard_name(shard)}.parquet", scores)
    atomic.write_json(stage_dir / "_stats" / f"{shard_name(shard)}.json",
                      {"rows": scores.height, **{f"{c}_null": scores[c].null_count() for c in SCORE_COLUMNS}})
    atomic.write_bytes(stage_dir / "_done" / shard_name(shard), b"")
