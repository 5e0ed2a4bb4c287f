"""Curation quality on a synthetic pool: how well each filter's rejects match the pool's ground-truth defects.

A synthetic pool (`curate synth`) marks every row with boolean `gt_<defect>`
columns and `gt_clean`. Each filter here is a rule that REJECTS rows, built
from the selection library (`curate.selection`: the same `FilterConfig`,
clauses and DataComp top-k threshold `curate filter` uses). For a filter:

- rejected share  = rejected / rows
- recall[d]       = rejected AND d / d            (share of defect d's rows it rejects)
- clean rejected  = rejected AND clean / clean    (collateral damage)
- precision (any) = rejected AND not clean / rejected
- precision (target), recall (target): the same against the union of the
  defects the filter is aimed at (`FilterSpec.targets`).

Rejects are counted for the filter's own clauses only (`rule="own"`): the
status clause every `curate filter` run applies is reported once, as the
`status` filter, instead of being folded into every row. Combinations
(`rule="dropped"`) count what `curate filter` with that config drops, status
included.

`clip_score` is also summarised by ROC-AUC of clean rows against each defect
type (probability that a random clean row outscores a random defective one,
ties counting one half).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
from tierclip.curate.errors import UserError
from tierclip.curate.pool import Pool
from tierclip.curate.selection.config import FilterConfig
from tierclip.curate.selection.query import Plan, collect_flags, plan
from tierclip.curate.selection.sources import ColumnIndex

CLEAN = "gt_clean"
DUP_OF = "gt_dup_of"  # uid of the original an injected duplicate copies
DUP_DEFECTS = ("exact_dup", "near_dup")
DEFECTS = ("misaligned", "attribute_swap", "boilerplate", "non_english", "exact_dup", "near_dup", "tiny", "corrupt", "empty_caption")


# -- pure metrics --------------------------------------------------------------------
def precision_recall(rejected: np.ndarray, defect: np.ndarray) -> tuple[float | None, float | None]:
    """(rejected AND defect / rejected, rejected AND defect / defect); None where the denominator is 0."""
    rejected, defect = np.asarray(rejected, dtype=bool), np.asarray(defect, dtype=bool)
    hits = int((rejected & defect).sum())
    n_rejected, n_defect = int(rejected.sum()), int(defect.sum())
    return (hits / n_rejected if n_rejected else None), (hits / n_defect if n_defect else None)


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """P(a random positive scores above a random negative), ties 1/2: the Mann-Whitney U over n_pos * n_neg.

    Written with scipy's rankdata (sklearn is not a dependency); NaN scores are left out."""
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=np.float64)
    negative = np.asarray(negative, dtype=np.float64)
    positive, negative = positive[~np.isnan(positive)], negative[~np.isnan(negative)]
    if len(positive) == 0 or len(negative) == 0:
        return None
    ranks = rankdata(np.concatenate([positive, negative]))  # average ranks for ties
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2
    return float(u / (len(positive) * len(negative)))


def pair_outcomes(uid: list[str], dup_of: list[str | None], rejected: np.ndarray, copy: np.ndarray) -> dict[str, float | None]:
    """For each injected copy (`copy` rows, `dup_of` = its original's uid): shares of pairs with exactly one of
    the two kept (deduplicated), both kept (missed) and both rejected (over-pruned). Ground truth flags the later
    copy, but a dedup that keeps the copy and drops the original deduplicates just as well: this counts both."""
    pairs = pl.DataFrame({"uid": uid, "dup_of": dup_of, "rejected": np.asarray(rejected, dtype=bool), "copy": np.asarray(copy, dtype=bool)},
                         schema={"uid": pl.Utf8, "dup_of": pl.Utf8, "rejected": pl.Boolean, "copy": pl.Boolean})
    originals = pairs.select(pl.col("uid").alias("dup_of"), pl.col("rejected").alias("original_rejected"))
    joined = pairs.filter(pl.col("copy") & pl.col("dup_of").is_not_null()).join(originals, on="dup_of", how="inner")
    if joined.height == 0:
        return {"one_kept": None, "both_kept": None, "both_rejected": None}
    n_rejected = joined["rejected"].cast(pl.Int8) + joined["original_rejected"].cast(pl.Int8)
    return {"one_kept": float((n_rejected == 1).mean()), "both_kept": float((n_rejected == 0).mean()),
            "both_rejected": float((n_rejected == 2).mean())}


def parse_floats(text: str) -> tuple[float, ...]:
    """'0.5, 0.7' -> (0.5, 0.7); an empty string -> ()."""
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{text!r}: not a comma-separated list of numbers") from None


