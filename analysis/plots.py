"""Figures of a study (matplotlib, Agg backend). Each function draws what `analysis.study.Study` holds and
writes one file, or returns None when the figure would carry no information; nothing here fits. Accuracy is
1 - the fitted error.

What is left undrawn (analysis/degenerate.py has the rules) is said in words by `figure_notes`, which the report
prints under the figure: panels with one point per tier and no drawable fit, fits at a bound of their parameters,
95 % intervals that leave [0, 1], figures with nothing to compare. Every text from run folders (tier, method,
model names) is drawn literally: mathtext is off, so a `$...$` in a folder name is just characters."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import polars as pl
from tierclip.analysis.collect import SHARE_PREFIX
from tierclip.analysis.degenerate import interval_problem
from tierclip.analysis.study import GroupFit, Study
from tierclip.analysis.tables import metric_title

FORMATS = ("png", "svg", "pdf")
FIGURES = {  # file stem -> what it shows (the report's figure captions)
    "acc_vs_samples": "Accuracy vs unique samples per tier (points: runs; lines: saturating power-law fits; bands: bootstrap intervals)",
    "acc_vs_compute": "Accuracy vs training compute per method and tier (colour: method x tier; marker: tier)",
    "acc_vs_samples_seen": "Repetition-aware fits (Goyal et al.): predicted accuracy vs samples seen, each tier at its full size",
    "best_tier": "Best tier for each budget (each tier at its best subset size; the winner is starred)",
    "methods": "Method comparison at equal samples seen",
    "data_cards": "Data cards: share of each ground-truth defect type per tier",
    "architectures": "Accuracy vs unique samples per architecture at a fixed samples-seen budget (best model per data size starred)",
    "families": "ConvNet vs ViT per method at one shared setting",
    "text_depth": "Text-encoder depth: accuracy (left) and training cost (right) per depth",
}
ERROR_NOTE = "thick whisker: ± sd over seeds; thin: 95 % interval; none: one seed, or an interval too wide to draw"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # text.parse_math off: names from run folders are drawn as written ("$x_$" would crash mathtext)
    plt.rcParams.update({"figure.dpi": 110, "font.size": 10, "axes.grid": True, "grid.alpha": 0.3, "text.parse_math": False})
    return plt


def _literal(text) -> str:
    """A legend label drawn as written: matplotlib hides labels that start with "_", so those get a hair space."""
    text = str(text)
    return "\u200a" + text if text.startswith("_") else text


def tier_colors(tiers: list[str]) -> dict[str, tuple]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    return {tier: cmap(i % 10) for i, tier in enumerate(tiers)}


def _tiers_by_size(study: Study) -> list[str]:
    sizes = study.points.group_by("tier").agg(pl.col("subset_size").max()).sort(["subset_size", "tier"])
    return [str(t) for t in sizes["tier"]]


def _metric_label(study: Study) -> str:
    """The y-axis label, wrapped: a retrieval metric's name is longer than the axis."""
    return textwrap.fill(f"{metric_title(study.task, study.metric)} (0–1)", 40)


def _chance(ax, study: Study) -> None:
    """Random chance (dotted) and, for a zero-shot metric whose eval set gives it, the majority class (dash-dot)."""
    if study.random_score is not None:
        ax.axhline(study.random_score, color="grey", linestyle=":", linewidth=1.2, label=f"random chance ({study.random_score:.3g})")
    if study.majority_score is not None:
        ax.axhline(study.majority_score, color="grey", linestyle="-.", linewidth=1.0,
                   label=f"majority class ({study.majority_score:.3g})")


