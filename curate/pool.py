"""The pool: a folder of WebDataset shards plus per-shard metadata and sidecars.

```
pool/
  pool.json                    name, source, created, n_samples, n_shards, schema_version
  shards/00000.tar             KEY.jpg|png|webp, KEY.txt, KEY.json (img2dataset's layout)
  meta/00000.parquet           one row per sample (META_COLUMNS, + gt_* for synthetic pools)
  scores/STAGE/00000.parquet   uid + a stage's columns, same rows as meta (layout: curate/sidecars.py)
  embeddings/MODEL/00000.npy   float16, shape (rows, 2, dim): [:, 0] image, [:, 1] text
```

Nothing is ever dropped: a sample that cannot be read keeps its row with
`status` and `error` set. Every write is atomic (see `curate.atomic`).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import polars as pl
from tierclip.curate import atomic
from tierclip.curate.errors import UserError
from tierclip.curate.sidecars import StageFiles, shard_name, stage_names

SCHEMA_VERSION = 1
OK = "success"
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")

META_SCHEMA = {
    "uid": pl.Utf8,
    "key": pl.Utf8,
    "shard": pl.Int32,
    "caption": pl.Utf8,
    "url": pl.Utf8,
    "width": pl.Int32,
    "height": pl.Int32,
    "status": pl.Utf8,
    "error": pl.Utf8,
}
META_COLUMNS = tuple(META_SCHEMA)
POOL_FILES = ("pool.json", "shards", "meta", "scores", "embeddings")  # a pool's own files: only their commands write there


def gt_flag_columns(schema) -> list[str]:
    """The defect flags of a synthetic pool: every Boolean `gt_*` column (`gt_clean` included), in schema order."""
    return [name for name, dtype in schema.items() if name.startswith("gt_") and dtype == pl.Boolean]


@dataclass(frozen=True)
class PoolInfo:
    name: str
    source: str
    created: str
    n_samples: int
    n_shards: int
    schema_version: int = SCHEMA_VERSION
    decode: dict | None = None  # curate.images.DecodeOptions fields ingest used (max_pixels, background); None = defaults

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not (k == "decode" and v is None)}


POOL_INFO_TYPES = {"name": str, "source": str, "created": str, "n_samples": int, "n_shards": int}


def parse_pool_info(path: Path) -> PoolInfo:
    """pool.json as a PoolInfo; anything else (not JSON, not an object, a missing or mistyped field) is one line."""
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a JSON object with {', '.join(POOL_INFO_TYPES)}, found {type(raw).__name__}")
    missing = [k for k in POOL_INFO_TYPES if k not in raw]
    if missing:
        raise UserError(f"{path}: missing field(s) {', '.join(missing)}; a pool.json holds {', '.join(POOL_INFO_TYPES)}")
    for key, kind in POOL_INFO_TYPES.items():
        if not isinstance(raw[key], kind) or isinstance(raw[key], bool) or (kind is int and raw[key] < 0):
            raise UserError(f"{path}: field '{key}' is {raw[key]!r}; expected {'a count >= 0' if kind is int else 'text'}")
    unknown = sorted(set(raw) - {f.name for f in fields(PoolInfo)})
    if unknown:
        raise UserError(f"{path}: unknown field(s) {', '.join(unknown)} (written by a newer tierclip?)")
    if raw.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise UserError(f"{path}: schema_version {raw['schema_version']!r}; this tierclip reads version {SCHEMA_VERSION}")
    if raw.get("decode") is not None and not _valid_decode(raw["decode"]):
        raise UserError(f"{path}: field 'decode' is {raw['decode']!r}; expected "
                        '{"max_pixels": COUNT, "background": [R, G, B]} (either may be left out)')
    return PoolInfo(**raw)


def _valid_decode(decode) -> bool:
    if not isinstance(decode, dict) or set(decode) - {"max_pixels", "background"}:
        return False
    pixels, background = decode.get("max_pixels", 0), decode.get("background", [0, 0, 0])
    return (isinstance(pixels, int) and pixels >= 0 and isinstance(background, list) and len(background) == 3
            and all(isinstance(c, int) and 0 <= c <= 255 for c in background))


@dataclass(frozen=True)
class Sample:
    """One sample as stored in a shard; `image` is None for metadata-only pools."""

    key: str
    image: bytes | None
    image_ext: str | None
    caption: str | None
    extra: dict


class Pool:
    """Read access to a pool folder, plus atomic writes of sidecars."""

    def __init__(self, root: str | Path, check_files: bool = True):
        """Open a pool; `check_files` (cheap: directory listings and parquet footers) compares pool.json with
        the files on disk. Worker processes of a run pass False: the run checked once when it opened the pool."""
        self.root = Path(root)
        info_path = self.root / "pool.json"
        if not self.root.exists():
            raise UserError(f"{self.root}: no such pool folder")
        if not info_path.is_file():
            raise UserError(f"{self.root}: not a pool (no pool.json); create one with `curate ingest` or `curate synth`")
        self.info = parse_pool_info(info_path)
        self._fingerprint: str | None = None
        if check_files:
            self.check_files()

    def check_files(self) -> None:
        """pool.json against the folder: meta files = n_shards, tar shards = n_shards (or none: metadata only),
        rows in the meta files (parquet footers only) = n_samples. Refuses a mismatch naming both numbers."""
        info_path, n_shards = self.root / "pool.json", self.info.n_shards
        metas = sorted((self.root / "meta").glob("*.parquet")) if (self.root / "meta").is_dir() else []
        if len(metas) != n_shards or [p.name for p in metas] != [self.meta_path(s).name for s in range(n_shards)]:
            raise UserError(f"{info_path}: says n_shards {n_shards} but {self.root / 'meta'} holds {len(metas)} meta files "
                            f"(expected 00000.parquet ... {shard_name(max(n_shards - 1, 0))}.parquet); "
                            "the pool is damaged or pool.json was edited")
        tars = list((self.root / "shards").glob("*.tar")) if (self.root / "shards").is_dir() else []
        if tars and len(tars) != n_shards:
            raise UserError(f"{info_path}: says n_shards {n_shards} but {self.root / 'shards'} holds {len(tars)} tar shards")
        rows = _parquet_rows(metas)
        if rows != self.info.n_samples:
            raise UserError(f"{info_path}: says n_samples {self.info.n_samples} but the {n_shards} meta files hold {rows} rows")

    @property
    def decode_options(self):
        """How readers decode this pool's images (the limits ingest applied; curate.images)."""
        from tierclip.curate.images import DecodeOptions

        decode = self.info.decode or {}
        return DecodeOptions(**{**decode, "background": tuple(decode.get("background", DecodeOptions().background))})

    def fingerprint(self) -> str:
        """An identity of this pool's rows that a name cannot fake: blake2b of its sorted uids (computed once)."""
        if self._fingerprint is None:
            import hashlib

            uids = self.scan_meta().select(pl.col("uid").sort()).collect()["uid"]
            digest = hashlib.blake2b(digest_size=16)
            for chunk in uids.to_frame().iter_slices(1_000_000):
                digest.update(("\n".join(chunk["uid"].to_list()) + "\n").encode())
            self._fingerprint = f"uids-blake2b:{digest.hexdigest()}"
        return self._fingerprint

    # -- layout -----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    def shard_ids(self) -> list[int]:
        return list(range(self.info.n_shards))

    def tar_path(self, shard: int) -> Path:
        return self.root / "shards" / f"{shard_name(shard)}.tar"

    def meta_path(self, shard: int) -> Path:
        return self.root / "meta" / f"{shard_name(shard)}.parquet"

    def stage_files(self, stage: str) -> StageFiles:
        """The paths of `scores/STAGE/` (curate/sidecars.py defines that layout)."""
        return StageFiles.of(self.root, stage)

    def scores_dir(self, stage: str) -> Path:
        return self.stage_files(stage).folder

    def scores_path(self, stage: str, shard: int) -> Path:
        return self.stage_files(stage).sidecar(shard)

    def done_path(self, stage: str, shard: int) -> Path:
        return self.stage_files(stage).done(shard)

    def stats_path(self, stage: str, shard: int) -> Path:
        return self.stage_files(stage).stats(shard)

    def embeddings_path(self, model: str, shard: int) -> Path:
        return self.root / "embeddings" / model / f"{shard_name(shard)}.npy"

    def has_images(self) -> bool:
        return self.tar_path(0).exists()

    # -- metadata ---------------------------------------------------------------
    def meta(self, shard: int) -> pl.DataFrame:
        path = self.meta_path(shard)
        if not path.is_file():
            raise UserError(f"{path}: missing meta file for shard {shard} of pool {self.root}")
        return pl.read_parquet(path)

    def scan_meta(self) -> pl.LazyFrame:
        paths = [self.meta_path(s) for s in self.shard_ids()]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise UserError(f"{missing[0]}: missing meta file ({len(missing)} of {len(paths)} missing)")
        return pl.scan_parquet(paths)

    # -- samples ----------------------------------------------------------------
    def samples(self, shard: int) -> Iterator[Sample]:
        """Samples of one shard in tar order (the same order as its meta rows)."""
        path = self.tar_path(shard)
        if not path.is_file():
            raise UserError(f"{path}: missing shard (pool {self.root} has no images for shard {shard})")
        yield from read_tar_samples(path)

    # -- sidecars ---------------------------------------------------------------
    def is_done(self, stage: str, shard: int) -> bool:
        return self.stage_files(stage).is_done(shard)

    def write_scores(self, stage: str, shard: int, frame: pl.DataFrame, stats: dict | None = None) -> None:
        """Write one shard's sidecar, its stats, then its completion marker (in that order)."""
        self.stage_files(stage).write(shard, frame, stats)

    def read_scores(self, stage: str, shard: int) -> pl.DataFrame:
        path = self.scores_path(stage, shard)
        if not path.is_file():
            raise UserError(f"{path}: missing sidecar; run `curate score {self.root} --stages {stage}` first")
        return pl.read_parquet(path)

    def stages(self) -> list[str]:
        """Stages whose every shard is complete (set-aside dot folders are not stages)."""
        return [name for name in stage_names(self.root) if all(self.is_done(name, s) for s in self.shard_ids())]

    def sidecar_problems(self, stage: str) -> list[str]:
        """`PATH: reason` for each completed shard whose sidecar is not whole (footer, uid column, meta's row count)."""
        files = self.stage_files(stage)
        found = (files.problem(s, self.meta_rows(s)) for s in self.shard_ids() if files.is_done(s))
        return [problem for problem in found if problem]

    def scan_scores(self, stage: str) -> pl.LazyFrame:
        """Every shard's sidecar; an incomplete stage or a damaged sidecar is one line naming it."""
        missing = [s for s in self.shard_ids() if not self.is_done(stage, s)]
        if missing:
            raise UserError(
                f"{self.scores_dir(stage)}: stage '{stage}' is incomplete ({len(missing)} shards missing); "
                f"run `curate score {self.root} --stages {stage}`"
            )
        damaged = self.sidecar_problems(stage)
        if damaged:
            raise UserError(f"{damaged[0]}; `curate score {self.root} --stages {stage}` recomputes it"
                            + (f" ({len(damaged)} damaged sidecars)" if len(damaged) > 1 else ""))
        return pl.scan_parquet([self.scores_path(stage, s) for s in self.shard_ids()])

    def meta_rows(self, shard: int) -> int:
        """Rows of one shard from its meta file's parquet footer (no data read)."""
        return _parquet_rows([self.meta_path(shard)])

    def require_rows(self, what: str) -> None:
        """An empty pool (0 rows) is one line saying so (`nothing to WHAT`), before a command reads or writes anything."""
        if self.info.n_samples == 0:
            raise UserError(f"{self.root}: the pool is empty (0 rows); nothing to {what}")


