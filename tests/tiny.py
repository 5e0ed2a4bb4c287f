"""Tiny hand-made pools for tests: a few PNG images and captions, written with the pool API."""

from __future__ import annotations

import io
from pathlib import Path

from tierclip.curate.pool import OK, Pool, PoolInfo, Sample, meta_frame, write_pool_info, write_shard
from tierclip.curate.uids import derive_uid


def png_bytes(color=(255, 0, 0), size=(16, 16)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def make_pool(root: str | Path, shards: list[list[tuple[bytes | None, str | None]]], name="tiny") -> Pool:
    """Write a pool from shards of (image bytes, caption) pairs; None image = metadata-only row."""
    root = Path(root)
    total = 0
    for shard, pairs in enumerate(shards):
        samples, rows = [], []
        for i, (image, caption) in enumerate(pairs):
            key = f"{shard:05d}{i:04d}"
            samples.append(Sample(key, image, "png" if image else None, caption, {}))
            rows.append(dict(uid=derive_uid(key, image, caption), key=key, shard=shard, caption=caption,
                             url=None, width=16 if image else None, height=16 if image else None,
                             status=OK, error=None))
        write_shard(root, shard, samples, meta_frame(rows))
        total += len(pairs)
    write_pool_info(root, PoolInfo(name, "test", "2026-01-01T00:00:00+00:00", total, len(shards)))
    return Pool(root)
