"""`curate ingest img2dataset|folder|datacomp` and `curate download`: build a pool from a source."""

from __future__ import annotations

from pathlib import Path

import typer
from tierclip.curate.cliopts import checked
from tierclip.curate.cliutil import new_app

ingest_app = new_app("Build a pool from img2dataset output, a folder of images, or DataComp metadata.")

OUT = typer.Option(..., "--out", "-o", help="Pool folder to write (created; an interrupted ingest into it resumes).")
SHARD_SIZE = checked(10_000, "--shard-size", ge=1, help="Samples per pool shard.")
NAME = typer.Option(None, "--name", help="Pool name in pool.json (default: the --out folder's name).")
MAX_PIXELS = checked(178_956_970, "--max-pixels", ge=0, help="Images with more pixels get status too_large (read from the "
                          "header, before decoding; 0 = no limit). Recorded in pool.json: every reader applies the same limit.")
IMAGE_SIZE = checked(0, "--image-size", ge=0, help="Resize larger images once, here (0 = store them as they are); meta "
                          "width/height keep the source size, the sample's json gets stored_width/stored_height.")
RESIZE_MODE = typer.Option("keep_ratio_largest", "--resize-mode", help="With --image-size, img2dataset's modes: keep_ratio_largest "
                           "(longer side = N), keep_ratio (shorter side = N), center_crop (N x N), border (N x N, padded) or no. "
                           "Never upscales.")
BACKGROUND = typer.Option("255,255,255", "--background", help="R,G,B that transparent pixels are composited onto "
                          "(img2dataset uses white). Recorded in pool.json for every reader.")


def _images(max_pixels: int, image_size: int, resize_mode: str, background: str):
    from tierclip.curate.images import parse_background
    from tierclip.curate.ingest.checks import ImageOptions

    return ImageOptions(max_pixels=max_pixels, image_size=image_size, resize_mode=resize_mode,
                        background=parse_background(background))


def _finish(report, out: Path) -> None:
    from tierclip.curate.ingest.report import print_report

    print_report(report, out)


@ingest_app.command("img2dataset")
def ingest_img2dataset(
    source: Path = typer.Argument(..., help="img2dataset's output folder (NNNNN.tar + NNNNN.parquet, NNNNN/ folders, or parquet shards)."),
    out: Path = OUT,
    input_format: str = typer.Option("auto", "--input-format", help="img2dataset output_format: auto, webdataset, parquet or files."),
    shard_size: int = SHARD_SIZE,
    name: str = NAME,
    max_pixels: int = MAX_PIXELS,
    image_size: int = IMAGE_SIZE,
    resize_mode: str = RESIZE_MODE,
    background: str = BACKGROUND,
) -> None:
    """Ingest img2dataset output; keeps its per-sample status, url, sizes and any uid column."""
    from tierclip.curate.ingest.img2dataset import open_img2dataset
    from tierclip.curate.ingest.run import run_ingest

    images = _images(max_pixels, image_size, resize_mode, background)
    _finish(run_ingest(open_img2dataset(source, input_format), out, shard_size, name, images), out)


@ingest_app.command("folder")
def ingest_folder(
    source: Path = typer.Argument(..., help="Folder of images; paths in the captions file are relative to it."),
    captions: Path = typer.Option(..., "--captions", help="CSV, TSV, JSONL or Parquet table of (path, caption)."),
    out: Path = OUT,
    path_col: str = typer.Option("path", "--path-col", help="Column holding the image path."),
    caption_col: str = typer.Option("caption", "--caption-col", help="Column holding the caption."),
    uid_col: str = typer.Option("uid", "--uid-col", help="Optional column of 32-hex uids to keep (ignored when absent)."),
    follow_links: bool = typer.Option(False, "--follow-links", help="Read images behind symbolic links that lead outside "
                                      "the folder (default: such rows get status outside_folder and are not read; "
                                      "absolute and ../ paths are never read)."),
    shard_size: int = SHARD_SIZE,
    name: str = NAME,
    max_pixels: int = MAX_PIXELS,
    image_size: int = IMAGE_SIZE,
    resize_mode: str = RESIZE_MODE,
    background: str = BACKGROUND,
) -> None:
    """Ingest a folder of images plus a table of (path, caption); listed-but-missing images keep a row."""
    from tierclip.curate.ingest.folder import FolderConfig, open_folder
    from tierclip.curate.ingest.run import run_ingest

    images = _images(max_pixels, image_size, resize_mode, background)
    cfg = FolderConfig(source, captions, path_col, caption_col, uid_col, follow_links)
    _finish(run_ingest(open_folder(cfg), out, shard_size, name, images), out)