def check_not_pool_files(out: str | Path, option: str = "--out", allow_pool_root: bool = False) -> None:
    """Refuse an output path that is (or lies inside) a pool's own files, or is a pool folder itself
    (`allow_pool_root`: the commands that write a pool, such as ingest resuming into its own folder)."""
    target = Path(out).resolve()
    for folder in (target, *target.parents):
        if not (folder / "pool.json").is_file():
            continue
        parts = target.relative_to(folder).parts
        if not parts and not allow_pool_root:
            raise UserError(f"{option} {out}: is the pool folder {folder}; write next to the pool, not into it")
        if parts and parts[0] in POOL_FILES:
            raise UserError(f"{option} {out}: inside the pool {folder}'s own files ({parts[0]}); choose a folder outside them")
        return


def open_pool(path: str | Path) -> Pool:
    return Pool(path)


def _parquet_rows(paths: list[Path]) -> int:
    """Total rows from parquet footers (no column data is read)."""
    import pyarrow.parquet as pq

    total = 0
    for path in paths:
        try:
            total += pq.read_metadata(path).num_rows
        except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for a damaged footer
            from tierclip.curate.images import reason_of

            raise UserError(f"{path}: unreadable meta file ({reason_of(exc)})") from None
    return total


# -- shard files -------------------------------------------------------------------
def split_member_name(name: str) -> tuple[str, str]:
    """WebDataset convention: the key is the base name up to the first dot, the rest is the extension (lowercased)."""
    key, _, ext = name.rpartition("/")[2].partition(".")
    return key, ext.lower()


