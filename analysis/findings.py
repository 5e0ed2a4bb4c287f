"""Findings vs the seed papers: each claim (analysis/claims.py), what these runs measured (a difference of seed
means with a 95 % interval), a verdict from explicit rules, and how many seeds an interval narrower than the paper's
effect would take.

Verdict rules (`verdict`), with MARGIN = 0.02 accuracy (two points) as the equivalence margin:

* "better" claims (the claim predicts a positive difference): reproduced when the interval lies above 0,
  contradicted when it lies below 0, otherwise inconclusive (the interval contains 0);
* "no worse" claims (A ≈ B, A the cheaper): reproduced when the interval's lower end is >= -MARGIN,
  contradicted when its upper end is < -MARGIN, otherwise inconclusive (the interval is too wide);
* "differs" claims: reproduced when the interval excludes 0, contradicted when it lies within ±MARGIN,
  otherwise inconclusive;
* a single seed on any side gives no interval: inconclusive ("one seed: no interval"); so does a
  zero-width interval (every seed scored the same, typically at chance level);
* runs that do not hold the axis a claim needs: "not tested by these runs", with what is missing.

Seeds needed (`seeds_text`): where a row's 95 % interval is not narrower than the paper's effect (or the margin,
where the paper states no number or claims equality), the seeds per group for which the expected Welch interval would
be, from the measured seed sds (a group with one seed borrows the sd pooled over the study's configurations with
>= 2 seeds); see `analysis.stats.seeds_needed`.

Comparisons of tiers use the headline runs (analysis/selection.py): one declared subset size, the seeds every tier has
there, so no tier is picked by its own noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import polars as pl
from tierclip.analysis import axes
from tierclip.analysis.augmentation import AUGMENTED, DEFAULT, OFF
from tierclip.analysis.claims import CLAIMS, MARGIN, PaperEffect, paper_effect
from tierclip.analysis.stats import Estimate, combination, seeds_needed

REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_TESTED = "reproduced", "contradicted", "inconclusive", "not tested by these runs"
SUPERVISED = ("slip", "declip", "filip", "defilip")  # the CLIP-benchmark's supervision methods
SETTING = ["tier", "model", "subset_size", "samples_seen"]


@dataclass(frozen=True)
class Finding:
    key: str
    claim: str
    source: str
    measured: str
    estimate: Estimate | None
    verdict: str
    why: str
    paper_effect: str = "–"
    seeds: str = "–"  # seeds an interval narrower than the paper's effect takes, in words


@dataclass(frozen=True, eq=False)
class Evidence:
    """What the findings read from a study: headline seed means (equal seeds per comparison), the reference tier,
    the random controls, seed means of the tier model and of every model, the axis tables, crossovers, repetition
    fits, tier sizes, whether the metric is a retrieval recall, and the pooled seed sd."""

    headline_means: pl.DataFrame
    reference: str
    controls: set[str]
    means: pl.DataFrame
    all_means: pl.DataFrame
    architecture: axes.AxisTable | None
    families: axes.AxisTable | None
    depth: axes.AxisTable | None
    crossovers: list = field(default_factory=list)
    repetition_fits: list = field(default_factory=list)
    sizes: dict = field(default_factory=dict)
    retrieval: bool = False
    pooled_sd: float | None = None


def verdict(kind: str, estimate: Estimate | None) -> tuple[str, str]:
    """(verdict, why) for a "better" / "no worse" / "differs" claim from the measured difference's interval."""
    if estimate is None:
        return NOT_TESTED, "no measurement"
    if estimate.interval is None:
        return INCONCLUSIVE, "one seed on at least one side: no interval"
    lo, hi = estimate.interval
    if hi - lo < 1e-12:
        return INCONCLUSIVE, "no variation between seeds (every seed scored the same, e.g. at chance): no real interval"
    if kind == "better":
        if lo > 0:
            return REPRODUCED, "the 95 % interval lies above 0"
        if hi < 0:
            return CONTRADICTED, "the 95 % interval lies below 0"
        return INCONCLUSIVE, "the 95 % interval contains 0"
    if kind == "no worse":
        if lo >= -MARGIN:
            return REPRODUCED, f"the 95 % interval's lower end is above -{MARGIN} (the equivalence margin)"
        if hi < -MARGIN:
            return CONTRADICTED, f"the 95 % interval lies below -{MARGIN}"
        return INCONCLUSIVE, f"the 95 % interval reaches below -{MARGIN}: too wide to tell"
    if kind == "differs":
        if lo > 0 or hi < 0:
            return REPRODUCED, "the 95 % interval excludes 0"
        if lo >= -MARGIN and hi <= MARGIN:
            return CONTRADICTED, f"the 95 % interval lies within ±{MARGIN}"
        return INCONCLUSIVE, "the 95 % interval contains 0"
    raise ValueError(f"unknown claim kind {kind!r}")


