"""Run one ingest: record the options, write (or resume) the shards, finish with pool.json, report."""

from __future__ import annotations

from pathlib import Path

from tierclip.curate.ingest import layout
from tierclip.curate.ingest.checks import ImageOptions
from tierclip.curate.ingest.report import IngestReport
from tierclip.curate.ingest.source import Source
from tierclip.curate.ingest.writer import WriterConfig, write_records


def run_ingest(source: Source, out: Path, shard_size: int = 10_000, name: str | None = None,
               images: ImageOptions = ImageOptions()) -> IngestReport:
    from tierclip.curate.progress import progress

    if shard_size < 1:
        from tierclip.curate.errors import UserError

        raise UserError(f"--shard-size must be at least 1 (got {shard_size})")
    out = Path(out)
    layout.start(out, {**source.config, "shard_size": shard_size, **_image_config(images)})
    cfg = WriterConfig(out=out, shard_size=shard_size, images=images)
    write = source.write or write_records
    report = IngestReport()
    with progress(total=source.total, unit="rows", desc=f"ingest {source.kind}", mininterval=1.0) as bar:
        write(source.records, cfg, report, bar)
    decode = {"max_pixels": images.max_pixels, "background": list(images.background)}
    layout.finish(out, name or out.resolve().name, source.kind, report.to_json(),
                  decode if images != ImageOptions() else None)
    return report


def _image_config(images: ImageOptions) -> dict:
    """The image options recorded in ingest.json (only when not the defaults, so older pools still resume)."""
    return {"images": images.to_json()} if images != ImageOptions() else {}