def _save(fig, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    _pyplot().close(fig)
    return out


def _legend_below(fig, ax) -> None:
    """One legend under the panels, so it never covers a bar."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(4, max(1, len(labels))), fontsize=8)


def _draw_fit(ax, group_fit: GroupFit, color, label: str) -> None:
    """The fitted curve and its bootstrap band, both clipped to accuracies that can exist (0 to 1)."""
    model = group_fit.model
    lo, hi = model.x_range
    xs = np.geomspace(lo / 1.3, hi * 1.3, 120)
    ax.plot(xs, np.clip(1 - model.predict(xs), 0, 1), color=color, linewidth=1.8, label=label)
    band_lo, band_hi = model.band(xs)
    if np.all(np.isfinite(band_lo)):
        ax.fill_between(xs, np.clip(1 - band_hi, 0, 1), np.clip(1 - band_lo, 0, 1), color=color, alpha=0.15, linewidth=0)


def _frame_points(ax, values, study: Study, subs=(1.0, 2.0, 5.0)) -> None:
    """Y limits from the runs and the chance lines, not from a wide bootstrap band or an extrapolated curve; readable
    log-x ticks in plain numbers (matplotlib's default log labels are mathtext, which is off here)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    baselines = [v for v in (study.random_score, study.majority_score) if v is not None]
    shown = [float(v) for v in values if v is not None] + baselines
    if shown:
        span = max(max(shown) - min(shown), 0.05)
        ax.set_ylim(max(0.0, min(shown) - 0.25 * span), min(1.0, max(shown) + 0.25 * span))
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _scatter_runs(ax, points: pl.DataFrame, x: str, color, marker="o", label=None) -> None:
    ax.scatter(points[x].to_numpy(), points["value"].to_numpy(), color=color, marker=marker, s=22, alpha=0.75,
               edgecolor="white", linewidth=0.5, label=_literal(label) if label is not None else None, zorder=3)


def _errorbars(ax, xs, rows: list[dict], color="black") -> None:
    """± sd (thick, capped) and the 95 % t-interval (thin) of seed means; nothing for one-seed points, and no thin
    whisker for an interval that leaves [0, 1] (the tables say so in words)."""
    for x, row in zip(xs, rows, strict=True):
        if row.get("std") is None or row.get("ci_lo") is None:
            continue
        ax.errorbar([x], [row["mean"]], yerr=[[row["std"]], [row["std"]]], fmt="none", ecolor=color, elinewidth=2.2,
                    capsize=3, zorder=4)
        if wide_interval(row) is None:
            ax.errorbar([x], [row["mean"]], yerr=[[row["mean"] - row["ci_lo"]], [row["ci_hi"] - row["mean"]]], fmt="none",
                        ecolor=color, elinewidth=0.8, capsize=0, zorder=4)


def wide_interval(row: dict) -> str | None:
    """Why a seed mean's 95 % interval is not drawn (it leaves [0, 1]), or None."""
    return interval_problem((row["ci_lo"], row["ci_hi"])) if row.get("ci_lo") is not None else None


def _top(row: dict) -> float:
    """The top of a bar's sd whisker (its mean with one seed): where a winner's star goes."""
    return row["mean"] + (row["std"] if row.get("std") is not None else 0.0)


def sample_panels(study: Study) -> tuple[list[tuple[str, int]], list[str]]:
    """(method, budget) panels of the samples figure that carry information (a drawable fit, or runs at >= 2 unique
    sample counts), and a sentence for each panel left out."""
    drawable = {(f.method, f.budget) for f in study.sample_fits if f.drawable}
    shown, notes = [], []
    for method, budget in study.points.select("method", "samples_seen").unique().sort(["method", "samples_seen"]).rows():
        panel = study.points.filter((pl.col("method") == method) & (pl.col("samples_seen") == budget))
        if (method, budget) in drawable or panel["unique_samples"].n_unique() >= 2:
            shown.append((method, budget))
        else:
            notes.append(f"{method} at {int(budget):,} samples seen: not drawn, every tier has runs at one data size only "
                         f"({', '.join(f'{int(v):,}' for v in sorted(panel['unique_samples'].unique().to_list()))} unique "
                         "samples): see the best-tier table")
    return shown, notes


def _fit_label(tier: str, group_fit: GroupFit | None) -> tuple[str, bool]:
    """(legend label, whether to draw the curve) for a tier's runs in a fit panel."""
    if group_fit is None or group_fit.model is None:
        return f"{tier} (no fit: too few points)", False
    if not group_fit.drawable:
        return f"{tier} (fit not drawn: at a bound, see the fit table)", False
    return f"{tier} (α={group_fit.model.alpha:.2f})", True


def plot_acc_vs_samples(study: Study, out: Path) -> Path | None:
    """One panel per method and samples-seen budget that carries information: runs and power-law fits of each tier."""
    panels, _ = sample_panels(study)
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), sharey=True, squeeze=False)
    colors = tier_colors(_tiers_by_size(study))
    fits = {(f.tier, f.method, f.budget): f for f in study.sample_fits}
    for ax, (method, budget) in zip(axes[0], panels, strict=True):
        panel = study.points.filter((pl.col("method") == method) & (pl.col("samples_seen") == budget))
        for tier, color in colors.items():
            runs = panel.filter(pl.col("tier") == tier)
            if runs.is_empty():
                continue
            group_fit = fits.get((tier, method, budget))
            label, draw = _fit_label(tier, group_fit)
            _scatter_runs(ax, runs, "unique_samples", color, label=None if draw else label)
            if draw:
                _draw_fit(ax, group_fit, color, _literal(label))
        _chance(ax, study)
        ax.set_xscale("log")
        _frame_points(ax, study.points["value"].to_list(), study)
        ax.set_title(_literal(f"{method}, {int(budget):,} samples seen"))
        ax.set_xlabel("unique samples in the training subset (log scale)")
        ax.legend(fontsize=8, loc="best")
    axes[0][0].set_ylabel(_metric_label(study))
    fig.suptitle(textwrap.fill(f"{metric_title(study.task, study.metric)} vs unique samples, per tier", 90), fontweight="bold")
    return _save(fig, out)