# -- which rows a filter rejects -----------------------------------------------------------
def own_rejects(flags: pl.DataFrame, selected: Plan, spec: FilterSpec) -> np.ndarray:
    """Rows failing the filter's own clauses (not status, unless status is its only clause) or its top-k cut."""
    names = [c.name for c in selected.clauses if c.name != "status"] or ["status"]
    passes = pl.all_horizontal([pl.col(f"pass_{n}") for n in names])
    if selected.config.fraction is not None:
        passes = passes & (pl.col(selected.config.score) >= pl.col("threshold")).fill_null(False)
    return ~flags.select(passes.alias("p"))["p"].to_numpy()


def dropped_rejects(flags: pl.DataFrame, selected: Plan, spec: FilterSpec) -> np.ndarray:
    """Rows `curate filter` with this config would drop (status included)."""
    return ~flags["keep"].to_numpy()


def _rejects_by_uid(flags: pl.DataFrame, uids: list[str], keep: np.ndarray) -> np.ndarray:
    """Map a keep flag computed in pool order onto the rows of `flags`."""
    keeps = pl.DataFrame({"uid": uids, "_keep": keep})
    joined = flags.select("uid").join(keeps, on="uid", how="left", maintain_order="left")
    return ~joined["_keep"].fill_null(True).to_numpy()


def _pool_sha1(pool: Pool) -> np.ndarray:
    return pool.scan_scores("image_dedup").select(pl.col("image_sha1").fill_null("")).collect().to_series().to_numpy().astype("U40")


def exact_sha1_rejects(flags: pl.DataFrame, selected: Plan, spec: FilterSpec) -> np.ndarray:
    """Only the exact (SHA-1) part of image_dedup: the stage's own pairing, groups and keeper choice on image_sha1 alone."""
    from tierclip.curate.stages.groups import connected_groups, global_uids_and_scores, keep_one_per_group
    from tierclip.curate.stages.image_dedup import exact_pairs

    pool = selected.pool
    sha1 = _pool_sha1(pool)
    uids, scores = global_uids_and_scores(pool, tuple(pool.stages()))
    keep = keep_one_per_group(connected_groups(len(sha1), *exact_pairs(sha1)), uids, scores)
    return _rejects_by_uid(flags, uids, keep)


def image_dedup_at_rejects(flags: pl.DataFrame, selected: Plan, spec: FilterSpec) -> np.ndarray:
    """image_dedup re-grouped at cosine threshold `spec.param` with the stage's own functions (the sidecar keeps its threshold)."""
    from tierclip.curate.stages.embeddings import load_image_embeddings
    from tierclip.curate.stages.groups import connected_groups, global_uids_and_scores, keep_one_per_group
    from tierclip.curate.stages.image_dedup import ImageDedupConfig, exact_pairs, near_pairs

    pool, cfg = selected.pool, ImageDedupConfig(threshold=spec.param)
    sha1 = _pool_sha1(pool)
    near_left, near_right = near_pairs(load_image_embeddings(pool), cfg.threshold, cfg.neighbours)
    same_left, same_right = exact_pairs(sha1)
    group = connected_groups(len(sha1), np.concatenate([near_left, same_left]), np.concatenate([near_right, same_right]))
    uids, scores = global_uids_and_scores(pool, ("clip",))
    return _rejects_by_uid(flags, uids, keep_one_per_group(group, uids, scores))


def semdedup_at_rejects(flags: pl.DataFrame, selected: Plan, spec: FilterSpec) -> np.ndarray:
    """SemDeDup at eps `spec.param` over the cluster stage's clusters, with the stage's own pruning function."""
    from tierclip.curate.stages.cluster import semdedup_keep
    from tierclip.curate.stages.embeddings import load_image_embeddings

    pool = selected.pool
    embeddings = load_image_embeddings(pool)
    clusters = pool.scan_scores("cluster").select("cluster_id", "cluster_dist").collect()
    rows = np.flatnonzero(~np.isnan(embeddings).any(axis=1))
    vectors = embeddings[rows] / np.linalg.norm(embeddings[rows], axis=1, keepdims=True)
    keep = np.ones(len(embeddings), dtype=bool)
    keep[rows] = semdedup_keep(vectors, clusters["cluster_id"].to_numpy()[rows], clusters["cluster_dist"].to_numpy()[rows], spec.param)
    uids = pool.scan_meta().select("uid").collect()["uid"].to_list()
    return _rejects_by_uid(flags, uids, keep)


