"""Findings vs the seed papers: each claim, what these runs measured (a difference of seed means with a 95 %
interval), and a verdict from explicit rules.

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

Differences are Welch intervals over seeds (`analysis.stats`); picking the best tier before testing it
favours the claim a little (the winner's curse), which the reading of a borderline "reproduced" should allow for.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from tierclip.analysis import axes
from tierclip.analysis.stats import Estimate, combination

MARGIN = 0.02
REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_TESTED = "reproduced", "contradicted", "inconclusive", "not tested by these runs"
SUPERVISED = ("slip", "declip", "filip", "defilip")  # the CLIP-benchmark's supervision methods

CLAIMS = {  # key -> (claim, source, kind of rule)
    "quality": ("Quality beats quantity at equal compute: a filtered subset beats the unfiltered pool at the same "
                "samples seen", "DataComp; Scaling (Down) CLIP", "better"),
    "aug_half": ("CLIP+Aug matches CLIP trained on twice the data", "Scaling (Down) CLIP", "no worse"),
    "vit_size": ("Smaller ViTs suit smaller data, larger ViTs larger data (at fixed samples seen)", "Scaling (Down) CLIP",
                 "better"),
    "supervision": ("Supervision (SLIP, FILIP, DeCLIP, DeFILIP) helps ConvNets and ViTs differently",
                    "CLIP-benchmark (Cui et al. 2022)", "differs"),
    "text_depth": ("A shallow text encoder performs about as well as a deep one at lower training cost",
                   "CLIP-benchmark (Cui et al. 2022)", "no worse"),
    "crossover": ("Repetition-aware quality-quantity crossover: a small clean pool wins at low compute, a larger "
                  "noisier pool once the small one is repeated too often", "Goyal et al. 2024 (CVPR)", "crossover"),
}


@dataclass(frozen=True)
class Finding:
    key: str
    claim: str
    source: str
    measured: str
    estimate: Estimate | None
    verdict: str
    why: str


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


def _finding(key: str, measured: str, estimate: Estimate | None, why: str | None = None) -> Finding:
    claim, source, kind = CLAIMS[key]
    result, reason = verdict(kind, estimate)
    return Finding(key, claim, source, measured, estimate, result, why or reason)


def _not_tested(key: str, missing: str) -> Finding:
    claim, source, _ = CLAIMS[key]
    return Finding(key, claim, source, "–", None, NOT_TESTED, missing)


def quality_finding(best: pl.DataFrame, reference: str) -> Finding:
    """Best filtered tier vs the reference tier (each at its best size) at the largest budget holding both."""
    method = "clip" if "clip" in best["method"].to_list() else (best["method"].min() if best.height else None)
    rows = best.filter(pl.col("method") == method)
    for budget in sorted(set(rows["samples_seen"].to_list()), reverse=True):
        at = rows.filter(pl.col("samples_seen") == budget)
        ref, others = at.filter(pl.col("tier") == reference), at.filter(pl.col("tier") != reference)
        if ref.is_empty() or others.is_empty():
            continue
        top, base = others.row(0, named=True), ref.row(0, named=True)
        estimate = combination([(*_summary(top), 1.0), (*_summary(base), -1.0)])
        return _finding("quality", f"{method} at {budget:,} samples seen: {top['tier']} {top['mean']:.3f} − {reference} "
                        f"{base['mean']:.3f}", estimate)
    return _not_tested("quality", "no budget has runs of a filtered tier and the unfiltered (largest) tier")


def aug_half_finding(means: pl.DataFrame) -> Finding:
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
                    f"{row['mean']:.3f} − clip at {row['subset_size_clip']:,} {row['mean_clip']:.3f}", estimate)


def vit_size_finding(arch: axes.AxisTable | None) -> Finding:
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
                        f"{gap_hi:+.3f} minus at {lo_n:,} unique {gap_lo:+.3f}", estimate)
    return _not_tested("vit_size", "needs two ViT sizes each run at the same >= 2 data sizes and budget")


def supervision_findings(family: axes.AxisTable | None) -> list[Finding]:
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
                              f"on {conv} {gain_conv:+.3f}; difference ViT − ConvNet", estimate))
    return found or [_not_tested("supervision", f"needs clip and a supervised method ({', '.join(SUPERVISED)}) on "
                                 f"both {conv} and {vit} at one setting")]


def text_depth_finding(depth: axes.AxisTable | None) -> Finding:
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
                       f"{deep['text_depth']} {deep['mean']:.3f}{cost}", estimate)
    cheaper = shallow["gflops_per_sample"] is None or deep["gflops_per_sample"] is None or \
        shallow["gflops_per_sample"] < deep["gflops_per_sample"]
    if finding.verdict == REPRODUCED and not cheaper:
        return Finding(finding.key, finding.claim, finding.source, finding.measured, estimate, INCONCLUSIVE,
                       "accuracy holds but the shallow encoder is not cheaper in GFLOPs")
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
        return Finding("crossover", *CLAIMS["crossover"][:2], f"{row.tier_b} vs {row.tier_a} ({row.method})", None,
                       INCONCLUSIVE, row.result.reason + " (the crossover may lie outside the budgets covered)")
    row = crossing[0]
    res = row.result
    estimate = Estimate(res.x, res.interval, 0)
    measured = (f"{row.tier_b} ({sizes[row.tier_b]:,} unique) vs {row.tier_a} ({sizes[row.tier_a]:,} unique), {row.method}: "
                f"crossover at {res.x:,.0f} samples seen")
    larger_wins_later = res.reason.startswith(f"{row.tier_b} is better above")
    if not larger_wins_later:
        return Finding("crossover", *CLAIMS["crossover"][:2], measured, estimate, CONTRADICTED,
                       f"the smaller tier {row.tier_a} is the one better above the crossover")
    if res.boot_share is None or res.boot_share < 0.5 or res.interval is None:
        share = f"{res.boot_share:.0%}" if res.boot_share is not None else "no"
        return Finding("crossover", *CLAIMS["crossover"][:2], measured, estimate, INCONCLUSIVE,
                       f"only {share} of bootstrap fits cross in range")
    return Finding("crossover", *CLAIMS["crossover"][:2], measured, estimate, REPRODUCED,
                   f"the larger tier wins above the crossover in {res.boot_share:.0%} of bootstrap fits")


def all_findings(study_best: pl.DataFrame, reference: str, primary_means: pl.DataFrame, arch, family, depth,
                 crossovers, repetition_fits, sizes: dict[str, int]) -> list[Finding]:
    return ([quality_finding(study_best, reference), aug_half_finding(primary_means), vit_size_finding(arch)]
            + supervision_findings(family)
            + [text_depth_finding(depth), crossover_finding(crossovers, repetition_fits, sizes)])