def plot_acc_vs_compute(study: Study, out: Path) -> Path | None:
    """Runs per method (colour) and tier (marker) against GFLOPs; drawable compute fits. None with one compute value."""
    if study.points["gflops"].drop_nulls().n_unique() < 2:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    methods = sorted(study.points["method"].unique().to_list())
    cmap = plt.get_cmap("tab10")
    markers = dict(zip(_tiers_by_size(study), "osD^vP*X<>", strict=False))
    fitted = [f for f in study.compute_fits if f.drawable]
    for i, method in enumerate(methods):
        runs = study.points.filter(pl.col("method") == method)
        for j, (tier, marker) in enumerate(markers.items()):
            color = cmap((i * len(markers) + j) % 10)  # one colour per method x tier: fits and their runs match
            tier_runs = runs.filter(pl.col("tier") == tier)
            if not tier_runs.is_empty():
                _scatter_runs(ax, tier_runs, "gflops", color, marker, label=f"{method} · {tier}")
            for group_fit in (f for f in fitted if (f.tier, f.method) == (tier, method)):
                _draw_fit(ax, group_fit, color, _literal(f"{method} · {tier} fit (subset {group_fit.subset_size:,})"))
    _chance(ax, study)
    ax.set_xscale("log")
    _frame_points(ax, study.points["value"].to_list(), study)
    ax.set_xlabel("training compute (GFLOPs, forward + backward, log scale)")
    ax.set_ylabel(_metric_label(study))
    ax.set_title(textwrap.fill(f"{metric_title(study.task, study.metric)} vs compute, per method", 70), fontweight="bold")
    ax.legend(fontsize=7, ncol=2, loc="best")
    return _save(fig, out)


