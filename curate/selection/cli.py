"""Typer commands: `curate filter`, `curate tiers`, `curate inspect`, `curate reshard`, `curate subset ...`.

Each command builds a frozen config and calls a library function; the
libraries (and polars) are imported inside the commands so `--help` is instant.
"""

from __future__ import annotations

from pathlib import Path

import typer
from tierclip.curate.cliutil import new_app

SCORE_COLUMN_HELP = ("Score column for --min-score/--fraction/tiers: clip_score (stage clip), or for DataComp "
                     "metadata pools clip_b32_similarity_score / clip_l14_similarity_score (sidecar datacomp); "
                     "found in meta or any sidecar automatically.")


def _base_config(score_column, min_score, lang, min_lang_prob, dedup, semdedup, basic, where, fraction=None, fraction_of="remaining"):
    from tierclip.curate.selection.config import FilterConfig

    kinds = tuple(k.strip() for k in dedup.split(",") if k.strip()) if dedup else ()
    return FilterConfig(score_column=score_column, min_score=min_score, fraction=fraction, fraction_of=fraction_of,
                        lang=lang, min_lang_prob=min_lang_prob, dedup=kinds, semdedup=semdedup, basic=basic, where=where)


def filter_command(
    pool: Path = typer.Argument(..., help="Pool folder (holds pool.json)."),
    out: Path = typer.Option(..., "--out", help="Subset folder to write (uids.parquet + manifest.json)."),
    score: str = typer.Option("clip_score", "--score", help=SCORE_COLUMN_HELP),
    min_score: float = typer.Option(None, "--min-score", help="Keep rows whose score is >= this value (null scores fail)."),
    fraction: float = typer.Option(None, "--fraction", help="Keep the top fraction by score, DataComp's top-k rule: "
                                   "threshold = the (int(n*F)+1)-th highest score, keep score >= threshold (ties kept)."),
    fraction_of: str = typer.Option("remaining", "--fraction-of", help="Rank for --fraction among 'remaining' rows "
                                    "(those passing every other clause) or the whole 'pool' (DataComp's intersection semantics)."),
    lang: str = typer.Option(None, "--lang", help="Keep captions in this language (fastText code from the lang stage, e.g. en)."),
    min_lang_prob: float = typer.Option(None, "--min-lang-prob", help="With --lang: also require lang_prob >= this."),
    dedup: str = typer.Option("", "--dedup", help="Comma list of text,image: keep one row per duplicate group "
                              "(dup_keep / image_dup_keep)."),
    semdedup: bool = typer.Option(False, "--semdedup", help="Keep rows with semdedup_keep (cluster stage)."),
    basic: bool = typer.Option(False, "--basic", help="DataComp's basic filter: English (fastText), > 2 words, > 5 characters, "
                               "shorter side >= 200 px, aspect ratio <= 3."),
    where: str = typer.Option(None, "--where", help='Extra SQL-style condition on any meta/sidecar column, e.g. "width >= 200 AND '
                              'caption_words > 3" (parsed by polars.sql_expr, never evaluated as Python).'),
) -> None:
    """Select a subset of a pool with one lazy query over meta and the score sidecars."""
    from tierclip.curate.cliutil import print_table
    from tierclip.curate.pool import Pool
    from tierclip.curate.selection.query import write_filtered

    config = _base_config(score, min_score, lang, min_lang_prob, dedup, semdedup, basic, where, fraction, fraction_of)
    selection, subset = write_filtered(Pool(pool), config, out)
    print(f"rule: {selection.rule}")
    print_table([*selection.drop_counts.items(), ("kept", subset.n), ("pool", selection.n_pool)], ("clause", "rows dropped"))
    for name, value in selection.thresholds.items():
        print(f"threshold {name}: {value}")
    print(f"wrote {subset.path} ({subset.n} uids)")


def tiers_command(
    pool: Path = typer.Argument(..., help="Pool folder (holds pool.json)."),
    out: Path = typer.Option(..., "--out", help="Tier-set folder to write: one subset per tier + tiers.json (best first)."),
    score: str = typer.Option("clip_score", "--score", help=SCORE_COLUMN_HELP),
    fractions: str = typer.Option(None, "--fractions", help="Nested top-k tiers, e.g. 0.1,0.3,0.5,1.0 (DataComp's rule each)."),
    bins: int = typer.Option(None, "--bins", help="Instead of --fractions: this many disjoint equal-count quality bins."),
    equal_size: int = typer.Option(None, "--equal-size", help="Draw exactly N rows (seeded) from each tier: quality without quantity."),
    random_control: bool = typer.Option(False, "--random-control", help="Also write random_<tier>: a uniform draw of the same size."),
    seed: int = typer.Option(0, "--seed", help="Seed of the --equal-size and --random-control draws."),
    min_score: float = typer.Option(None, "--min-score", help="Base clause: score >= this value."),
    lang: str = typer.Option(None, "--lang", help="Base clause: caption language (lang stage)."),
    min_lang_prob: float = typer.Option(None, "--min-lang-prob", help="Base clause with --lang: lang_prob >= this."),
    dedup: str = typer.Option("", "--dedup", help="Base clause: comma list of text,image duplicate removal."),
    semdedup: bool = typer.Option(False, "--semdedup", help="Base clause: semdedup_keep (cluster stage)."),
    basic: bool = typer.Option(False, "--basic", help="Base clause: DataComp's basic filter."),
    where: str = typer.Option(None, "--where", help="Base clause: SQL-style condition (polars.sql_expr)."),
) -> None:
    """Write a tier set: nested top-k tiers or quality bins of one score, optionally of equal size."""
    from tierclip.curate.errors import UserError
    from tierclip.curate.pool import Pool
    from tierclip.curate.selection.tiers import TierConfig, write_tier_set

    try:
        parsed = tuple(float(f) for f in fractions.split(",")) if fractions else ()
    except ValueError:
        raise UserError(f"--fractions: {fractions!r} is not a comma list of numbers") from None
    base = _base_config(score, min_score, lang, min_lang_prob, dedup, semdedup, basic, where)
    config = TierConfig(base, parsed, bins, equal_size, random_control, seed)
    index = write_tier_set(Pool(pool), config, out)
    for entry in index["tiers"] + index["controls"]:
        print(f"{entry['name']}: {entry['n']} rows")
    print(f"wrote {out}/tiers.json ({len(index['tiers'])} tiers, {len(index['controls'])} controls)")