def read_tar_samples(path: Path) -> Iterator[Sample]:
    """Group a WebDataset tar's members by key, in order of first appearance; a cut or damaged tar is one line
    (tarfile reads a tar cut inside a header as if it ended there: the end-of-archive blocks tell)."""
    current_key, parts, count, problem = None, {}, 0, None
    try:
        with tarfile.open(path, "r") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = split_member_name(member.name)
                if key != current_key and current_key is not None:
                    yield _sample_from_parts(current_key, parts)
                    parts, count = {}, count + 1
                current_key = key
                parts[ext] = tar.extractfile(member).read()
            problem = None if has_end_marker(path, tar.offset) else "it ends without its end-of-archive blocks"
    except (tarfile.TarError, EOFError) as exc:
        problem = str(exc)
    if problem:
        raise UserError(f"{path}: damaged shard, unreadable after {count} samples ({problem}); re-ingest the pool or "
                        "restore this file")
    if current_key is not None:
        yield _sample_from_parts(current_key, parts)


def has_end_marker(path: Path, end: int) -> bool:
    """Whether the tar at `path` holds its two zero end-of-archive blocks at `end` (after its last member)."""
    with open(path, "rb") as handle:
        handle.seek(end)
        block = handle.read(1024)
    return len(block) == 1024 and not any(block)