REJECT_RULES: dict[str, Callable[[pl.DataFrame, Plan, FilterSpec], np.ndarray]] = {
    "own": own_rejects,
    "dropped": dropped_rejects,
    "exact_sha1": exact_sha1_rejects,
    "image_dedup_at": image_dedup_at_rejects,
    "semdedup_at": semdedup_at_rejects,
}
RULE_TEXTS = {
    "exact_sha1": "one row per image_sha1 group kept (image_dedup's keeper: highest clip_score, then smallest uid)",
    "image_dedup_at": "image_dedup's grouping re-run at cosine >= {param:g} (same k-NN search, SHA-1 groups and keeper)",
    "semdedup_at": "SemDeDup re-run on the cluster stage's clusters with eps = {param:g} (drop cosine > {one_minus:g} to a kept point)",
}


@dataclass(frozen=True)
class FilterSpec:
    name: str
    config: FilterConfig
    targets: tuple[str, ...]  # defect names (gt_<name>) the filter is aimed at
    rule: str = "own"  # key of REJECT_RULES
    param: float | None = None  # the rule's threshold (image_dedup_at: cosine; semdedup_at: eps)
    needs: tuple[str, ...] = ()  # columns the rule reads besides the config's (checked, so a missing stage skips the filter)


@dataclass(frozen=True)
class FilterResult:
    spec: FilterSpec
    rule_text: str
    n_rows: int
    n_rejected: int
    precision_any: float | None
    precision_target: float | None
    recall_target: float | None
    recall: dict[str, float | None]  # defect -> share of its rows rejected
    clean_rejected: float | None
    clean_kept: float | None  # share of the kept rows that are clean
    pairs: dict[str, dict[str, float | None]]  # duplicate defect -> pair_outcomes


def scaled_basic_where(min_side: int, with_lang: bool) -> str:
    """DataComp's basic rule with the image-size bound scaled to the pool (SQL over the basic and lang sidecars)."""
    rule = f"caption_words > 2 AND caption_chars > 5 AND image_width >= {min_side} AND image_height >= {min_side} AND aspect_ratio <= 3"
    return f"lang = 'en' AND {rule}" if with_lang else rule


def default_filters(fraction: float = 0.3, min_scores: tuple[float, ...] = (), min_side: int = 16,
                    image_dup_thresholds: tuple[float, ...] = (), semdedup_eps: tuple[float, ...] = ()) -> list[FilterSpec]:
    """Every single filter the selection library offers, the scaled basic rule, two combinations, and the
    dedup rules re-run at other thresholds than their sidecars' (for pools where the default is mis-set)."""
    alignment = ("misaligned", "attribute_swap", "boilerplate")
    dups = ("exact_dup", "near_dup")
    pct = f"{fraction * 100:g}%"
    specs = [
        FilterSpec("status (reader)", FilterConfig(), ("corrupt", "empty_caption")),
        FilterSpec(f"clip top {pct} of pool", FilterConfig(fraction=fraction, fraction_of="pool"), alignment),
        *[FilterSpec(f"clip_score >= {t:g}", FilterConfig(min_score=t), alignment) for t in min_scores],
        FilterSpec("lang == en", FilterConfig(lang="en"), ("non_english",)),
        FilterSpec("text_dedup (dup_keep)", FilterConfig(dedup=("text",)), dups),
        FilterSpec("image_dedup (image_dup_keep)", FilterConfig(dedup=("image",)), dups),
        *[FilterSpec(f"image_dedup at cosine >= {t:g}", FilterConfig(), dups, rule="image_dedup_at", param=t,
                     needs=("image_sha1", "clip_score")) for t in image_dup_thresholds],
        FilterSpec("image exact SHA-1 only", FilterConfig(), ("exact_dup",), rule="exact_sha1", needs=("image_sha1",)),
        FilterSpec("semdedup (semdedup_keep)", FilterConfig(semdedup=True), dups),
        *[FilterSpec(f"semdedup at eps = {e:g}", FilterConfig(), dups, rule="semdedup_at", param=e, needs=("cluster_id",))
          for e in semdedup_eps],
        FilterSpec("cluster_near_ref (DataComp image-based)", FilterConfig(where="cluster_near_ref"), ()),
        FilterSpec("basic (DataComp, side >= 200)", FilterConfig(basic=True), ("tiny", "empty_caption", "boilerplate", "non_english")),
        FilterSpec(f"basic scaled (side >= {min_side})", FilterConfig(where=scaled_basic_where(min_side, True)),
                   ("tiny", "empty_caption", "boilerplate", "non_english")),
        FilterSpec(f"size+caption only (side >= {min_side})", FilterConfig(where=scaled_basic_where(min_side, False)),
                   ("tiny", "empty_caption", "boilerplate")),
        FilterSpec(f"demo tier: top {pct} of usable rows", FilterConfig(fraction=fraction), alignment + ("corrupt", "empty_caption"),
                   rule="dropped"),
        FilterSpec(f"DataComp-style: scaled basic AND top {pct} of the rest",
                   FilterConfig(fraction=fraction, where=scaled_basic_where(min_side, True)), DEFECTS, rule="dropped"),
    ]
    return specs