def inspect_command(
    target: Path = typer.Argument(..., help="A pool folder or a subset folder."),
    out: Path = typer.Option(..., "--out", help="Folder for index.html and its chart PNGs."),
    pool: Path = typer.Option(None, "--pool", help="The subset's pool (default: the path its manifest records)."),
    per_reason: int = typer.Option(24, "--per-reason", help="Gallery samples per reason (kept, each status, each clause)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the gallery draw."),
) -> None:
    """Write an HTML report: counts per status/reason, drop counts, score histograms, a thumbnail gallery."""
    from tierclip.curate.selection.inspect_page import write_report
    from tierclip.curate.selection.inspect_rows import InspectConfig

    page = write_report(target, out, InspectConfig(per_reason=per_reason, seed=seed), pool)
    print(f"wrote {page}")


def reshard_command(
    subset: Path = typer.Argument(..., help="Subset folder (uids.parquet + manifest.json)."),
    out: Path = typer.Option(..., "--out", help="Folder for the new pool (must not hold a pool yet)."),
    pool: Path = typer.Option(None, "--pool", help="The subset's pool (default: the path its manifest records)."),
    shard_size: int = typer.Option(10_000, "--shard-size", help="Samples per output shard."),
    name: str = typer.Option(None, "--name", help="Name of the new pool (default: POOLNAME-SUBSETNAME)."),
) -> None:
    """Materialize a subset as its own pool: WebDataset shards, meta, sidecars and embeddings."""
    from tierclip.curate.selection.inspect_rows import open_target
    from tierclip.curate.selection.reshard import ReshardConfig, reshard

    opened_pool, _ = open_target(subset, pool)
    new_pool = reshard(subset, opened_pool, out, ReshardConfig(shard_size=shard_size, name=name))
    print(f"wrote pool {new_pool.name} at {new_pool.root}: {new_pool.info.n_samples} samples in {new_pool.info.n_shards} shards")


subset_app = new_app("Subset operations: set algebra and DataComp .npy export/import.")


def _set_op(op: str, a: Path, b: Path, out: Path) -> None:
    from tierclip.curate.selection.setops import combine

    written = combine(op, a, b, out)
    print(f"wrote {written.path} ({written.n} uids)")


@subset_app.command("intersect")
def intersect_command(a: Path = typer.Argument(..., help="First subset."), b: Path = typer.Argument(..., help="Second subset."),
                      out: Path = typer.Option(..., "--out", help="Subset folder to write.")) -> None:
    """Rows in both A and B (same pool required)."""
    _set_op("intersect", a, b, out)


@subset_app.command("union")
def union_command(a: Path = typer.Argument(..., help="First subset."), b: Path = typer.Argument(..., help="Second subset."),
                  out: Path = typer.Option(..., "--out", help="Subset folder to write.")) -> None:
    """Rows in A or B (same pool required)."""
    _set_op("union", a, b, out)


@subset_app.command("minus")
def minus_command(a: Path = typer.Argument(..., help="Subset to keep rows from."), b: Path = typer.Argument(..., help="Subset to remove."),
                  out: Path = typer.Option(..., "--out", help="Subset folder to write.")) -> None:
    """Rows in A but not in B (same pool required)."""
    _set_op("minus", a, b, out)


@subset_app.command("export-npy")
def export_npy_command(subset: Path = typer.Argument(..., help="Subset folder."),
                       out: Path = typer.Option(..., "--out", help="Output .npy (DataComp: sorted array of dtype u8,u8).")) -> None:
    """Write a subset as DataComp's .npy uid array."""
    from tierclip.curate.selection.setops import export_npy

    print(f"wrote {out} ({export_npy(subset, out)} uids)")


@subset_app.command("import-npy")
def import_npy_command(npy: Path = typer.Argument(..., help="DataComp .npy uid array (dtype u8,u8)."),
                       pool: Path = typer.Option(..., "--pool", help="The pool the uids belong to."),
                       out: Path = typer.Option(..., "--out", help="Subset folder to write.")) -> None:
    """Turn a DataComp .npy uid array into a subset of POOL (every uid must be in the pool)."""
    from tierclip.curate.pool import Pool
    from tierclip.curate.selection.setops import import_npy

    written = import_npy(npy, Pool(pool), out)
    print(f"wrote {written.path} ({written.n} uids)")
