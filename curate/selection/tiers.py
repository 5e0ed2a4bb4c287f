"""Tier sets: nested top-k subsets or disjoint quality bins of one score, optionally equal-sized.

A tier set is a folder of subsets plus `tiers.json` ordering them, best
first. The candidates are the rows that pass the base clauses (status,
`--basic`, `--dedup`, ...) and have a score.

- nested (`fractions`): tier `topP` keeps DataComp's top-k rule at fraction
  P/100 of the candidates (see `curate.selection.query`); a smaller fraction
  has a higher or equal threshold, so tiers are nested.
- bins (`bins=k`): candidates ranked by score (best first, ties broken by
  uid) and cut into k bins of equal count (sizes differ by at most one);
  bins are disjoint and cover the candidates. Rows that tie on a boundary
  score may land in adjacent bins.
- `equal_size=N`: each tier is then a seeded random draw of N of its rows,
  so tiers differ in quality, not in quantity.
- `random_control`: for each tier a `random_<tier>` subset of the same size
  drawn uniformly from all candidates (the "random 30% vs top 30%" control).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from tierclip.curate import atomic
from tierclip.curate.errors import UserError
from tierclip.curate.fields import Checked, option
from tierclip.curate.pool import Pool, check_not_pool_files, gt_flag_columns
from tierclip.curate.selection.config import FilterConfig
from tierclip.curate.selection.query import collect_flags, drop_counts, gt_shares, plan, topk_threshold
from tierclip.curate.selection.uidorder import sort_uids
from tierclip.curate.subset import pool_ref, write_subset

TIER_BASE_EXCLUDED = ("fraction", "fraction_of")  # FilterConfig fields a tier set does not take (its tiers rank instead)


@dataclass(frozen=True)
class TierConfig(Checked):
    """`curate tiers`: the tiers' own options, and the base clauses (FilterConfig's options but --fraction and --fraction-of)."""

    base: FilterConfig = FilterConfig()
    fractions: tuple[float, ...] = option((), "Nested top-k tiers, e.g. 0.1,0.3,0.5,1.0 (DataComp's rule each).", gt=0, le=1,
                                          comma=True)
    bins: int | None = option(None, "Instead of --fractions: this many disjoint equal-count quality bins.", ge=1)
    equal_size: int | None = option(None, "Draw exactly N rows (seeded) from each tier: quality without quantity.", ge=1)
    random_control: bool = option(False, "Also write random_<tier>: a uniform draw of the same size.")
    seed: int = option(0, "Seed of the --equal-size and --random-control draws.", ge=0, le=2**32 - 1)

    def __post_init__(self):
        super().__post_init__()
        if bool(self.fractions) == (self.bins is not None):
            raise UserError("tiers: give either --fractions or --bins (one of them)")
        if self.base.fraction is not None:
            raise UserError("tiers: --fraction is for `curate filter`; use --fractions here")

    @property
    def kind(self) -> str:
        return "nested" if self.fractions else "bins"


@dataclass(frozen=True)
class Tier:
    name: str
    rows: pl.DataFrame  # uid, score, gt flags
    rule: str
    threshold: dict


def tier_name(fraction: float) -> str:
    return f"top{round(fraction * 100, 6):g}"


def nested_tiers(candidates: pl.DataFrame, score: str, fractions: tuple[float, ...]) -> list[Tier]:
    tiers = []
    for fraction in sorted(set(fractions)):
        threshold = candidates.select(topk_threshold(pl.col(score), None, fraction)).item()
        rows = candidates.filter(pl.col(score) >= threshold) if threshold is not None else candidates.clear()
        tiers.append(Tier(tier_name(fraction), rows, f"top {fraction:g} of candidates by {score} (DataComp top-k)",
                          {"fraction": fraction, "threshold": None if threshold is None else float(threshold)}))
    return tiers


def quality_bins(candidates: pl.DataFrame, score: str, k: int) -> list[Tier]:
    ranked = candidates.sort([score, "uid"], descending=[True, False]).with_row_index("rank")
    ranked = ranked.with_columns((pl.col("rank").cast(pl.Int64) * k // max(ranked.height, 1)).alias("bin"))
    tiers = []
    for b in range(k):
        rows = ranked.filter(pl.col("bin") == b).drop("rank", "bin")
        bounds = {"bin": b + 1, "bins": k,
                  "max_score": rows[score].max() if rows.height else None, "min_score": rows[score].min() if rows.height else None}
        tiers.append(Tier(f"bin{b + 1}", rows, f"bin {b + 1} of {k} equal-count bins by {score} (1 = best)", bounds))
    return tiers


def draw(rows: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """A seeded uniform draw of n rows, independent of the input row order."""
    return rows.sort("uid").sample(n=n, seed=seed, shuffle=False)


def build_tiers(pool: Pool, config: TierConfig) -> tuple[list[Tier], list[Tier], dict]:
    """Quality tiers (best first), random controls, and the base drop counts."""
    score = config.base.score
    base_plan = plan(pool, config.base, extra_columns=(score,))
    flags = collect_flags(base_plan, extra_columns=(score,))
    base_counts = {**drop_counts(flags, base_plan), "no_score": int((flags["alive"] & flags[score].is_null()).sum())}
    candidates = flags.filter(pl.col("alive") & pl.col(score).is_not_null()).select("uid", score, *base_plan.index.gt_flags())
    tiers = nested_tiers(candidates, score, config.fractions) if config.fractions else quality_bins(candidates, score, config.bins)
    if config.equal_size is not None:
        tiers = [_equal_size(tier, config.equal_size, config.seed) for tier in tiers]
    controls = []
    if config.random_control:
        controls = [Tier(f"random_{t.name}", draw(candidates, t.rows.height, config.seed + 1 + i),
                         f"uniform random draw of {t.rows.height} candidates (control for {t.name})", {})
                    for i, t in enumerate(tiers)]
    context = {"plan": base_plan, "base_counts": base_counts, "n_pool": flags.height, "n_candidates": candidates.height}
    return tiers, controls, context


def _equal_size(tier: Tier, n: int, seed: int) -> Tier:
    if tier.rows.height < n:
        raise UserError(f"--equal-size {n}: tier {tier.name} has only {tier.rows.height} rows; "
                        "choose a smaller size or larger fractions")
    return replace(tier, rows=draw(tier.rows, n, seed), rule=f"{tier.rule}; random draw of {n} (seed {seed})")


def write_tier_set(pool: Pool, config: TierConfig, out: str | Path) -> dict:
    """Write every tier and control as a subset under `out`, then `tiers.json` (best first)."""
    out = Path(out)
    check_not_pool_files(out)
    tiers, controls, context = build_tiers(pool, config)
    entries = {"tiers": [], "controls": []}
    for group, members in (("tiers", tiers), ("controls", controls)):
        for rank, tier in enumerate(members):
            kind = config.kind if group == "tiers" else "random"
            manifest = _tier_manifest(pool, config, tier, rank, out.name, context, kind)
            write_subset(out / tier.name, sort_uids(tier.rows["uid"]), manifest)
            entries[group].append({"name": tier.name, "path": tier.name, "n": tier.rows.height, **tier.threshold})
    index = {"pool": pool_ref(pool), "kind": config.kind, "score_column": config.base.score,
             "base_rule": context["plan"].rule_text(), "n_pool": context["n_pool"], "n_candidates": context["n_candidates"],
             "base_drop_counts": context["base_counts"], "equal_size": config.equal_size, "seed": config.seed,
             "created": datetime.now(UTC).isoformat(timespec="seconds"), **entries}
    atomic.write_json(out / "tiers.json", index)
    return index


def _tier_manifest(pool: Pool, config: TierConfig, tier: Tier, rank: int, tier_set: str, context: dict, kind: str) -> dict:
    counts = dict(context["base_counts"])
    counts["not_in_tier"] = context["n_candidates"] - tier.rows.height
    gt_flags = gt_flag_columns(tier.rows.schema)
    manifest = {
        "pool": pool_ref(pool), "rule": f"{context['plan'].rule_text()} AND {tier.rule}",
        "thresholds": tier.threshold, "score_column": config.base.score,
        "fraction": tier.threshold.get("fraction"), "parent": None, "n_pool": context["n_pool"],
        "drop_counts": counts, "clause_order": list(counts),
        "tier": tier.name, "tier_set": tier_set, "tier_rank": rank, "tier_kind": kind,
        "equal_size": config.equal_size, "seed": config.seed, "filter_config": config.base.to_json(),
    }
    if gt_flags:
        manifest["gt_shares"] = gt_shares(tier.rows, gt_flags)
    return manifest