def _summary(row: dict) -> tuple[float, float | None, int]:
    return float(row["mean"]), row["std"], int(row["n"])


def seeds_text(estimate: Estimate | None, effect: PaperEffect, ev: Evidence | None) -> str:
    """Whether the interval is narrower than the paper's effect, else how many seeds per group it would take."""
    if estimate is None or not estimate.group_sds or ev is None:
        return "–"
    target, what = effect.target(ev.retrieval)
    if estimate.interval is not None and estimate.interval[1] - estimate.interval[0] < target:
        return f"enough: the interval ({estimate.interval[1] - estimate.interval[0]:.3f} wide) is narrower than {what} ({target:g})"
    borrowed = any(sd is None for sd in estimate.group_sds)
    if borrowed and ev.pooled_sd is None:
        return f"unknown: a group has one seed and no configuration has two to measure the spread ({what}: {target:g})"
    sds = [ev.pooled_sd if sd is None else sd for sd in estimate.group_sds]
    needed = seeds_needed(sds, target)
    basis = (f"with the seed sd pooled over the study ({ev.pooled_sd:.3g}) for groups of one seed" if borrowed
             else "from the measured seed sd " + ", ".join(f"{sd:.3g}" for sd in sds))
    if needed is None:
        return f"no seed count would do (no spread, or more than 10,000), {basis}"
    return f"about {needed} seeds per group for an interval narrower than {what} ({target:g}), {basis}; now {estimate.n}"


def _finding(key: str, measured: str, estimate: Estimate | None, ev: Evidence | None, detail: str | None = None,
             why: str | None = None) -> Finding:
    claim, source, kind = CLAIMS[key]
    result, reason = verdict(kind, estimate)
    effect = paper_effect(key, detail)
    return Finding(key, claim, source, measured, estimate, result, why or reason, effect.text, seeds_text(estimate, effect, ev))


def _not_tested(key: str, missing: str) -> Finding:
    claim, source, _ = CLAIMS[key]
    return Finding(key, claim, source, "–", None, NOT_TESTED, missing, paper_effect(key).text)


def _largest_budget(headline_means: pl.DataFrame) -> pl.DataFrame:
    """The headline rows of CLIP (else the first method) at the largest budget holding the reference tier."""
    methods = headline_means["method"].unique().to_list()
    if not methods:
        return headline_means
    rows = headline_means.filter(pl.col("method") == ("clip" if "clip" in methods else min(methods)))
    budgets = rows.group_by("samples_seen").agg(k=pl.col("tier").n_unique()).filter(pl.col("k") >= 2)
    return rows.filter(pl.col("samples_seen") == budgets["samples_seen"].max()) if budgets.height else rows.clear()


def _difference(a: dict, b: dict) -> Estimate:
    return combination([(*_summary(a), 1.0), (*_summary(b), -1.0)])


