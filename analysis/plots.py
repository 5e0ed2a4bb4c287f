"""Figures of a study (matplotlib, Agg backend). Each function draws what `analysis.study.Study` holds and
writes one file; nothing here fits. Accuracy is 1 - the fitted error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from tierclip.analysis.collect import SHARE_PREFIX
from tierclip.analysis.study import GroupFit, Study

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
ERROR_NOTE = "thick whisker: ± sd over seeds; thin: 95 % interval; no whisker: one seed"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "font.size": 10, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def tier_colors(tiers: list[str]) -> dict[str, tuple]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    return {tier: cmap(i % 10) for i, tier in enumerate(tiers)}


def _tiers_by_size(study: Study) -> list[str]:
    sizes = study.points.group_by("tier").agg(pl.col("subset_size").max()).sort(["subset_size", "tier"])
    return [str(t) for t in sizes["tier"]]


def _metric_label(study: Study) -> str:
    return f"{study.task} {study.metric} (fraction correct, 0–1)"


def _chance(ax, study: Study) -> None:
    if study.random_score is not None:
        ax.axhline(study.random_score, color="grey", linestyle=":", linewidth=1.2, label=f"random chance ({study.random_score:.3g})")


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


def _frame_points(ax, values, study: Study) -> None:
    """Y limits from the runs and the chance line, not from a wide bootstrap band; readable log-x ticks."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    shown = [float(v) for v in values if v is not None] + ([study.random_score] if study.random_score is not None else [])
    if shown:
        span = max(max(shown) - min(shown), 0.05)
        ax.set_ylim(max(0.0, min(shown) - 0.25 * span), min(1.0, max(shown) + 0.25 * span))
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _scatter_runs(ax, points: pl.DataFrame, x: str, color, marker="o", label=None) -> None:
    ax.scatter(points[x].to_numpy(), points["value"].to_numpy(), color=color, marker=marker, s=22, alpha=0.75,
               edgecolor="white", linewidth=0.5, label=label, zorder=3)


def _errorbars(ax, xs, rows: list[dict], color="black") -> None:
    """± sd (thick, capped) and the 95 % t-interval (thin) of seed means; nothing for one-seed points."""
    for x, row in zip(xs, rows, strict=True):
        if row.get("std") is None or row.get("ci_lo") is None:
            continue
        ax.errorbar([x], [row["mean"]], yerr=[[row["std"]], [row["std"]]], fmt="none", ecolor=color, elinewidth=2.2,
                    capsize=3, zorder=4)
        ax.errorbar([x], [row["mean"]], yerr=[[row["mean"] - row["ci_lo"]], [row["ci_hi"] - row["mean"]]], fmt="none",
                    ecolor=color, elinewidth=0.8, capsize=0, zorder=4)


def _top(row: dict) -> float:
    """The top of a bar's sd whisker (its mean with one seed): where a winner's star goes."""
    return row["mean"] + (row["std"] if row.get("std") is not None else 0.0)


def plot_acc_vs_samples(study: Study, out: Path) -> Path:
    """One panel per method and samples-seen budget: runs and power-law fits of each tier, log x."""
    plt = _pyplot()
    panels = study.points.select("method", "samples_seen").unique().sort(["method", "samples_seen"]).rows()
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
            if group_fit is not None and group_fit.model is not None:
                _scatter_runs(ax, runs, "unique_samples", color)
                _draw_fit(ax, group_fit, color, f"{tier} (α={group_fit.model.alpha:.2f})")
            else:
                _scatter_runs(ax, runs, "unique_samples", color, label=f"{tier} (no fit: too few points)")
        _chance(ax, study)
        ax.set_xscale("log")
        _frame_points(ax, study.points["value"].to_list(), study)
        ax.set_title(f"{method}, {int(budget):,} samples seen")
        ax.set_xlabel("unique samples in the training subset (log scale)")
        ax.legend(fontsize=8, loc="best")
    axes[0][0].set_ylabel(_metric_label(study))
    fig.suptitle(f"Zero-shot {study.task} {study.metric} vs unique samples, per tier", fontweight="bold")
    return _save(fig, out)


