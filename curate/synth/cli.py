"""`curate synth`: write a synthetic pool with known defects and its clean eval set."""

from __future__ import annotations

from pathlib import Path

import typer
from tierclip.curate.cliopts import checked
from tierclip.curate.synth.config import MIN_IMAGE_SIZE

RATE_HELP = "Share of samples with this defect (default: the profile's rate)."


def _rate(flag: str, what: str):
    return checked(None, flag, kind=float, ge=0, le=1, help=f"{RATE_HELP} {what}")


def synth(
    n: int = checked(..., "--n", ge=1, help="Number of samples in the pool."),
    out: Path = typer.Option(..., "--out", help="Pool folder to create (must be new or an unfinished run of the same recipe)."),
    seed: int = checked(0, "--seed", ge=0, le=2**32 - 1, help="Random seed; the same seed and options give the same bytes."),
    image_size: int = checked(64, "--image-size", ge=MIN_IMAGE_SIZE, help="Image side in pixels."),
    shard_size: int = checked(1000, "--shard-size", ge=1, help="Samples per shard."),
    profile: str = typer.Option("web", "--profile", help="Defect rates: 'web' (about 65% of samples have a defect) or 'clean' (none)."),
    max_objects: int = checked(3, "--max-objects", ge=1, le=3, help="Most objects per image."),
    rate_misaligned: float = _rate("--rate-misaligned", "Another sample's caption."),
    rate_attribute_swap: float = _rate("--rate-attribute-swap", "One colour or shape wrong."),
    rate_boilerplate: float = _rate("--rate-boilerplate", "Alt-text like 'IMG_0412.JPG'."),
    rate_non_english: float = _rate("--rate-non-english", "Caption in fr/de/es/it/pt."),
    rate_exact_dup: float = _rate("--rate-exact-dup", "Same image and caption as an earlier sample."),
    rate_near_dup: float = _rate("--rate-near-dup", "Shifted or re-encoded image, edited caption."),
    rate_tiny: float = _rate("--rate-tiny", "Image of 6-12 px a side."),
    rate_corrupt: float = _rate("--rate-corrupt", "Image bytes that do not decode."),
    rate_empty_caption: float = _rate("--rate-empty-caption", "Empty or blank caption."),
    eval_n: int = checked(1000, "--eval-n", ge=0, help="Images in the held-out eval set (0: none)."),
    eval_out: Path = typer.Option(None, "--eval-out", help="Eval set folder (default: POOL/eval)."),
    workers: int = checked(0, "--workers", ge=0, help="Worker processes (0: one per CPU core)."),
) -> None:
    """Write a synthetic pool of shapes and captions with injected defects (gt_* columns) and a clean eval set."""
    from tierclip.curate.cliutil import print_table
    from tierclip.curate.synth.config import make_config
    from tierclip.curate.synth.writer import synthesize

    rates = dict(misaligned=rate_misaligned, attribute_swap=rate_attribute_swap, boilerplate=rate_boilerplate,
                 non_english=rate_non_english, exact_dup=rate_exact_dup, near_dup=rate_near_dup, tiny=rate_tiny,
                 corrupt=rate_corrupt, empty_caption=rate_empty_caption)
    config = make_config(n, out, profile, rates, seed=seed, image_size=image_size, shard_size=shard_size,
                         max_objects=max_objects, eval_n=eval_n, eval_out=eval_out, workers=workers)
    counts = synthesize(config)
    print(f"pool {config.pool_name}: {config.n} samples in {config.n_shards} shards at {out}"
          + (f"; eval set ({config.eval_n} images) at {config.eval_root}" if config.eval_n else ""))
    print_table(counts.rows(), ("gt", "rows", "share"))
