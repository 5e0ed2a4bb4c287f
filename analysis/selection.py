"""Which runs a comparison reports, decided before their values are read.

Picking the best of several noisy means and then reporting that same mean overstates it (the winner's curse). Two
rules keep the report's numbers free of it:

* **Headline** (`headlines`): per method x samples-seen budget, every tier is compared at ONE subset size, over the
  seeds every tier has there, so each point of the comparison has the same seeds (equal counts, the same seed
  numbers). The size is the declared one (`--headline-size`) where at least two tiers have runs at it; otherwise the
  size at which the most tiers, then the most shared seeds, then the most data (largest size) are found. Only which
  runs exist decides, never their values.
* **Best subset size of a tier** (`best_sizes`): the size is chosen on the selection seed (each size's lowest seed)
  and its accuracy reported on that size's other seeds, which played no part in the choice. A tier trained at one
  size has nothing to choose: all its seeds are reported. When the chosen size has no other seed, the tier is
  reported at the headline size instead, and the table says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from tierclip.analysis.tables import seed_means

NO_SEED = -1  # runs whose results.json names no seed count as one seed of their own


@dataclass(frozen=True)
class Headline:
    """The comparison of one method x budget: the size, the seeds every tier shares there, and how the size was set."""

    method: str
    samples_seen: int
    subset_size: int
    seeds: tuple[int, ...]
    tiers: tuple[str, ...]
    declared: bool
    note: str = ""


def _seeded(points: pl.DataFrame) -> pl.DataFrame:
    return points.with_columns(pl.col("seed").fill_null(NO_SEED))


def _cells(points: pl.DataFrame) -> dict[int, dict[str, set]]:
    """subset size -> tier -> the seeds it has there."""
    cells: dict[int, dict[str, set]] = {}
    for size, tier, seed in points.select("subset_size", "tier", "seed").iter_rows():
        cells.setdefault(int(size), {}).setdefault(str(tier), set()).add(int(seed))
    return cells


def _headline(method: str, budget: int, cells: dict[int, dict[str, set]], declared: int | None) -> Headline | None:
    def shared(size: int) -> set:
        return set.intersection(*cells[size].values())

    usable = [size for size in cells if len(cells[size]) >= 2 and shared(size)]
    if not usable:
        return None
    note = ""
    if declared is not None and declared in usable:
        size = declared
    else:
        size = max(usable, key=lambda s: (len(cells[s]), len(shared(s)), s))
        if declared is not None:
            note = f"the declared headline size {declared:,} has runs of fewer than two tiers (with a shared seed) here"
    return Headline(method, budget, size, tuple(sorted(shared(size))), tuple(sorted(cells[size])),
                    declared is not None and size == declared, note)


def headlines(points: pl.DataFrame, declared: int | None = None) -> list[Headline]:
    """One Headline per method x samples-seen budget that has runs of at least two tiers at one size with a shared seed."""
    found = []
    usable = _seeded(points.drop_nulls(["subset_size", "samples_seen"]))
    for (method, budget), group in usable.group_by(["method", "samples_seen"], maintain_order=True):
        headline = _headline(str(method), int(budget), _cells(group), declared)
        if headline is not None:
            found.append(headline)
    return sorted(found, key=lambda h: (h.method, h.samples_seen))


def headline_runs(points: pl.DataFrame, headline: Headline) -> pl.DataFrame:
    """The runs a headline compares: its method, budget and size, the shared seeds only."""
    return _seeded(points).filter((pl.col("method") == headline.method) & (pl.col("samples_seen") == headline.samples_seen)
                                  & (pl.col("subset_size") == headline.subset_size) & pl.col("seed").is_in(list(headline.seeds)))


def headline_means(points: pl.DataFrame, found: list[Headline], level: float = 0.95) -> pl.DataFrame:
    """Seed means of every tier in every headline (equal seeds within a headline)."""
    frames = [seed_means(headline_runs(points, h), level) for h in found]
    return pl.concat(frames, how="diagonal_relaxed") if frames else seed_means(points.clear(), level)


def _selected(group: pl.DataFrame, headline: Headline | None) -> tuple[pl.DataFrame, str] | None:
    """The runs reported for one tier at one method x budget, and the rule that picked them."""
    sizes = group["subset_size"].unique()
    if sizes.len() == 1:
        return group, "only size trained: every seed"
    first = group.sort("seed").group_by("subset_size", maintain_order=True).first()
    winner = first.sort(["value", "subset_size"], descending=[True, True]).row(0, named=True)
    held = group.filter((pl.col("subset_size") == winner["subset_size"]) & (pl.col("seed") != winner["seed"]))
    if not held.is_empty():
        return held, (f"size chosen on seed {winner['seed']} (each size's lowest seed), reported on the other "
                      f"{held.height} seed(s)")
    if headline is not None and headline.subset_size in set(sizes.to_list()):
        at_headline = group.filter(pl.col("subset_size") == headline.subset_size)
        return at_headline, (f"headline size: the size chosen on seed {winner['seed']} ({winner['subset_size']:,}) "
                             "has no other seed to report on")
    return None


def best_sizes(points: pl.DataFrame, found: list[Headline], level: float = 0.95) -> tuple[pl.DataFrame, list[str]]:
    """Each tier at its best subset size per method x budget (held-out rule above), ranked by the reported mean
    (rank 1 = best tier); and a sentence for every tier that could not be reported."""
    by_key = {(h.method, h.samples_seen): h for h in found}
    frames, notes = [], []
    for (method, budget, tier), group in _seeded(points).group_by(["method", "samples_seen", "tier"], maintain_order=True):
        picked = _selected(group, by_key.get((method, budget)))
        if picked is None:
            notes.append(f"{tier} ({method}, {int(budget):,} samples seen): the size chosen on its selection seed has no "
                         "other seed and the tier has no run at the headline size, so no unbiased best size is reported")
            continue
        runs, rule = picked
        frames.append(seed_means(runs, level).with_columns(rule=pl.lit(rule), seeds=pl.lit(_seed_text(runs))))
    if not frames:
        return seed_means(points.clear(), level).with_columns(rule=pl.lit(None, pl.Utf8), seeds=pl.lit(None, pl.Utf8),
                                                              rank=pl.lit(None, pl.Int64)), notes
    best = pl.concat(frames, how="diagonal_relaxed")
    ranks = pl.col("mean").rank("ordinal", descending=True).over(["method", "samples_seen"]).cast(pl.Int64)
    return best.with_columns(rank=ranks).sort(["method", "samples_seen", "rank"]), notes


def _seed_text(runs: pl.DataFrame) -> str:
    seeds = sorted(runs["seed"].unique().to_list())
    return f"seed{'s' if len(seeds) > 1 else ''} " + ", ".join(str(seed) if seed != NO_SEED else "?" for seed in seeds)
