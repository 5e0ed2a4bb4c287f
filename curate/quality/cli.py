"""`curate quality POOL`: precision and recall of each filter against a synthetic pool's ground-truth defects."""

from __future__ import annotations

from pathlib import Path

import typer


def quality(
    pool: Path = typer.Argument(..., help="Synthetic pool folder (curate synth), scored with `curate score`."),
    fraction: float = typer.Option(0.3, "--fraction", help="Top-k fraction for the clip_score filters (DataComp's top-k rule)."),
    min_scores: str = typer.Option("", "--min-scores", help="Comma list of absolute clip_score thresholds to report as extra filters."),
    min_side: int = typer.Option(16, "--min-side", help="Shorter image side of the scaled basic rule (DataComp uses 200 px)."),
    image_dup_thresholds: str = typer.Option("", "--image-dup-thresholds", help="Comma list of extra cosine thresholds to re-run "
                                            "image_dedup's grouping at (the sidecar keeps its own)."),
    semdedup_eps_values: str = typer.Option("", "--semdedup-eps-values",
                                            help="Comma list of extra SemDeDup eps values to re-run on the cluster stage."),
) -> None:
    """Print a Markdown report: each filter's rejects against the gt_* columns, duplicate pairs, clip_score ROC-AUC."""
    from tierclip.curate.pool import Pool
    from tierclip.curate.quality.metrics import default_filters, parse_floats, report

    specs = default_filters(fraction, parse_floats(min_scores), min_side, parse_floats(image_dup_thresholds),
                            parse_floats(semdedup_eps_values))
    print(report(Pool(pool), specs), end="")
