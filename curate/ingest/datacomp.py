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
- `embeddings/MODEL_TAG/NNNNN.npy` (unless `embeddings=None`): the CLIP features of the
  `.npz` DataComp ships beside every metadata parquet (`X.npz` for `X.parquet`, one row per
  parquet row, keys `l14_img`, `l14_txt`, `b32_img`, `b32_txt`), in the pool's embedding
  format (float16, (rows, 2, dim), L2-normalised; [:, 1] = the text features, NaN when the
  `.npz` has no text key) with `embeddings.json` recording the model. `l14` (OpenAI
  ViT-L-14, what DataComp's image-based baseline clusters) or `b32` (OpenAI ViT-B-32).
  Every `.npz` is checked before anything is written: present, the key there, floating
  point, 2-D, and exactly as many rows as its parquet, else a one-line error naming it.

Millions of rows stream through in shard-sized polars frames (vectorised checks); only
the set of uids seen so far (8 bytes each, seen.py) grows with the pool.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
from tierclip.curate import atomic
from tierclip.curate.errors import UserError
from tierclip.curate.ingest.report import IngestReport
from tierclip.curate.ingest.seen import SeenSet
from tierclip.curate.ingest.source import Source
from tierclip.curate.ingest.writer import WriterConfig, shard_delay
from tierclip.curate.pool import META_SCHEMA, OK, shard_name, write_meta
from tierclip.curate.uids import derive_uid

STAGE = "datacomp"
REQUIRED = ("uid", "url", "text")
COLUMN_TYPES = {"uid": pl.Utf8, "url": pl.Utf8, "text": pl.Utf8, "original_width": pl.Int32, "original_height": pl.Int32,
                "clip_b32_similarity_score": pl.Float64, "clip_l14_similarity_score": pl.Float64}
SCORE_COLUMNS = ("clip_b32_similarity_score", "clip_l14_similarity_score")
READ_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class NpzFeatures:
    """Which `.npz` keys become the pool's embeddings, and the open_clip model that made them."""

    image_key: str
    text_key: str
    model: str
    pretrained: str = "openai"

    @property
    def tag(self) -> str:  # the same folder name the clip stage would use for this model
        return f"{self.model}-{self.pretrained}"


EMBEDDINGS = {"l14": NpzFeatures("l14_img", "l14_txt", "ViT-L-14"), "b32": NpzFeatures("b32_img", "b32_txt", "ViT-B-32")}
DEFAULT_EMBEDDINGS = "l14"  # DataComp's image-based baseline (baselines/image_based_clustering.py) reads l14_img


def open_datacomp(root: Path, embeddings: str | None = None) -> Source:
    """A source over DataComp metadata; `embeddings` ("l14", "b32" or None) imports the `.npz` features too."""
    if embeddings is not None and embeddings not in EMBEDDINGS:
        raise UserError(f"--embeddings must be one of {', '.join(EMBEDDINGS)} or none, not {embeddings!r}")
    files = _metadata_files(Path(root))
    features = EMBEDDINGS[embeddings] if embeddings else None
    total = 0
    for path in files:
        rows = _check_schema(path)
        if features is not None:
            check_npz(npz_path(path), features, rows)
        total += rows
    config = {"source": "datacomp", "input": str(Path(root).resolve()), "files": [p.name for p in files],
              "embeddings": embeddings}
    write = partial(write_frames, features=features)
    return Source("datacomp", config, _batches(files, features), total=total, write=write)


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


def npz_path(parquet: Path) -> Path:
    return parquet.with_suffix(".npz")


def _npz_header(npz, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array in an .npz, from its header only (nothing else is read)."""
    with npz.zip.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(member)
    return shape, dtype


def check_npz(path: Path, features: NpzFeatures, rows: int) -> int:
    """The embedding dim of a DataComp `.npz` whose keys, dtype and row count match its parquet; else a UserError."""
    hint = "pass --embeddings none to ingest the metadata only"
    if not path.is_file():
        raise UserError(f"{path}: missing; DataComp ships it beside {path.with_suffix('.parquet').name} ({hint})")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:  # zipfile.BadZipFile, OSError, ValueError: not an .npz
        raise UserError(f"{path}: not a readable .npz file ({exc})") from None
    with npz:
        if features.image_key not in npz.files:
            raise UserError(f"{path}: no key {features.image_key!r} (keys: {', '.join(npz.files) or 'none'}; {hint})")
        keys = [features.image_key] + ([features.text_key] if features.text_key in npz.files else [])
        shapes = {key: _npz_header(npz, key) for key in keys}
    for key, (shape, dtype) in shapes.items():
        if dtype.kind != "f" or len(shape) != 2:
            raise UserError(f"{path}: {key} has dtype {dtype} and shape {shape}; expected floating point (rows, dim)")
        if shape[0] != rows:
            raise UserError(f"{path}: {key} has {shape[0]} rows but {path.with_suffix('.parquet').name} has {rows}; "
                            "the two must be row-aligned")
    dims = {shape[1] for shape, _ in shapes.values()}
    if len(dims) != 1:
        raise UserError(f"{path}: image and text features differ in dim ({sorted(dims)})")
    return dims.pop()


def _pool_embeddings(image: np.ndarray, text: np.ndarray | None) -> np.ndarray:
    """(rows, 2, dim) float16, L2-normalised, [:, 1] NaN when the file has no text key."""
    image = np.asarray(image, dtype=np.float32)
    text = np.asarray(text, dtype=np.float32) if text is not None else np.full_like(image, np.nan)
    both = np.stack([image, text], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        both /= np.linalg.norm(both, axis=2, keepdims=True)
    return both.astype(np.float16)


def _batches(files: list[Path], features: NpzFeatures | None = None) -> Iterator[tuple[pl.DataFrame, np.ndarray | None]]:
    """(frame, embeddings or None) per parquet batch. An `.npz` cannot be read in parts: one file's features are
    held as stored (float16 in DataComp's), and converted to the pool's format one batch at a time."""
    import pyarrow.parquet as pq

    for path in files:
        parquet = pq.ParquetFile(path)
        present = [c for c in COLUMN_TYPES if c in parquet.schema_arrow.names]
        image = text = None
        if features is not None:
            with np.load(npz_path(path), allow_pickle=False) as npz:
                image = npz[features.image_key]
                text = npz[features.text_key] if features.text_key in npz.files else None
        start = 0
        for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=present):
            frame = pl.from_arrow(batch).select(
                pl.col(c).cast(t, strict=False) if c in present else pl.lit(None, dtype=t).alias(c)
                for c, t in COLUMN_TYPES.items()
            )
            stop = start + frame.height
            embeddings = None if image is None else _pool_embeddings(image[start:stop], None if text is None else text[start:stop])
            yield frame, embeddings
            start = stop


def rebatch(chunks: Iterator[tuple[pl.DataFrame, np.ndarray | None]], size: int) -> Iterator[tuple[pl.DataFrame, np.ndarray | None]]:
    """(frame, embeddings) chunks of exactly `size` rows (the last may be shorter); embeddings stay row-aligned."""
    frames, arrays, held = [], [], 0
    for frame, array in chunks:
        frames.append(frame)
        arrays.append(array)
        held += frame.height
        while held >= size:
            whole, together = pl.concat(frames), _concat(arrays)
            yield whole.head(size), None if together is None else together[:size]
            frames, arrays = [whole.slice(size)], [None if together is None else together[size:]]
            held = frames[0].height
    if held:
        yield pl.concat(frames), _concat(arrays)


def _concat(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    return None if arrays[0] is None else np.concatenate(arrays)


# -- writing -----------------------------------------------------------------------------
def write_frames(frames: Iterator[tuple[pl.DataFrame, np.ndarray | None]], cfg: WriterConfig, report: IngestReport,
                 progress=None, features: NpzFeatures | None = None) -> IngestReport:
    from tierclip.curate.stages.embeddings import write_record

    seen = SeenSet()
    first_row = 0
    delay = shard_delay()
    if features is not None:
        write_record(cfg.out / "embeddings" / features.tag,
                     {"source": "datacomp", "image_key": features.image_key, "text_key": features.text_key,
                      "model": features.model, "pretrained": features.pretrained,
                      "note": "L2-normalised float16; [:, 1] is NaN where the .npz has no text key"})
    for shard, (frame, embeddings) in enumerate(rebatch(frames, cfg.shard_size)):
        meta_path = cfg.out / "meta" / f"{shard_name(shard)}.parquet"
        if meta_path.is_file():
            done = pl.read_parquet(meta_path, columns=["uid", "status"])
            seen.add_many(uid_hashes(done["uid"].to_list()))
            report.count(done["status"].to_list())
            report.n_resumed_shards += 1
        else:
            meta = shard_meta(frame, shard, first_row, seen)
            _write_sidecar(cfg.out, shard, meta.select("uid"), frame)
            if features is not None:
                atomic.write_npy(cfg.out / "embeddings" / features.tag / f"{shard_name(shard)}.npy", embeddings)
            write_meta(cfg.out, shard, meta)  # last: the shard's completion marker
            report.count(meta["status"].to_list())
            time.sleep(delay)
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
    """The `datacomp` stage's sidecar, written as every stage's is (the pool has no pool.json yet)."""
    from tierclip.curate.sidecars import StageFiles

    scores = uids.with_columns(frame.select(SCORE_COLUMNS))
    StageFiles.of(out, STAGE).write(shard, scores, {"rows": scores.height, **{f"{c}_null": scores[c].null_count() for c in SCORE_COLUMNS}})