def quality_findings(ev: Evidence) -> list[Finding]:
    """Each filtered tier vs the reference, and each filtered tier vs its random control (`random_<tier>`), at the
    headline size with the same seeds, CLIP (else the first method) at the largest budget holding several tiers."""
    rows = {r["tier"]: r for r in _largest_budget(ev.headline_means).iter_rows(named=True)}
    ref = rows.get(ev.reference)
    found = []
    for tier, row in sorted(rows.items()):
        where = f"{row['method']}, {row['samples_seen']:,} samples seen, subset size {row['subset_size']:,}, {row['n']} seed(s) each"
        if tier not in ev.controls and tier != ev.reference and ref is not None:
            found.append(_finding("quality", f"{where}: {tier} {row['mean']:.3f} − {ev.reference} {ref['mean']:.3f}",
                                  _difference(row, ref), ev))
        control = rows.get(f"random_{tier}")
        if control is not None and tier not in ev.controls:
            found.append(_finding("quality_random", f"{where}: {tier} {row['mean']:.3f} − random_{tier} {control['mean']:.3f}",
                                  _difference(row, control), ev))
    if not any(f.key == "quality" for f in found):
        found.insert(0, _not_tested("quality", "no budget has headline runs (one size, shared seeds) of a filtered tier and "
                                               "the unfiltered (reference) tier"))
    return found


def aug_half_finding(means: pl.DataFrame, ev: Evidence | None = None) -> Finding:
    """clip-aug at subset size S vs clip at about 2S (±5 %), same tier, model and budget (the largest such)."""
    aug, clip = means.filter(pl.col("method") == "clip-aug"), means.filter(pl.col("method") == "clip")
    if aug.is_empty() or clip.is_empty():
        return _not_tested("aug_half", "needs runs of both clip and clip-aug")
    pairs = aug.join(clip, on=["tier", "model", "samples_seen"], suffix="_clip").filter(
        (pl.col("subset_size_clip") >= 1.9 * pl.col("subset_size")) & (pl.col("subset_size_clip") <= 2.1 * pl.col("subset_size")))
    if pairs.is_empty():
        return _not_tested("aug_half", "no clip-aug run at half the subset size of a clip run (same tier, model, budget)")
    row = pairs.sort(["samples_seen", "subset_size"], descending=True).row(0, named=True)
    estimate = combination([(row["mean"], row["std"], row["n"], 1.0), (row["mean_clip"], row["std_clip"], row["n_clip"], -1.0)])
    return _finding("aug_half", f"{row['tier']}, {row['samples_seen']:,} seen: clip-aug at {row['subset_size']:,} "
                    f"{row['mean']:.3f} − clip at {row['subset_size_clip']:,} {row['mean_clip']:.3f}", estimate, ev)


def vit_size_finding(arch: axes.AxisTable | None, ev: Evidence | None = None) -> Finding:
    """(large ViT − small ViT) at the largest data size minus the same at the smallest: > 0 if larger data
    favours the larger ViT."""
    if arch is None:
        return _not_tested("vit_size", "needs >= 2 models at >= 2 data sizes at one budget")
    vits = arch.rows.filter(pl.col("model_family") == "vit")
    for (tier, method, budget), panel in vits.group_by(["tier", "method", "samples_seen"], maintain_order=True):
        models = panel.group_by("model").agg(pl.col("params").first(), sizes=pl.col("unique_samples").n_unique())
        models = models.filter(pl.col("sizes") >= 2).sort("params")
        if models.height < 2:
            continue
        small, large = str(models["model"][0]), str(models["model"][-1])
        sizes = sorted(set(panel.filter(pl.col("model") == small)["unique_samples"].to_list())
                       & set(panel.filter(pl.col("model") == large)["unique_samples"].to_list()))
        if len(sizes) < 2:
            continue
        cell = {(r["model"], r["unique_samples"]): _summary(r) for r in panel.iter_rows(named=True)}
        lo_n, hi_n = sizes[0], sizes[-1]
        estimate = combination([(*cell[(large, hi_n)], 1.0), (*cell[(small, hi_n)], -1.0),
                                (*cell[(large, lo_n)], -1.0), (*cell[(small, lo_n)], 1.0)])
        gap_hi, gap_lo = (cell[(large, n)][0] - cell[(small, n)][0] for n in (hi_n, lo_n))
        return _finding("vit_size", f"{tier}, {method}, {budget:,} seen: ({large} − {small}) at {hi_n:,} unique "
                        f"{gap_hi:+.3f} minus at {lo_n:,} unique {gap_lo:+.3f}", estimate, ev)
    return _not_tested("vit_size", "needs two ViT sizes each run at the same >= 2 data sizes and budget")