def _sample_from_parts(key: str, parts: dict[str, bytes]) -> Sample:
    image_ext = next((ext for ext in IMAGE_EXTS if ext in parts), None)
    caption = parts.get("txt")
    extra = json.loads(parts["json"]) if "json" in parts else {}
    return Sample(
        key=key,
        image=parts.get(image_ext) if image_ext else None,
        image_ext=image_ext,
        caption=caption.decode("utf-8", errors="replace") if caption is not None else None,
        extra=extra,
    )


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add a member with fixed metadata so the same input gives byte-identical tars."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def write_shard(pool_root: Path, shard: int, samples: list[Sample], meta: pl.DataFrame) -> None:
    """Write one shard's tar and meta parquet atomically: tar first, meta last.

    The meta file is the shard's completion marker for ingest: a shard whose
    meta exists is complete and is skipped by a resumed ingest.
    """
    tar_path = pool_root / "shards" / f"{shard_name(shard)}.tar"
    with atomic.atomic_path(tar_path) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for sample in samples:
                if sample.image is not None:
                    _tar_member(tar, f"{sample.key}.{sample.image_ext or 'jpg'}", sample.image)
                if sample.caption is not None:
                    _tar_member(tar, f"{sample.key}.txt", sample.caption.encode("utf-8", errors="surrogateescape"))
                _tar_member(tar, f"{sample.key}.json", json.dumps(sample.extra, sort_keys=True).encode())
    write_meta(pool_root, shard, meta)


def write_meta(pool_root: Path, shard: int, meta: pl.DataFrame) -> None:
    check_meta(meta)
    atomic.write_parquet(pool_root / "meta" / f"{shard_name(shard)}.parquet", meta)


def check_meta(meta: pl.DataFrame) -> None:
    missing = [c for c in META_COLUMNS if c not in meta.columns]
    if missing:
        raise ValueError(f"meta frame lacks columns {missing}")


def meta_frame(rows: list[dict], extra_schema: dict | None = None) -> pl.DataFrame:
    """Build a meta DataFrame with the pool's column types (extra columns after)."""
    schema = {**META_SCHEMA, **(extra_schema or {})}
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


def write_pool_info(pool_root: Path, info: PoolInfo) -> None:
    """pool.json is written last: a folder without it is an unfinished pool."""
    atomic.write_json(pool_root / "pool.json", info.to_json())
