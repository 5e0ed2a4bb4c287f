"""The streaming shard writer every image source shares.

A source yields `Record`s in a deterministic order; `write_records` cuts them into
shards of `shard_size`, checks each sample (image decodes? caption valid UTF-8 and
not empty? key and uid unique?), maps a key that is not a safe tar member name to one that is
(curate/ingest/keys.py; the original goes into the sample's json as `source_key`), derives uids where the source has none, and writes
each shard with `curate.pool.write_shard` (tar first, meta last). Only one shard's
records are in memory at a time. A shard whose meta file exists is skipped (its keys,
uids and counts are read back), so a killed ingest resumes to a byte-identical pool.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import polars as pl
from tierclip.curate.ingest.checks import ImageOptions, check_caption, check_image
from tierclip.curate.ingest.keys import safe_key
from tierclip.curate.ingest.report import IngestReport
from tierclip.curate.ingest.seen import SeenSet, hash64
from tierclip.curate.pool import OK, Sample, meta_frame, shard_name, write_shard
from tierclip.curate.uids import derive_uid, normalize_uid

# Test hook: seconds to sleep after each written shard, so a test can SIGKILL an ingest mid-way.
SHARD_DELAY_ENV = "TIERCLIP_TEST_INGEST_SHARD_DELAY"


def shard_delay() -> float:
    """The test hook's delay in seconds (0 unless the environment sets it); every ingest writer sleeps it per shard."""
    return float(os.environ.get(SHARD_DELAY_ENV, "0") or 0)


@dataclass(frozen=True)
class Record:
    """One input sample. `status`/`error` carry a problem the source already knows (e.g. failed_to_download)."""

    key: str
    image: bytes | None = None
    image_ext: str | None = None
    caption: bytes | str | None = None
    url: str | None = None
    uid: str | None = None
    width: int | None = None
    height: int | None = None
    extra: dict = field(default_factory=dict)
    status: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class WriterConfig:
    out: Path
    shard_size: int = 10_000
    images: ImageOptions = ImageOptions()


class _Uniques:
    """Keys and uids already in the pool (8 bytes each, see seen.py)."""

    def __init__(self) -> None:
        self.keys, self.uids = SeenSet(), SeenSet()

    def claim_key(self, key: str) -> tuple[str, str | None]:
        if hash64(key) not in self.keys:
            self.keys.add(hash64(key))
            return key, None
        n = 1
        while hash64(f"{key}_dup{n}") in self.keys:
            n += 1
        unique = f"{key}_dup{n}"
        self.keys.add(hash64(unique))
        return unique, f"key {key!r} already used by an earlier sample; stored as {unique!r}"

    def claim_uid(self, source_uid: str | None, derive) -> tuple[str, str | None, str | None]:
        """(uid, status, error): the source's uid when valid and new, else a derived one."""
        uid = normalize_uid(source_uid)
        status = error = None
        if source_uid is not None and uid is None:
            status, error = "invalid_uid", f"source uid {source_uid!r} is not 32 hex characters; derived one"
        elif uid is not None and uid_hash(uid) in self.uids:
            status, error = "duplicate_uid", f"source uid {uid} already used by an earlier sample; derived one"
            uid = None
        salt = 0
        while uid is None or uid_hash(uid) in self.uids:
            uid, salt = derive(salt), salt + 1
        self.uids.add(uid_hash(uid))
        return uid, status, error

    def absorb(self, meta: pl.DataFrame) -> None:
        for key in meta["key"].to_list():
            self.keys.add(hash64(key))
        for uid in meta["uid"].to_list():
            self.uids.add(uid_hash(uid))
        self.flush()

    def flush(self) -> None:
        self.keys.flush()
        self.uids.flush()


def uid_hash(uid: str) -> int:
    """Both halves of a 128-bit uid folded into 64 bits (uids are hashes already)."""
    return int(uid[:16], 16) ^ int(uid[16:], 16)


def write_records(records: Iterable[Record], cfg: WriterConfig, report: IngestReport | None = None,
                  progress=None) -> IngestReport:
    report = report or IngestReport()
    uniques = _Uniques()
    delay = shard_delay()
    for shard, chunk in enumerate(_chunks(iter(records), cfg.shard_size)):
        meta_path = cfg.out / "meta" / f"{shard_name(shard)}.parquet"
        if meta_path.is_file():
            meta = pl.read_parquet(meta_path, columns=["key", "uid", "status"])
            uniques.absorb(meta)
            report.count(meta["status"].to_list())
            report.n_resumed_shards += 1
        else:
            _write_one_shard(shard, chunk, cfg, uniques, report)
            time.sleep(delay)
        report.n_shards += 1
        if progress is not None:
            progress.update(len(chunk))
    return report


def _chunks(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    while chunk := list(islice(records, size)):
        yield chunk


def _write_one_shard(shard: int, chunk: list[Record], cfg: WriterConfig, uniques: _Uniques, report: IngestReport) -> None:
    samples, rows = [], []
    for record in chunk:
        sample, row = _prepare(record, shard, uniques, cfg.images)
        samples.append(sample)
        rows.append(row)
    uniques.flush()
    meta = meta_frame(rows)
    write_shard(cfg.out, shard, samples, meta)
    report.count(meta["status"].to_list())


def _prepare(record: Record, shard: int, uniques: _Uniques, options: ImageOptions = ImageOptions()) -> tuple[Sample, dict]:
    key, key_problem = uniques.claim_key(safe_key(record.key))
    caption = check_caption(record.caption)
    image = check_image(record.image, record.image_ext, options) if record.image is not None else None
    raw_caption = caption.raw.encode("utf-8", errors="surrogateescape") if caption.raw is not None else None
    image_bytes = image.data if image else None
    uid, uid_status, uid_error = uniques.claim_uid(
        record.uid, lambda salt: derive_uid(key if not salt else f"{key}#{salt}", image_bytes, raw_caption))
    problems = [
        (record.status, record.error),
        ("duplicate_key", key_problem) if key_problem else (None, None),
        (uid_status, uid_error),
        (image.status, image.problem) if image and image.problem else (None, None),
        (caption.status, caption.problem),
    ]
    found = [(s, e or s) for s, e in problems if s and s != OK]
    status = found[0][0] if found else OK
    error = "; ".join(e for _, e in found) if found else None   # the first problem names the status; all are kept
    row = dict(uid=uid, key=key, shard=shard, caption=caption.text, url=record.url,
               width=record.width if record.width is not None else (image.width if image else None),
               height=record.height if record.height is not None else (image.height if image else None),
               status=status, error=error)
    extra = record.extra if safe_key(record.key) == record.key else {**record.extra, "source_key": record.key}
    if image is not None and image.stored_size is not None:  # resized at ingest: meta keeps the source size
        extra = {**extra, "stored_width": image.stored_size[0], "stored_height": image.stored_size[1]}
    sample = Sample(key, image_bytes, image.ext if image else None, caption.raw, extra)
    return sample, row
