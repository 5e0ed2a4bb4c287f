"""`curate quality POOL`: precision and recall of each filter against a synthetic pool's ground-truth defects."""

from __future__ import annotations

from pathlib import Path

import typer
from tierclip.curate.cliopts import checked, numbers


def quality(
    pool: Path = typer.Argument(..., help="Synthetic pool folder (curate synth), scored with `curate score`."),
    fraction: float = checked(0.3, "--fraction", kind=float, gt=0, le=1,
                              help="Top-k fraction for the clip_score filters (DataComp's top-k rule)."),
    min_scores: str = numbers("", "--min-scores", finite=False, lt=float("inf"),
                              help="Comma list of absolute clip_score thresholds to report as extra filters."),
    min_side: int = checked(16, "--min-side", ge=0, help="Shorter image side of the scaled basic rule (DataComp uses 200 px)."),
    image_dedup_thresholds: str = numbers("", "--image-dedup-thresholds", ge=-1, le=1,
                                          help="Comma list of extra cosine thresholds to re-run image_dedup's grouping at "
                                               "(the sidecar keeps its own --image-dedup-threshold)."),
    cluster_semdedup_eps_values: str = numbers("", "--cluster-semdedup-eps-values", ge=0, le=2,
                                               help="Comma list of extra SemDeDup eps values (--cluster-semdedup-eps) to "
                                                    "re-run on the cluster stage."),
) -> None:
    """Print a Markdown report: each filter's rejects against the gt_* columns, duplicate pairs, clip_score ROC-AUC."""
    from tierclip.curate.pool import Pool
    from tierclip.curate.quality.metrics import default_filters, report

    specs = default_filters(fraction, tuple(min_scores), min_side, tuple(image_dedup_thresholds), tuple(cluster_semdedup_eps_values))
    print(report(Pool(pool), specs), end="")