def plot_acc_vs_compute(study: Study, out: Path) -> Path:
    """Runs per method (colour) and tier (marker) against GFLOPs; compute fits where the data allowed one."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    methods = sorted(study.points["method"].unique().to_list())
    cmap = plt.get_cmap("tab10")
    markers = dict(zip(_tiers_by_size(study), "osD^vP*X<>", strict=False))
    fitted = [f for f in study.compute_fits if f.model is not None]
    for i, method in enumerate(methods):
        runs = study.points.filter(pl.col("method") == method)
        for j, (tier, marker) in enumerate(markers.items()):
            color = cmap((i * len(markers) + j) % 10)  # one colour per method x tier: fits and their runs match
            tier_runs = runs.filter(pl.col("tier") == tier)
            if not tier_runs.is_empty():
                _scatter_runs(ax, tier_runs, "gflops", color, marker, label=f"{method} · {tier}")
            for group_fit in (f for f in fitted if (f.tier, f.method) == (tier, method)):
                _draw_fit(ax, group_fit, color, f"{method} · {tier} fit (subset {group_fit.subset_size:,})")
    _chance(ax, study)
    ax.set_xscale("log")
    _frame_points(ax, study.points["value"].to_list(), study)
    ax.set_xlabel("training compute (GFLOPs, forward + backward, log scale)")
    ax.set_ylabel(_metric_label(study))
    ax.set_title(f"Zero-shot {study.task} {study.metric} vs compute, per method", fontweight="bold")
    ax.legend(fontsize=7, ncol=2, loc="best")
    return _save(fig, out)


def plot_repetition(study: Study, out: Path) -> Path:
    """Each fitted tier's predicted accuracy vs samples seen at its full size, with observed runs."""
    plt = _pyplot()
    methods = sorted({f.method for f in study.repetition_fits})
    fig, axes = plt.subplots(1, max(1, len(methods)), figsize=(5.4 * max(1, len(methods)), 4.2), sharey=True, squeeze=False)
    colors = tier_colors(_tiers_by_size(study))
    sizes = dict(study.points.group_by("tier").agg(pl.col("subset_size").max()).iter_rows())
    seen = study.points["samples_seen"].drop_nulls()
    xs = np.geomspace(max(1.0, float(seen.min()) / 10), float(seen.max()) * 100, 200) if seen.len() else np.geomspace(1, 10, 5)
    for ax, method in zip(axes[0], methods, strict=False):
        for group_fit in (f for f in study.repetition_fits if f.method == method):
            color = colors.get(group_fit.tier, "black")
            runs = study.points.filter((pl.col("method") == method) & (pl.col("tier") == group_fit.tier)
                                       & (pl.col("subset_size") == sizes[group_fit.tier]))
            _scatter_runs(ax, runs, "samples_seen", color)
            if group_fit.model is None:
                ax.plot([], [], color=color, linestyle="none", marker="o", label=f"{group_fit.tier}: no fit")
                continue
            model, size = group_fit.model, sizes[group_fit.tier]
            ax.plot(xs, 1 - model.predict(xs, size), color=color, linewidth=1.8,
                    label=f"{group_fit.tier} ({int(size):,} unique, τ={model.tau:.2g})")
            ax.axvline(size, color=color, linewidth=0.6, linestyle="--", alpha=0.6)
        crossings = [row.result.x for row in study.crossovers
                     if row.method == method and row.kind.startswith("samples seen") and row.result.x is not None]
        for i, x in enumerate(crossings):
            ax.axvline(x, color="black", linewidth=1, alpha=0.45, label="crossover (see fit table)" if i == 0 else None)
        _chance(ax, study)
        ax.set_xlim(xs[0], xs[-1])  # a positive range even when no run of this method is at a tier's full size
        ax.set_xscale("log")
        ax.set_xlabel("samples seen (log scale; dashed: one epoch of the tier)")
        ax.set_title(f"{method}: repetition-aware law")
        ax.legend(fontsize=8, loc="best")
    axes[0][0].set_ylabel(_metric_label(study))
    fig.suptitle("Predicted accuracy when training longer on each tier", fontweight="bold")
    return _save(fig, out)