def defect_names(index: ColumnIndex) -> list[str]:
    """The pool's defect types (its boolean gt_* columns but gt_clean), in the pool's column order."""
    flags = index.gt_flags()
    if CLEAN not in flags:
        raise UserError(f"{index.pool.root}: not a synthetic pool (no boolean {CLEAN} column in meta)")
    return [f.removeprefix("gt_") for f in flags if f != CLEAN]


def _target_mask(flags: pl.DataFrame, targets: tuple[str, ...], defects: list[str]) -> np.ndarray:
    present = [f"gt_{t}" for t in targets if t in defects]
    if not present:
        return np.zeros(flags.height, dtype=bool)
    return flags.select(pl.any_horizontal(present)).to_series().to_numpy()


def _rule_text(spec: FilterSpec, selected: Plan) -> str:
    if spec.rule in RULE_TEXTS:
        return RULE_TEXTS[spec.rule].format(param=spec.param, one_minus=1 - (spec.param or 0))
    text = selected.rule_text()
    own_only = spec.rule == "own" and len(selected.clauses) + (selected.config.fraction is not None) > 1
    return text.removeprefix(f"{selected.clauses[0].text} AND ") if own_only else text


def evaluate_filter(pool: Pool, spec: FilterSpec, defects: list[str]) -> FilterResult:
    """One filter's rejects against the ground truth; raises UserError when a stage it needs is missing."""
    index = ColumnIndex(pool)
    needs = (*spec.needs, *[c for c in (DUP_OF,) if c in index.meta])
    selected = plan(pool, spec.config, extra_columns=needs)
    flags = collect_flags(selected, all_uids=True, extra_columns=needs)
    rejected = REJECT_RULES[spec.rule](flags, selected, spec)
    clean = flags[CLEAN].to_numpy()
    precision_target, recall_target = precision_recall(rejected, _target_mask(flags, spec.targets, defects))
    precision_target = precision_target if spec.targets else None
    pairs = {}
    if DUP_OF in flags.columns:
        pairs = {d: pair_outcomes(flags["uid"].to_list(), flags[DUP_OF].to_list(), rejected, flags[f"gt_{d}"].to_numpy())
                 for d in DUP_DEFECTS if d in defects}
    return FilterResult(
        spec=spec, rule_text=_rule_text(spec, selected), n_rows=flags.height, n_rejected=int(rejected.sum()),
        precision_any=precision_recall(rejected, ~clean)[0], precision_target=precision_target, recall_target=recall_target,
        recall={d: precision_recall(rejected, flags[f"gt_{d}"].to_numpy())[1] for d in defects},
        clean_rejected=precision_recall(rejected, clean)[1], clean_kept=precision_recall(~rejected, clean)[0], pairs=pairs,
    )


def evaluate(pool: Pool, specs: list[FilterSpec]) -> tuple[list[FilterResult], dict[str, str]]:
    """Results of the filters the pool's stages allow, and {filter: why skipped} for the others."""
    defects = defect_names(ColumnIndex(pool))
    results, skipped = [], {}
    for spec in specs:
        try:
            results.append(evaluate_filter(pool, spec, defects))
        except UserError as exc:
            skipped[spec.name] = str(exc)
    return results, skipped


def score_aucs(pool: Pool, score_column: str = "clip_score") -> dict[str, tuple[float | None, int]]:
    """{defect: (ROC-AUC of clean vs that defect, rows of it with a score)} for one score column."""
    index = ColumnIndex(pool)
    defects = defect_names(index)
    selected = plan(pool, FilterConfig(score=score_column, min_score=float("-inf")))
    flags = collect_flags(selected, all_uids=True)
    score = flags[score_column].cast(pl.Float64).fill_null(np.nan).to_numpy()
    clean = flags[CLEAN].to_numpy()
    out = {}
    for defect in defects:
        mask = flags[f"gt_{defect}"].to_numpy()
        out[defect] = (roc_auc(score[clean], score[mask]), int((mask & ~np.isnan(score)).sum()))
    return out