@ingest_app.command("datacomp")
def ingest_datacomp(
    source: Path = typer.Argument(..., help="DataComp metadata: a .parquet file or a folder of them (searched recursively)."),
    out: Path = OUT,
    shard_size: int = checked(100_000, "--shard-size", ge=1, help="Rows per pool shard."),
    embeddings: str = typer.Option("l14", "--embeddings",
        help="CLIP features to import from the .npz beside each parquet as the pool's embeddings: l14 (OpenAI ViT-L-14, "
             "what DataComp's image-based baseline uses), b32 (OpenAI ViT-B-32), or none (metadata only)."),
    name: str = NAME,
) -> None:
    """Ingest DataComp metadata as a metadata-only pool; its CLIP scores become the `datacomp` sidecar, its .npz features the embeddings."""
    from tierclip.curate.ingest.datacomp import open_datacomp
    from tierclip.curate.ingest.run import run_ingest

    chosen = None if embeddings == "none" else embeddings
    _finish(run_ingest(open_datacomp(source, chosen), out, shard_size, name), out)


def download(
    urls: Path = typer.Argument(..., help="URL list: .txt (one URL a line), .csv, .tsv, .json, .jsonl or .parquet."),
    out: Path = OUT,
    workers: int = checked(1, "--workers", ge=1, help="img2dataset worker processes (its processes_count)."),
    download_threads: int = checked(16, "--download-threads", ge=1,
                                    help="Download threads per worker process (img2dataset's thread_count)."),
    image_size: int = checked(256, "--image-size", ge=1, help="Resize larger images to this size at ingest (never upscales; "
                              "EXIF orientation applied first)."),
    resize_mode: str = typer.Option("border", "--resize-mode", help="no, border, keep_ratio, keep_ratio_largest or center_crop "
                                    "(img2dataset's modes; border pads only the images it shrank)."),
    retries: int = checked(0, "--retries", ge=0, help="Retries per failed download."),
    timeout: int = checked(10, "--timeout", ge=1, help="Seconds before a download is given up."),
    url_col: str = typer.Option("url", "--url-col", help="Column holding the URL (table inputs)."),
    caption_col: str = typer.Option("caption", "--caption-col", help="Column holding the caption (used when present)."),
    input_format: str = typer.Option(None, "--input-format", help="txt, csv, tsv, json, jsonl or parquet (default: from the extension)."),
    encode_format: str = typer.Option("jpg", "--encode-format", help="Stored image format: jpg, png or webp (images in another "
                                      "format are re-encoded from the decoded RGB; transparency onto white)."),
    extra_col: list[str] = typer.Option([], "--extra-col", help="More input columns to keep (repeatable; `uid` is kept automatically)."),
    samples_per_shard: int = checked(10_000, "--samples-per-shard", ge=1, help="img2dataset's own shard size."),
    shard_size: int = SHARD_SIZE,
    name: str = NAME,
    keep_raw: bool = typer.Option(False, "--keep-raw", help="Keep img2dataset's output in OUT/_img2dataset after ingest."),
) -> None:
    """Download a URL (+caption) list with img2dataset and ingest the result as a pool."""
    from tierclip.curate.ingest.download import DownloadConfig
    from tierclip.curate.ingest.download import download as run_download

    cfg = DownloadConfig(urls=urls, out=out, workers=workers, download_threads=download_threads, image_size=image_size,
                         resize_mode=resize_mode,
                         retries=retries, timeout=timeout, url_col=url_col, caption_col=caption_col, input_format=input_format,
                         encode_format=encode_format, extra_columns=tuple(extra_col), samples_per_shard=samples_per_shard,
                         shard_size=shard_size, name=name, keep_raw=keep_raw)
    _finish(run_download(cfg), out)