def supervision_findings(family: axes.AxisTable | None, ev: Evidence | None = None) -> list[Finding]:
    """Per supervised method: (gain over CLIP on the ViT) − (gain over CLIP on the ConvNet)."""
    if family is None:
        return [_not_tested("supervision", "needs runs of a ConvNet and a ViT model at one shared setting")]
    reps = axes.family_representatives(family.rows)
    cell = {(r["method"], r["model"]): _summary(r) for r in family.rows.iter_rows(named=True)}
    conv, vit = reps["convnet"], reps["vit"]
    found = []
    for method in sorted(set(family.rows["method"].to_list()) & set(SUPERVISED)):
        needed = [(m, model) for m in (method, "clip") for model in (conv, vit)]
        if not all(key in cell for key in needed):
            continue
        estimate = combination([(*cell[(method, vit)], 1.0), (*cell[("clip", vit)], -1.0),
                                (*cell[(method, conv)], -1.0), (*cell[("clip", conv)], 1.0)])
        gain_vit, gain_conv = (cell[(method, model)][0] - cell[("clip", model)][0] for model in (vit, conv))
        found.append(_finding("supervision", f"{method} over clip ({family.setting}): on {vit} {gain_vit:+.3f}, "
                              f"on {conv} {gain_conv:+.3f}; difference ViT − ConvNet", estimate, ev, detail=method))
    return found or [_not_tested("supervision", f"needs clip and a supervised method ({', '.join(SUPERVISED)}) on "
                                 f"both {conv} and {vit} at one setting")]


def text_depth_finding(depth: axes.AxisTable | None, ev: Evidence | None = None) -> Finding:
    """Shallowest − deepest text encoder accuracy (no worse within MARGIN), with the cost of each."""
    if depth is None:
        return _not_tested("text_depth", "needs text-depth variants of one model at one shared setting")
    rows = depth.rows.sort("text_depth")
    shallow, deep = rows.row(0, named=True), rows.row(-1, named=True)
    estimate = combination([(*_summary(shallow), 1.0), (*_summary(deep), -1.0)])
    cost = ""
    if shallow["gflops_per_sample"] and deep["gflops_per_sample"]:
        cost = f"; GFLOPs/sample {shallow['gflops_per_sample']:.3g} vs {deep['gflops_per_sample']:.3g}"
    if shallow.get("samples_per_s") and deep.get("samples_per_s"):
        cost += f", {shallow['samples_per_s']:.0f} vs {deep['samples_per_s']:.0f} samples/s"
    finding = _finding("text_depth", f"{depth.setting}: depth {shallow['text_depth']} {shallow['mean']:.3f} − depth "
                       f"{deep['text_depth']} {deep['mean']:.3f}{cost}", estimate, ev)
    cheaper = shallow["gflops_per_sample"] is None or deep["gflops_per_sample"] is None or \
        shallow["gflops_per_sample"] < deep["gflops_per_sample"]
    if finding.verdict == REPRODUCED and not cheaper:
        return replace(finding, verdict=INCONCLUSIVE, why="accuracy holds but the shallow encoder is not cheaper in GFLOPs")
    return finding