def composition(pool: Pool) -> dict[str, int]:
    """Rows per gt flag (defects and clean) and in total."""
    index = ColumnIndex(pool)
    counts = pool.scan_meta().select([pl.col(f).sum() for f in index.gt_flags()] + [pl.len().alias("rows")]).collect()
    return {name.removeprefix("gt_"): int(value) for name, value in counts.row(0, named=True).items()}


# -- Markdown ------------------------------------------------------------------------
def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _short(defect: str) -> str:
    return defect.replace("_", " ")


def results_table(results: list[FilterResult], defects: list[str]) -> str:
    header = ["filter", "rejects %", "prec. any %", "target", "prec. target %", "rec. target %",
              *[f"rec. {_short(d)} %" for d in defects], "clean rejected %", "clean share of kept %"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for r in results:
        cells = [r.spec.name, _pct(r.n_rejected / r.n_rows if r.n_rows else None), _pct(r.precision_any), _targets(r.spec.targets, defects),
                 _pct(r.precision_target), _pct(r.recall_target), *[_pct(r.recall[d]) for d in defects], _pct(r.clean_rejected),
                 _pct(r.clean_kept)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _targets(targets: tuple[str, ...], defects: list[str]) -> str:
    if not targets:
        return "none"
    return "all" if set(defects) <= set(targets) else ", ".join(_short(t) for t in targets)


def pairs_table(results: list[FilterResult]) -> str:
    """Duplicate pairs (injected copy + its original) per dedup-aimed filter: one kept / both kept / both rejected."""
    kinds = sorted({k for r in results for k in r.pairs}, key=DUP_DEFECTS.index)
    header = ["filter", *[f"{_short(k)}: {o} %" for k in kinds for o in ("one kept", "both kept", "both rejected")]]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for r in results:
        if r.pairs and set(r.spec.targets) & set(DUP_DEFECTS):
            cells = [_pct(r.pairs[k][o]) for k in kinds for o in ("one_kept", "both_kept", "both_rejected")]
            lines.append("| " + " | ".join([r.spec.name, *cells]) + " |")
    return "\n".join(lines)


def _pairs_part(results: list[FilterResult]) -> list[str]:
    if not any(r.pairs and set(r.spec.targets) & set(DUP_DEFECTS) for r in results):
        return []
    return ["Duplicate pairs (an injected copy and its original): the ground truth flags the copy, but keeping the copy "
            "and dropping the original deduplicates as well, so pairs are the fair count for the dedup filters:", "",
            pairs_table(results), ""]


def rules_list(results: list[FilterResult]) -> str:
    dropped = " (rows `curate filter` drops, status included)"
    return "\n".join(f"- **{r.spec.name}**: `{r.rule_text}`" + (dropped if r.spec.rule == "dropped" else "") for r in results)


def auc_table(aucs: dict[str, tuple[float | None, int]], score_column: str = "clip_score") -> str:
    lines = [f"| defect | rows with a {score_column} | ROC-AUC clean vs defect |", "|---|---:|---:|"]
    for defect, (auc, n) in aucs.items():
        lines.append(f"| {_short(defect)} | {n} | {'–' if auc is None else f'{auc:.3f}'} |")
    return "\n".join(lines)


def composition_line(counts: dict[str, int]) -> str:
    parts = [f"{_short(k)} {v}" for k, v in counts.items() if k not in ("rows",)]
    return f"{counts['rows']} rows: " + ", ".join(parts)


def report(pool: Pool, specs: list[FilterSpec], score_column: str = "clip_score") -> str:
    """The Markdown body: composition, the filter matrix, each filter's rule, skipped filters, score AUCs."""
    results, skipped = evaluate(pool, specs)
    defects = defect_names(ColumnIndex(pool))
    parts = [f"Pool `{pool.root}` — {composition_line(composition(pool))}.", "",
             "Rejects of each filter (its own clauses; the two combinations count what `curate filter` drops). "
             "Precision = rejected∧defect / rejected, recall = rejected∧defect / defect; 'any' = any defect, "
             "'target' = the defects the filter is aimed at. All numbers in %.", "",
             results_table(results, defects), "",
             *_pairs_part(results), "Rules:", "", rules_list(results)]
    if skipped:
        parts += ["", "Skipped (stage not run):", "", *[f"- {name}: {why}" for name, why in skipped.items()]]
    try:
        parts += ["", f"Separation by `{score_column}`:", "", auc_table(score_aucs(pool, score_column), score_column)]
    except UserError as exc:
        parts += ["", f"No {score_column} AUCs: {exc}"]
    return "\n".join(parts) + "\n"