def plot_repetition(study: Study, out: Path) -> Path | None:
    """Each drawable tier fit's predicted accuracy vs samples seen at its full size, with observed runs; one panel per
    method that has a drawable fit (None when no method has one)."""
    methods = sorted({f.method for f in study.repetition_fits if f.drawable})
    if not methods:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(methods), figsize=(5.4 * len(methods), 4.2), sharey=True, squeeze=False)
    colors = tier_colors(_tiers_by_size(study))
    sizes = dict(study.points.group_by("tier").agg(pl.col("subset_size").max()).iter_rows())
    seen = study.points["samples_seen"].drop_nulls()
    xs = np.geomspace(max(1.0, float(seen.min()) / 10), float(seen.max()) * 100, 200)
    for ax, method in zip(axes[0], methods, strict=True):
        for group_fit in (f for f in study.repetition_fits if f.method == method):
            color = colors.get(group_fit.tier, "black")
            runs = study.points.filter((pl.col("method") == method) & (pl.col("tier") == group_fit.tier)
                                       & (pl.col("subset_size") == sizes[group_fit.tier]))
            _scatter_runs(ax, runs, "samples_seen", color)
            if not group_fit.drawable:
                why = "no fit" if group_fit.model is None else "fit not drawn (at a bound)"
                ax.plot([], [], color=color, linestyle="none", marker="o", label=_literal(f"{group_fit.tier}: {why}"))
                continue
            model, size = group_fit.model, sizes[group_fit.tier]
            ax.plot(xs, np.clip(1 - model.predict(xs, size), 0, 1), color=color, linewidth=1.8,
                    label=_literal(f"{group_fit.tier} ({int(size):,} unique, τ={model.tau:.2g})"))
            ax.axvline(size, color=color, linewidth=0.6, linestyle="--", alpha=0.6)
        crossings = [row.result.x for row in study.crossovers
                     if row.method == method and row.kind.startswith("samples seen") and row.result.x is not None]
        for i, x in enumerate(crossings):
            ax.axvline(x, color="black", linewidth=1, alpha=0.45, label="crossover (see fit table)" if i == 0 else None)
        _chance(ax, study)
        ax.set_xlim(xs[0], xs[-1])  # a positive range even when no run of this method is at a tier's full size
        ax.set_xscale("log")
        _frame_points(ax, study.points["value"].to_list(), study, subs=(1.0,))
        ax.set_xlabel("samples seen (log scale; dashed: one epoch of the tier)")
        ax.set_title(_literal(f"{method}: repetition-aware law"))
        ax.legend(fontsize=8, loc="best")
    axes[0][0].set_ylabel(_metric_label(study))
    fig.suptitle("Predicted accuracy when training longer on each tier", fontweight="bold")
    return _save(fig, out)


def best_panels(study: Study) -> list[str]:
    """Methods whose best-tier panel compares something: some budget with >= 2 tiers reported."""
    counts = study.best.group_by(["method", "samples_seen"]).agg(k=pl.col("tier").n_unique()).filter(pl.col("k") >= 2)
    return sorted(set(counts["method"].to_list()))


def plot_best_tier(study: Study, out: Path) -> Path | None:
    """Grouped bars per budget (one panel per method with >= 2 tiers to compare): each tier at its best size (chosen
    without the runs shown: analysis.selection), winner starred."""
    methods = best_panels(study)
    if not methods:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(methods), figsize=(5.2 * len(methods), 4.2), sharey=True, squeeze=False)
    tiers = _tiers_by_size(study)
    colors, width = tier_colors(tiers), 0.8 / max(1, len(tiers))
    for ax, method in zip(axes[0], methods, strict=True):
        rows = study.best.filter(pl.col("method") == method)
        budgets = sorted(rows["samples_seen"].unique().to_list())
        for j, tier in enumerate(tiers):
            for i, budget in enumerate(budgets):
                row = rows.filter((pl.col("tier") == tier) & (pl.col("samples_seen") == budget))
                if row.is_empty():
                    continue
                r = row.row(0, named=True)
                x = i + (j - (len(tiers) - 1) / 2) * width
                ax.bar(x, r["mean"], width, color=colors[tier], label=_literal(tier) if i == 0 else None)
                _errorbars(ax, [x], [r])
                if r["rank"] == 1:
                    ax.text(x, _top(r) + 0.01, "★", ha="center", fontsize=12)
        _chance(ax, study)
        ax.set_xticks(range(len(budgets)), [f"{int(b):,}" for b in budgets])
        ax.set_xlabel("budget: samples seen")
        ax.set_title(_literal(method))
    axes[0][0].set_ylabel(_metric_label(study) + ", mean over seeds")
    _legend_below(fig, axes[0][0])
    fig.suptitle(f"Best tier for each budget ({ERROR_NOTE})", fontweight="bold", fontsize=10)
    return _save(fig, out)


