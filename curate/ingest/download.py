"""`curate download URLS --out POOL`: img2dataset downloads a URL list, then we ingest its output.

img2dataset writes webdataset shards into `POOL/_img2dataset/` (its `incremental` mode
makes a re-run skip shards it finished), then `open_img2dataset` + `run_ingest` turn
them into the pool. img2dataset stores the bytes as downloaded (`disable_all_reencoding`):
its OpenCV resizer ignores EXIF orientation and upscales small images, so the resize to
`--image-size` (never upscaling) and `--encode-format` happen at ingest with the project's
decoder (curate/images.py), as `curate ingest --image-size` does. The raw output is removed after a successful ingest unless
`keep_raw`. img2dataset runs worker processes with the `spawn` start method, so a
script calling `download` must guard its entry point with `if __name__ == "__main__"`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tierclip.curate.errors import UserError
from tierclip.curate.ingest.checks import ImageOptions
from tierclip.curate.ingest.img2dataset import open_img2dataset
from tierclip.curate.ingest.report import IngestReport
from tierclip.curate.ingest.run import run_ingest

RAW_FOLDER = "_img2dataset"
INPUT_FORMATS = ("txt", "csv", "tsv", "json", "jsonl", "parquet")


@dataclass(frozen=True)
class DownloadConfig:
    urls: Path
    out: Path
    workers: int = 1            # img2dataset's processes_count
    download_threads: int = 16  # img2dataset's thread_count (per process)
    image_size: int = 256
    resize_mode: str = "border"
    retries: int = 0
    timeout: int = 10
    url_col: str = "url"
    caption_col: str | None = "caption"
    input_format: str | None = None          # None: from the file's extension
    encode_format: str = "jpg"
    samples_per_shard: int = 10_000          # img2dataset's shards (ours are --shard-size)
    extra_columns: tuple[str, ...] = field(default_factory=tuple)
    shard_size: int = 10_000
    name: str | None = None
    keep_raw: bool = False


def download(cfg: DownloadConfig) -> IngestReport:
    images = ImageOptions(image_size=cfg.image_size, resize_mode=cfg.resize_mode, encode_format=cfg.encode_format)
    input_format = _input_format(cfg)
    columns = _input_columns(cfg.urls, input_format)
    caption_col = _checked_columns(cfg, input_format, columns)
    extra = list(cfg.extra_columns) + (["uid"] if "uid" in columns and "uid" not in cfg.extra_columns else [])
    raw = cfg.out / RAW_FOLDER
    _run_img2dataset(cfg, input_format, caption_col, extra, raw)
    report = run_ingest(open_img2dataset(raw, "webdataset"), cfg.out, cfg.shard_size, cfg.name, images)
    if not cfg.keep_raw:
        shutil.rmtree(raw)
    return report


def _run_img2dataset(cfg: DownloadConfig, input_format: str, caption_col: str | None, extra: list[str], raw: Path) -> None:
    from img2dataset import download as img2dataset_download

    raw.mkdir(parents=True, exist_ok=True)
    img2dataset_download(
        url_list=str(cfg.urls), output_folder=str(raw), output_format="webdataset", input_format=input_format,
        url_col=cfg.url_col, caption_col=caption_col, save_additional_columns=extra or None,
        processes_count=cfg.workers, thread_count=cfg.download_threads,
        # the bytes as downloaded: img2dataset's OpenCV resizer ignores EXIF orientation and upscales small images;
        # our ingest resizes with the project's decoder instead (run_ingest's ImageOptions)
        disable_all_reencoding=True, retries=cfg.retries, timeout=cfg.timeout,
        number_sample_per_shard=cfg.samples_per_shard, enable_wandb=False, incremental_mode="incremental",
    )


def _input_format(cfg: DownloadConfig) -> str:
    if not cfg.urls.is_file():
        raise UserError(f"{cfg.urls}: no such URL list")
    fmt = cfg.input_format or cfg.urls.suffix.lower().lstrip(".")
    if fmt not in INPUT_FORMATS:
        raise UserError(f"{cfg.urls}: unknown URL list format {fmt!r}; use --input-format with one of {', '.join(INPUT_FORMATS)}")
    return fmt


def _input_columns(path: Path, fmt: str) -> list[str]:
    import polars as pl

    readers = {"csv": lambda: pl.scan_csv(path), "tsv": lambda: pl.scan_csv(path, separator="\t"),
               "jsonl": lambda: pl.scan_ndjson(path), "parquet": lambda: pl.scan_parquet(path),
               "json": lambda: pl.read_json(path).lazy()}
    if fmt == "txt":
        return []
    try:
        return readers[fmt]().collect_schema().names()
    except Exception as exc:  # polars raises ComputeError / SchemaError / OSError for unreadable input
        raise UserError(f"{path}: not a readable {fmt} URL list ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None


def _checked_columns(cfg: DownloadConfig, fmt: str, columns: list[str]) -> str | None:
    """The caption column to pass on (None for txt lists, or when the default `caption` is absent)."""
    if fmt == "txt":
        return None
    if cfg.url_col not in columns:
        raise UserError(f"{cfg.urls}: no column {cfg.url_col!r} (columns: {', '.join(columns)}); set --url-col")
    for col in cfg.extra_columns:
        if col not in columns:
            raise UserError(f"{cfg.urls}: no column {col!r} for --extra-col (columns: {', '.join(columns)})")
    if cfg.caption_col and cfg.caption_col not in columns:
        if cfg.caption_col != "caption":
            raise UserError(f"{cfg.urls}: no column {cfg.caption_col!r} (columns: {', '.join(columns)}); set --caption-col")
        return None
    return cfg.caption_col