def plot_best_tier(study: Study, out: Path) -> Path:
    """Grouped bars per budget (one panel per method): each tier at its best size, winner starred."""
    plt = _pyplot()
    methods = sorted(study.best["method"].unique().to_list())
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
                ax.bar(x, r["mean"], width, color=colors[tier], label=tier if i == 0 else None)
                _errorbars(ax, [x], [r])
                if r["rank"] == 1:
                    ax.text(x, _top(r) + 0.01, "★", ha="center", fontsize=12)
        _chance(ax, study)
        ax.set_xticks(range(len(budgets)), [f"{int(b):,}" for b in budgets])
        ax.set_xlabel("budget: samples seen")
        ax.set_title(method)
    axes[0][0].set_ylabel(_metric_label(study) + ", mean over seeds")
    _legend_below(fig, axes[0][0])
    fig.suptitle(f"Best tier for each budget ({ERROR_NOTE})", fontweight="bold", fontsize=10)
    return _save(fig, out)


def plot_methods(study: Study, out: Path) -> Path:
    """Bars per tier, one per method, at the shared samples-seen budget (compute per method in the legend)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    table = study.methods
    if table.is_empty():
        ax.text(0.5, 0.5, "no samples-seen budget shared by every method", ha="center", transform=ax.transAxes)
        return _save(fig, out)
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
        label = f"{method} ({gflops:,.0f} GFLOPs)" if gflops is not None else method
        ax.bar(xs, [r["mean"] for r in shown], width, color=cmap(j % 8), label=label)
        _errorbars(ax, xs, shown)
    _chance(ax, study)
    ax.set_xticks(range(len(tiers)), tiers)
    ax.set_xlabel(f"tier (subset size: the largest all methods share); {ERROR_NOTE}")
    ax.set_ylabel(_metric_label(study) + ", mean over seeds")
    ax.set_title(f"Methods at equal samples seen ({study.methods_budget:,})", fontweight="bold")
    _legend_below(fig, ax)
    return _save(fig, out)


def plot_data_cards(study: Study, out: Path) -> Path:
    """Stacked horizontal bars: share of each gt defect type (and clean) in each tier."""
    plt = _pyplot()
    cards = study.cards
    shares = [c for c in cards.columns if c.startswith(SHARE_PREFIX)]
    fig, ax = plt.subplots(figsize=(7.5, 0.6 * max(2, cards.height) + 1.6))
    if not shares:
        ax.text(0.5, 0.5, "no ground-truth shares (not a synthetic pool)", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _save(fig, out)
    palette = ["#d62728", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000"]
    left = np.zeros(cards.height)
    ordered = sorted(shares, key=lambda c: (c != SHARE_PREFIX + "gt_clean", c))
    defects = iter(palette * 3)
    for column in ordered:
        values = cards[column].fill_null(0.0).to_numpy()
        ax.barh(range(cards.height), values, left=left, color="#4caf50" if column.endswith("gt_clean") else next(defects),
                label=column.removeprefix(SHARE_PREFIX).removeprefix("gt_"))
        left += values
    labels = [f"{t} (n={int(n):,})" if n is not None else str(t) for t, n in cards.select("tier", "subset_size").iter_rows()]
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
            ax.plot(xs, [r["mean"] for r in shown], marker="o", color=style["color"], linestyle=style["linestyle"], label=label)
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
               edgecolor="white", label=f"{model} ({style['family']})")
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


def draw_all(study: Study, out_dir: Path, fmt: str = "png") -> dict[str, Path]:
    """Every figure of the study as OUT_DIR/<name>.<fmt>."""
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    figures = {name: plotter(study, Path(out_dir) / f"{name}.{fmt}") for name, plotter in PLOTTERS.items()}
    for name, (attribute, plotter) in AXIS_PLOTTERS.items():
        if getattr(study, attribute) is not None:
            figures[name] = plotter(study, Path(out_dir) / f"{name}.{fmt}")
    return figures