def plot_methods(study: Study, out: Path) -> Path | None:
    """Bars per tier, one per method, at the shared samples-seen budget (compute per method in the legend); None
    with fewer than two methods to compare."""
    table = study.methods
    if table.is_empty() or table["method"].n_unique() < 2:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    tiers = [t for t in _tiers_by_size(study) if t in set(table["tier"].to_list())]
    methods = sorted(table["method"].unique().to_list())
    cmap, width = plt.get_cmap("Dark2"), 0.8 / len(methods)
    for j, method in enumerate(methods):
        rows = table.filter(pl.col("method") == method)
        gflops = rows["gflops"].mean()
        xs, shown = [], []
        for i, tier in enumerate(tiers):
            row = rows.filter(pl.col("tier") == tier)
            if not row.is_empty():
                xs.append(i + (j - (len(methods) - 1) / 2) * width)
                shown.append(row.row(0, named=True))
        label = _literal(f"{method} ({gflops:,.0f} GFLOPs)" if gflops is not None else method)
        ax.bar(xs, [r["mean"] for r in shown], width, color=cmap(j % 8), label=label)
        _errorbars(ax, xs, shown)
    _chance(ax, study)
    ax.set_xticks(range(len(tiers)), tiers)
    ax.set_xlabel(f"tier (subset size: the largest all methods share); {ERROR_NOTE}")
    ax.set_ylabel(_metric_label(study) + ", mean over seeds")
    ax.set_title(f"Methods at equal samples seen ({study.methods_budget:,})", fontweight="bold")
    _legend_below(fig, ax)
    return _save(fig, out)


