"""Typer commands: `curate filter`, `curate tiers`, `curate inspect`, `curate reshard`, `curate subset ...`.

Each command builds a frozen config and calls a library function; the
libraries (and polars) are imported inside the commands so `--help` is instant.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import typer
from tierclip.curate.cliopts import DerivedCommand, checked, config_from, option_specs, typer_parameter
from tierclip.curate.cliutil import new_app


def _pool_and_out(out_help: str) -> list[inspect.Parameter]:
    keyword = inspect.Parameter.KEYWORD_ONLY
    return [inspect.Parameter("pool", keyword, annotation=Path, default=typer.Argument(..., help="Pool folder (holds pool.json).",
                                                                                     metavar="POOL")),
            inspect.Parameter("out", keyword, annotation=Path, default=typer.Option(..., "--out", help=out_help))]


def filter_parameters() -> list[inspect.Parameter]:
    """POOL, --out and every FilterConfig field (the clauses; curate tiers shares their declaration)."""
    from tierclip.curate.selection.config import FilterConfig

    return _pool_and_out("Subset folder to write (uids.parquet + manifest.json).") + [
        typer_parameter(spec) for spec in option_specs(FilterConfig)]


def filter_body(values: dict) -> None:
    """Select a subset of a pool with one lazy query over meta and the score sidecars."""
    from tierclip.curate.cliutil import print_table
    from tierclip.curate.pool import Pool
    from tierclip.curate.selection.config import FilterConfig
    from tierclip.curate.selection.query import write_filtered

    selection, subset = write_filtered(Pool(values["pool"]), config_from(FilterConfig, values), values["out"])
    print(f"rule: {selection.rule}")
    print_table([*selection.drop_counts.items(), ("kept", subset.n), ("pool", selection.n_pool)], ("clause", "rows dropped"))
    for name, value in selection.thresholds.items():
        print(f"threshold {name}: {value}")
    print(f"wrote {subset.path} ({subset.n} uids)")


def tiers_parameters() -> list[inspect.Parameter]:
    """POOL, --out, TierConfig's own fields, then FilterConfig's clauses but the fraction ones (the tiers rank instead)."""
    from tierclip.curate.selection.config import FilterConfig
    from tierclip.curate.selection.tiers import TIER_BASE_EXCLUDED, TierConfig

    clauses = [spec for spec in option_specs(FilterConfig) if spec.field.name not in TIER_BASE_EXCLUDED]
    return _pool_and_out("Tier-set folder to write: one subset per tier + tiers.json (best first).") + [
        typer_parameter(spec) for spec in option_specs(TierConfig) + clauses]


def tiers_body(values: dict) -> None:
    """Write a tier set: nested top-k tiers or quality bins of one score, optionally of equal size."""
    from tierclip.curate.pool import Pool
    from tierclip.curate.selection.tiers import TierConfig, write_tier_set

    index = write_tier_set(Pool(values["pool"]), config_from(TierConfig, values), values["out"])
    for entry in index["tiers"] + index["controls"]:
        print(f"{entry['name']}: {entry['n']} rows")
    print(f"wrote {values['out']}/tiers.json ({len(index['tiers'])} tiers, {len(index['controls'])} controls)")


filter_command = DerivedCommand("filter", filter_body.__doc__, filter_parameters, filter_body)
tiers_command = DerivedCommand("tiers", tiers_body.__doc__, tiers_parameters, tiers_body)


def inspect_command(
    target: Path = typer.Argument(..., help="A pool folder or a subset folder."),
    out: Path = typer.Option(..., "--out", help="Folder for index.html and its chart PNGs."),
    pool: Path = typer.Option(None, "--pool", help="The subset's pool (default: the path its manifest records)."),
    per_reason: int = checked(24, "--per-reason", ge=0, help="Gallery samples per reason (kept, each status, each clause)."),
    seed: int = checked(0, "--seed", ge=0, le=2**32 - 1, help="Seed of the gallery draw."),
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
    shard_size: int = checked(10_000, "--shard-size", ge=1, help="Samples per output shard."),
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