def crossover_finding(crossovers, repetition_fits, sizes: dict[str, int]) -> Finding:
    """From the repetition-law crossovers in samples seen between a smaller and a strictly larger tier (each at
    its largest trained size; the smaller tier first in each row). Equal-size tiers (curate tiers --equal-size)
    cannot test the claim: it compares a small clean pool with a larger noisier one at their own sizes."""
    rows = [row for row in crossovers if row.kind.startswith("samples seen")]
    unequal = [row for row in rows if sizes.get(row.tier_a, 0) < sizes.get(row.tier_b, 0)]
    if rows and not unequal:
        return _not_tested("crossover", "every tier was trained at the same largest size; the claim needs a small "
                           "tier and a larger one at their own sizes (tiers without --equal-size)")
    rows = unequal
    if not rows:
        fitted = [f for f in repetition_fits if f.model is not None]
        why = ("fewer than two tiers have a repetition-law fit" if fitted else
               "the repetition-law fits were refused: " + (repetition_fits[0].refusal if repetition_fits else "no runs"))
        return _not_tested("crossover", why)
    crossing = [row for row in rows if row.result.x is not None]
    if not crossing:
        row = rows[0]
        return _crossover(f"{row.tier_b} vs {row.tier_a} ({row.method})", None, INCONCLUSIVE,
                          row.result.reason + " (the crossover may lie outside the budgets covered)")
    row = crossing[0]
    res = row.result
    estimate = Estimate(res.x, res.interval, 0)
    measured = (f"{row.tier_b} ({sizes[row.tier_b]:,} unique) vs {row.tier_a} ({sizes[row.tier_a]:,} unique), {row.method}: "
                f"crossover at {res.x:,.0f} samples seen")
    larger_wins_later = res.reason.startswith(f"{row.tier_b} is better above")
    if not larger_wins_later:
        return _crossover(measured, estimate, CONTRADICTED, f"the smaller tier {row.tier_a} is the one better above the crossover")
    if res.boot_share is None or res.boot_share < 0.5 or res.interval is None:
        share = f"{res.boot_share:.0%}" if res.boot_share is not None else "no"
        return _crossover(measured, estimate, INCONCLUSIVE, f"only {share} of bootstrap fits cross in range")
    return _crossover(measured, estimate, REPRODUCED,
                      f"the larger tier wins above the crossover in {res.boot_share:.0%} of bootstrap fits")


def _crossover(measured: str, estimate: Estimate | None, result: str, why: str) -> Finding:
    claim, source, _ = CLAIMS["crossover"]
    return Finding("crossover", claim, source, measured, estimate, result, why, paper_effect("crossover").text,
                   "n/a: a crossover point, not a difference of means")


def augmentation_findings(all_means: pl.DataFrame, ev: Evidence | None = None) -> list[Finding]:
    """Each augmented method with its own augmentation minus the same method with it off, same tier, model, size and
    samples seen (equal compute: the views cost the same either way); per method and model, the setting with the most
    seeds on the weaker side (then the largest budget and size)."""
    if "train_method" not in all_means.columns:
        return [_not_tested("augmentation", "the runs record no augmentation (config.json)")]
    found = []
    for method in AUGMENTED:
        runs = all_means.filter(pl.col("train_method") == method)
        pairs = runs.filter(pl.col("augmentation") == DEFAULT).join(runs.filter(pl.col("augmentation") == OFF), on=SETTING,
                                                                   suffix="_off")
        for _, group in pairs.group_by("model", maintain_order=True):
            row = group.with_columns(seeds=pl.min_horizontal("n", "n_off")).sort(
                ["seeds", "samples_seen", "subset_size"], descending=True).row(0, named=True)
            estimate = combination([(*_summary(row), 1.0), (row["mean_off"], row["std_off"], row["n_off"], -1.0)])
            found.append(_finding("augmentation", f"{method} on {row['model']}, {row['tier']} at {row['subset_size']:,}, "
                                  f"{row['samples_seen']:,} seen: with its augmentation {row['mean']:.3f} − without "
                                  f"{row['mean_off']:.3f}", estimate, ev))
    return found or [_not_tested("augmentation", "needs runs of an augmented method (" + ", ".join(AUGMENTED) + ") with and "
                                 "without its augmentation (train run --aug ...) at one tier, model, size and budget")]


def all_findings(ev: Evidence) -> list[Finding]:
    return (quality_findings(ev) + [aug_half_finding(ev.means, ev)] + augmentation_findings(ev.all_means, ev)
            + [vit_size_finding(ev.architecture, ev)] + supervision_findings(ev.families, ev)
            + [text_depth_finding(ev.depth, ev), crossover_finding(ev.crossovers, ev.repetition_fits, ev.sizes)])