def plot_data_cards(study: Study, out: Path) -> Path | None:
    """Stacked horizontal bars: share of each gt defect type (and clean) in each tier; None without ground truth."""
    cards = study.cards
    shares = [c for c in cards.columns if c.startswith(SHARE_PREFIX)]
    if not shares:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 0.6 * max(2, cards.height) + 1.6))
    palette = ["#d62728", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000"]
    left = np.zeros(cards.height)
    ordered = sorted(shares, key=lambda c: (c != SHARE_PREFIX + "gt_clean", c))
    defects = iter(palette * 3)
    for column in ordered:
        values = cards[column].fill_null(0.0).to_numpy()
        ax.barh(range(cards.height), values, left=left, color="#4caf50" if column.endswith("gt_clean") else next(defects),
                label=column.removeprefix(SHARE_PREFIX).removeprefix("gt_"))
        left += values
    labels = [_literal(f"{t} (n={int(n):,})" if n is not None else t) for t, n in cards.select("tier", "subset_size").iter_rows()]
    for row, total in enumerate(left):
        if total == 0:
            ax.text(0.01, row, "no ground-truth shares recorded", va="center", fontsize=8, color="grey")
    ax.set_yticks(range(cards.height), labels)
    ax.set_xlabel("share of the tier's samples (flags may overlap)")
    ax.set_title("Data cards: ground-truth composition of each tier", fontweight="bold")
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    return _save(fig, out)


def _model_styles(rows: pl.DataFrame) -> dict[str, dict]:
    """Colour per model (ordered by family, then parameters), solid lines for ConvNets, dashed for ViTs."""
    plt = _pyplot()
    ordered = rows.group_by("model").agg(pl.col("model_family").first(), pl.col("params").first()).sort(
        ["model_family", "params", "model"], nulls_last=True)
    cmap = plt.get_cmap("tab10")
    return {str(m): {"color": cmap(i % 10), "linestyle": "--" if fam == "vit" else "-", "family": fam}
            for i, (m, fam, _) in enumerate(ordered.iter_rows())}


def plot_architectures(study: Study, out: Path) -> Path:
    """One panel per (tier, method, budget): mean accuracy vs unique samples per model; best model starred."""
    plt = _pyplot()
    rows = study.architecture.rows
    panels = rows.select("tier", "method", "samples_seen").unique(maintain_order=True).rows()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.4), sharey=True, squeeze=False)
    styles = _model_styles(rows)
    for ax, (tier, method, budget) in zip(axes[0], panels, strict=True):
        panel = rows.filter((pl.col("tier") == tier) & (pl.col("method") == method) & (pl.col("samples_seen") == budget))
        for model, style in styles.items():
            series = panel.filter(pl.col("model") == model).sort("unique_samples")
            if series.is_empty():
                continue
            shown = list(series.iter_rows(named=True))
            xs = [r["unique_samples"] for r in shown]
            params = shown[0]["params"]
            label = f"{model} ({style['family']}, {params / 1e6:.2f} M)" if params else f"{model} ({style['family']})"
            ax.plot(xs, [r["mean"] for r in shown], marker="o", color=style["color"], linestyle=style["linestyle"],
                    label=_literal(label))
            _errorbars(ax, xs, shown, style["color"])
            for r in shown:
                if r["rank"] == 1:
                    ax.annotate("★", (r["unique_samples"], r["mean"]), xytext=(0, 7), textcoords="offset points",
                                ha="center", fontsize=14, color=style["color"])
        _chance(ax, study)
        ax.set_xscale("log")
        _frame_points(ax, rows["mean"].to_list(), study)  # the panels share y: frame every panel's means
        ax.set_title(f"{tier}, {method}, {int(budget):,} samples seen", fontsize=10)
        ax.set_xlabel("unique samples (log scale)")
        ax.legend(fontsize=7, loc="best")
    axes[0][0].set_ylabel(_metric_label(study) + ", mean over seeds")
    fig.suptitle(f"Which architecture for which data size (★ best per size; {ERROR_NOTE})", fontweight="bold", fontsize=10)
    return _save(fig, out)


def plot_families(study: Study, out: Path) -> Path:
    """Grouped bars: methods on x, one bar per model (hatched for ViTs)."""
    plt = _pyplot()
    rows = study.families.rows
    methods = sorted(rows["method"].unique().to_list())
    styles = _model_styles(rows)
    width = 0.8 / max(1, len(styles))
    fig, ax = plt.subplots(figsize=(max(6.5, 1.6 * len(methods) * max(1, len(styles)) / 2), 4.4))
    for j, (model, style) in enumerate(styles.items()):
        xs, shown = [], []
        for i, method in enumerate(methods):
            row = rows.filter((pl.col("method") == method) & (pl.col("model") == model))
            if not row.is_empty():
                xs.append(i + (j - (len(styles) - 1) / 2) * width)
                shown.append(row.row(0, named=True))
        ax.bar(xs, [r["mean"] for r in shown], width, color=style["color"], hatch="//" if style["family"] == "vit" else None,
               edgecolor="white", label=_literal(f"{model} ({style['family']})"))
        _errorbars(ax, xs, shown)
    _chance(ax, study)
    ax.set_xticks(range(len(methods)), methods)
    ax.set_xlabel(f"method ({study.families.setting}); {ERROR_NOTE}", fontsize=8)
    ax.set_ylabel(_metric_label(study) + ", mean over seeds")
    ax.set_title("ConvNet vs ViT per method", fontweight="bold")
    _legend_below(fig, ax)
    return _save(fig, out)


