"""`curate synth`: write a synthetic pool with known defects and its clean eval set."""

from __future__ import annotations

from pathlib import Path

import typer

RATE_HELP = "Share of samples with this defect (default: the profile's rate)."


def synth(
    n: int = typer.Option(..., "--n", help="Number of samples in the pool."),
    out: Path = typer.Option(..., "--out", help="Pool folder to create (must be new or an unfinished run of the same recipe)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed and options give the same bytes."),
    image_size: int = typer.Option(64, "--image-size", help="Image side in pixels (at least 16)."),
    shard_size: int = typer.Option(1000, "--shard-size", help="Samples per shard."),
    profile: str = typer.Option("web", "--profile", help="Defect rates: 'web' (about 65% of samples have a defect) or 'clean' (none)."),
    max_objects: int = typer.Option(3, "--max-objects", help="Most objects per image (1 to 3)."),
    rate_misaligned: float = typer.Option(None, "--rate-misaligned", help=RATE_HELP + " Another sample's caption."),
    rate_attribute_swap: float = typer.Option(None, "--rate-attribute-swap", help=RATE_HELP + " One colour or shape wrong."),
    rate_boilerplate: float = typer.Option(None, "--rate-boilerplate", help=RATE_HELP + " Alt-text like 'IMG_0412.JPG'."),
    rate_non_english: float = typer.Option(None, "--rate-non-english", help=RATE_HELP + " Caption in fr/de/es/it/pt."),
    rate_exact_dup: float = typer.Option(None, "--rate-exact-dup", help=RATE_HELP + " Same image and caption as an earlier sample."),
    rate_near_dup: float = typer.Option(None, "--rate-near-dup", help=RATE_HELP + " Shifted or re-encoded image, edited caption."),
    rate_tiny: float = typer.Option(None, "--rate-tiny", help=RATE_HELP + " Image of 6-12 px a side."),
    rate_corrupt: float = typer.Option(None, "--rate-corrupt", help=RATE_HELP + " Image bytes that do not decode."),
    rate_empty_caption: float = typer.Option(None, "--rate-empty-caption", help=RATE_HELP + " Empty or blank caption."),
    eval_n: int = typer.Option(1000, "--eval-n", help="Images in the held-out eval set (0: none)."),
    eval_out: Path = typer.Option(None, "--eval-out", help="Eval set folder (default: POOL/eval)."),
    workers: int = typer.Option(0, "--workers", help="Worker processes (0: one per CPU core)."),
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