def plot_text_depth(study: Study, out: Path) -> Path:
    """Left: accuracy per text depth; right: GFLOPs per sample and measured samples/s per depth."""
    plt = _pyplot()
    rows = list(study.depth.rows.sort("text_depth").iter_rows(named=True))
    depths = [r["text_depth"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.2))
    left.plot(depths, [r["mean"] for r in rows], marker="o", color="#1f77b4")
    _errorbars(left, depths, rows, "#1f77b4")
    _chance(left, study)
    left.set_xlabel("text-encoder layers")
    left.set_ylabel(_metric_label(study))
    left.set_title(f"accuracy ({ERROR_NOTE})", fontsize=8)
    right.plot(depths, [r["gflops_per_sample"] for r in rows], marker="s", color="#d62728", label="GFLOPs per sample")
    right.set_xlabel("text-encoder layers")
    right.set_ylabel("GFLOPs per sample (forward + backward)", color="#d62728")
    speed = [r.get("samples_per_s") for r in rows]
    if any(v is not None for v in speed):
        twin = right.twinx()
        twin.plot(depths, [v if v is not None else np.nan for v in speed], marker="^", color="#2ca02c", label="samples/s")
        twin.set_ylabel("measured training samples/s (mean over seeds)", color="#2ca02c")
    right.set_title("training cost", fontsize=9)
    for ax in (left, right):
        ax.set_xticks(depths)
    fig.suptitle(f"Text-encoder depth ({study.depth.setting})", fontweight="bold", fontsize=10)
    return _save(fig, out)


AXIS_PLOTTERS = {  # drawn only when the study holds the axis (its table is not None)
    "architectures": ("architecture", plot_architectures),
    "families": ("families", plot_families),
    "text_depth": ("depth", plot_text_depth),
}

PLOTTERS = {
    "acc_vs_samples": plot_acc_vs_samples,
    "acc_vs_compute": plot_acc_vs_compute,
    "acc_vs_samples_seen": plot_repetition,
    "best_tier": plot_best_tier,
    "methods": plot_methods,
    "data_cards": plot_data_cards,
}


def figure_notes(study: Study) -> dict[str, list[str]]:
    """Per figure: what is not drawn and why, in words (the report prints them under the figure, or in its place)."""
    _, panel_notes = sample_panels(study)
    notes = {"acc_vs_samples": panel_notes + _fit_notes(study.sample_fits),
             "acc_vs_compute": _fit_notes(study.compute_fits),
             "acc_vs_samples_seen": _fit_notes(study.repetition_fits)}
    if study.points["gflops"].drop_nulls().n_unique() < 2:
        notes["acc_vs_compute"].insert(0, "Not drawn: every run has the same training compute, so there is no compute axis.")
    if not any(f.drawable for f in study.repetition_fits):
        notes["acc_vs_samples_seen"].insert(0, "Not drawn: no tier has a repetition-law fit that can be drawn (see the fit table).")
    if not best_panels(study):
        notes["best_tier"] = ["Not drawn: no budget has two tiers to compare (see the table)."]
    if study.methods.is_empty() or study.methods["method"].n_unique() < 2:
        notes["methods"] = ["Not drawn: fewer than two methods share a samples-seen budget."]
    if not any(c.startswith(SHARE_PREFIX) for c in study.cards.columns):
        notes["data_cards"] = ["No ground-truth shares recorded for these tiers (the table lists their rules)."]
    return {name: lines for name, lines in notes.items() if lines}


def _fit_notes(fits: list[GroupFit]) -> list[str]:
    where = (lambda f: f" at {f.budget:,} samples seen" if f.budget else f" at subset size {f.subset_size:,}" if f.subset_size else "")  # noqa: E731
    return [f"{f.tier} · {f.method}{where(f)}: curve not drawn, {f.problem}" for f in fits if f.model is not None and f.problem]


def draw_all(study: Study, out_dir: Path, fmt: str = "png") -> dict[str, Path]:
    """Every figure of the study that carries information, as OUT_DIR/<name>.<fmt>."""
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    figures = {name: plotter(study, Path(out_dir) / f"{name}.{fmt}") for name, plotter in PLOTTERS.items()}
    for name, (attribute, plotter) in AXIS_PLOTTERS.items():
        if getattr(study, attribute) is not None:
            figures[name] = plotter(study, Path(out_dir) / f"{name}.{fmt}")
    return {name: path for name, path in figures.items() if path is not None}
