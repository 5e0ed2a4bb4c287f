"""`analysis report`: REPORT/index.html (self-contained page, figures beside it), REPORT/summary.md, fits.json.

Every piece of text that comes from run folders (tier, run, method names, rules, problems) is escaped:
with `html.escape` in the HTML, `&` and `<` in the Markdown. A refused fit is reported in the fit table with
its reason, never a failure; what a figure leaves undrawn is said under it (`plots.figure_notes`).

The folder is written whole or not at all (`analysis.staging.staged_folder`): the report is built in a sibling
temporary folder and renamed into place, and an existing report is replaced only once the new one is complete.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

from tierclip.analysis import plots
from tierclip.analysis.collect import SHARE_PREFIX, collect
from tierclip.analysis.degenerate import bound_notes
from tierclip.analysis.fit import PowerLawFit, RepetitionFit
from tierclip.analysis.staging import staged_folder
from tierclip.analysis.study import GroupFit, Study, StudyConfig, build_study
from tierclip.analysis.tables import metric_title
from tierclip.curate import atomic
from tierclip.curate.errors import UserError

SECTIONS = {  # anchor -> heading, in page order
    "summary": "Summary",
    "samples": "Accuracy vs samples per tier",
    "compute": "Accuracy vs compute per method",
    "best": "Best tier for each budget",
    "methods": "Method comparison at equal compute",
    "architectures": "Architecture vs data size",
    "families": "ConvNet vs ViT per method",
    "text_depth": "Text-encoder depth",
    "fits": "Fit table",
    "cards": "Data cards",
    "problems": "Problems",
    "findings": "Findings vs the seed papers",
}
SECTION_FIGURES = {"samples": ["acc_vs_samples"], "compute": ["acc_vs_compute"], "best": ["best_tier"],
                   "methods": ["methods"], "fits": ["acc_vs_samples_seen"], "cards": ["data_cards"],
                   "architectures": ["architectures"], "families": ["families"], "text_depth": ["text_depth"]}
AXIS_SECTIONS = {"architectures": "architecture", "families": "families", "text_depth": "depth"}  # shown only when held
# Every file a report folder may hold: an existing folder with anything else is not replaced (analysis.staging).
REPORT_FILES = {"index.html", "summary.md", "fits.json"} | {f"{name}.{fmt}" for name in plots.FIGURES for fmt in plots.FORMATS}
CSS = """body{font-family:system-ui,sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .55em;text-align:left}
th{background:#f3f3f3}img,embed{max-width:100%;border:1px solid #eee;margin:.4em 0}figcaption{color:#555;font-size:.9em}
.refused{color:#a15c00}li{margin:.25em 0}code{background:#f6f6f6;padding:0 .2em}"""


@dataclass(frozen=True)
class ReportConfig:
    out: Path
    fmt: str = "png"
    study: StudyConfig = StudyConfig()


def _num(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        if abs(value) >= 1e6 or (value != 0 and abs(value) < 1e-3):
            return f"{value:.{digits}g}"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _interval(point: float, bounds: tuple[float, float]) -> str:
    return f"{_num(point)} [{_num(bounds[0])}, {_num(bounds[1])}]"


def _ci(row: dict) -> str:
    """The 95 % interval of a seed mean, "–" with one seed, or words when it leaves [0, 1] (too few seeds)."""
    if row.get("ci_lo") is None:
        return "–"
    if plots.wide_interval(row):
        return f"too wide to mean anything: [{_num(row['ci_lo'])}, {_num(row['ci_hi'])}] leaves [0, 1]"
    return f"[{_num(row['ci_lo'])}, {_num(row['ci_hi'])}]"


def _mean_cell(row: dict) -> str:
    """mean ± sd [95 % interval] (n seeds); one seed shows the value alone."""
    if row.get("std") is None:
        return f"{_num(row['mean'])} (1 seed)" if row["n"] == 1 else _num(row["mean"])
    return f"{_num(row['mean'])} ± {_num(row['std'])} {_ci(row)} ({row['n']} seeds)"


def _millions(value) -> str:
    return f"{value / 1e6:.2f} M" if value is not None else "–"


def _sd(row: dict) -> str:
    return _num(row["std"]) if row.get("std") is not None else "–"


# --------------------------------------------------------------------------- rows of each table (plain text)


def fit_rows(study: Study) -> tuple[list[str], list[list[str]]]:
    headers = ["model", "tier", "method", "budget (samples seen)", "points", "parameters [95% bootstrap interval]", "RMSE"]
    rows = []
    groups = [("power law vs unique samples", f) for f in study.sample_fits] + \
             [("power law vs compute (GFLOPs)", f) for f in study.compute_fits] + \
             [("repetition-aware (Goyal et al.)", f) for f in study.repetition_fits]
    for label, group_fit in groups:
        budget = _num(group_fit.budget) if group_fit.budget is not None else "all"
        if group_fit.subset_size is not None:
            budget = f"all (subset size {group_fit.subset_size:,})"
        rows.append([label, group_fit.tier, group_fit.method, budget, str(group_fit.n_points),
                     _fit_parameters(group_fit), _num(group_fit.model.rmse, 4) if group_fit.model else "–"])
    return headers, rows


def _fit_parameters(group_fit: GroupFit) -> str:
    model = group_fit.model
    if model is None:
        return f"fit refused: {group_fit.refusal}"
    ci = model.intervals()
    if isinstance(model, PowerLawFit):
        text = f"E = {_interval(model.E, ci['E'])}; A = {_interval(model.A, ci['A'])}; α = {_interval(model.alpha, ci['alpha'])}"
    else:
        assert isinstance(model, RepetitionFit)
        text = "; ".join(f"{name} = {_interval(getattr(model, name), ci[name])}" + (" (fixed)" if name in model.fixed else "")
                         for name in ("a", "b", "d", "tau")) + f"; n_ref = {_num(model.n_ref)}"
    notes = [note for note in (group_fit.problem and f"not drawn: {group_fit.problem}", bound_notes(model)) if note]
    return text + "".join(f" — {note}" for note in notes)


def best_rows(study: Study) -> tuple[list[str], list[list[str]]]:
    headers = ["method", "samples seen", "rank", "tier", "subset size", "mean", "sd", "95% interval", "seeds",
               "how the size was chosen"]
    rows = [[r["method"], _num(r["samples_seen"]), str(r["rank"]), r["tier"], _num(r["subset_size"]), _num(r["mean"]),
             _sd(r), _ci(r), f"{r['n']}: {r['seeds']}", r["rule"]] for r in study.best.iter_rows(named=True)]
    return headers, rows


def headline_rows(study: Study) -> tuple[list[str], list[list[str]]]:
    """Every tier of every headline comparison: one size, the same seeds (the primary metric, then its companion)."""
    headers = ["metric", "method", "samples seen", "subset size", "tier", "mean", "sd", "95% interval", "seeds"]
    tables = [(study.metric, study.headline_means), (study.companion_metric, study.companion_means)]
    rows = [[metric, r["method"], _num(r["samples_seen"]), _num(r["subset_size"]), r["tier"], _num(r["mean"]), _sd(r),
             _ci(r), str(r["n"])] for metric, means in tables if means is not None for r in means.iter_rows(named=True)]
    return headers, rows


def method_rows(study: Study) -> tuple[list[str], list[list[str]]]:
    headers = ["tier", "subset size", "method", "mean", "sd", "95% interval", "seeds", "GFLOPs"]
    rows = [[r["tier"], _num(r["subset_size"]), r["method"], _num(r["mean"]), _sd(r), _ci(r), str(r["n"]), _num(r["gflops"])]
            for r in study.methods.iter_rows(named=True)]
    return headers, rows


def architecture_rows(study: Study) -> tuple[list[str], list[list[str]]]:
    headers = ["tier", "method", "samples seen", "unique samples", "model", "family", "parameters (image tower)",
               "GFLOPs/sample", "mean", "sd", "95% interval", "seeds", "best at this size"]
    rows = [[r["tier"], r["method"], _num(r["samples_seen"]), _num(r["unique_samples"]), r["model"], r["model_family"],
             f"{_millions(r['params'])} ({_millions(r['image_params'])})", _num(r["gflops_per_sample"]), _num(r["mean"]),
             _sd(r), _ci(r), str(r["n"]), "★" if r["rank"] == 1 else ""] for r in study.architecture.rows.iter_rows(named=True)]
    return headers, rows


def family_rows(study: Study) -> tuple[list[str], list[list[str]]]:
    """method x model cells (mean ± sd [95 % interval]), and ViT − ConvNet of the families' representatives."""
    from tierclip.analysis.axes import family_representatives
    from tierclip.analysis.stats import difference

    table = study.families.rows
    models = table.select("model", "model_family", "params").unique("model").sort(["model_family", "params", "model"])
    reps = family_representatives(table)
    headers = ["method"] + [f"{m} ({f})" for m, f, _ in models.iter_rows()] + [f"{reps['vit']} − {reps['convnet']} [95% interval]"]
    cells = {(r["method"], r["model"]): r for r in table.iter_rows(named=True)}
    rows = []
    for method in sorted(table["method"].unique().to_list()):
        row = [method] + [_mean_cell(cells[(method, m)]) if (method, m) in cells else "–" for m in models["model"].to_list()]
        vit, conv = cells.get((method, reps["vit"])), cells.get((method, reps["convnet"]))
        if vit and conv:
            gap = difference((vit["mean"], vit["std"], vit["n"]), (conv["mean"], conv["std"], conv["n"]))
            row.append(_interval(gap.value, gap.interval) if gap.interval else f"{_num(gap.value)} (one seed: no interval)")
        else:
            row.append("–")
        rows.append(row)
    return headers, rows


def depth_rows(study: Study) -> tuple[list[str], list[list[str]]]:
    headers = ["text layers", "model", "text-tower parameters", "mean", "sd", "95% interval", "seeds", "GFLOPs/sample",
               "measured samples/s"]
    rows = [[str(r["text_depth"]), r["model"], _millions(r["text_params"]), _num(r["mean"]), _sd(r), _ci(r), str(r["n"]),
             _num(r["gflops_per_sample"]), _num(r.get("samples_per_s"))] for r in study.depth.rows.iter_rows(named=True)]
    return headers, rows


def finding_rows(study: Study) -> tuple[list[str], list[list[str]]]:
    headers = ["claim", "source", "measured", "value [95% interval]", "verdict", "why", "the paper's effect",
               "seeds for an interval narrower than it"]
    rows = []
    for f in study.findings:
        value = "–"
        if f.estimate is not None:
            value = _interval(f.estimate.value, f.estimate.interval) if f.estimate.interval else f"{_num(f.estimate.value)} (no interval)"
        rows.append([f.claim, f.source, f.measured, value, f.verdict, f.why, f.paper_effect, f.seeds])
    return headers, rows


def card_rows(study: Study) -> tuple[list[str], list[list[str]]]:
    shares = [c for c in study.cards.columns if c.startswith(SHARE_PREFIX)]
    headers = ["tier", "tier set", "rule", "size", "pool", "source", "sources (share, licence)"] + [
        c.removeprefix(SHARE_PREFIX) for c in shares]
    rows = [[r["tier"], r["tier_set"] or "–", r["rule"] or "–", _num(r["subset_size"]), r.get("pool") or "–",
             r.get("pool_source") or "–", r.get("subset_sources") or "–"] +
            [f"{r[c]:.1%}" if r[c] is not None else "–" for c in shares] for r in study.cards.iter_rows(named=True)]
    return headers, rows


def crossover_rows(study: Study) -> tuple[list[str], list[list[str]]]:
    headers = ["crossover in", "method", "budget", "tiers", "x", "95% interval", "bootstrap fits crossing", "reading"]
    rows = []
    for row in study.crossovers:
        res = row.result
        interval = f"{_num(res.interval[0])} – {_num(res.interval[1])}" if res.interval else "–"
        share = f"{res.boot_share:.0%}" if res.boot_share is not None else "–"
        rows.append([row.kind, row.method, _num(row.budget) if row.budget else "–", f"{row.tier_a} vs {row.tier_b}",
                     _num(res.x), interval, share, res.reason])
    return headers, rows


def problem_lines(study: Study) -> list[str]:
    return [str(p) for p in study.problems]


# --------------------------------------------------------------------------- HTML


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "<p>(nothing to show)</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_cell(cell: str) -> str:
    css = ' class="refused"' if cell.startswith("fit refused") else ""
    return f"<td{css}>{html.escape(cell)}</td>"


def _html_figure(name: str, path: Path) -> str:
    src, caption = html.escape(path.name), html.escape(plots.FIGURES[name])
    media = (f'<embed src="{src}" type="application/pdf" width="100%" height="520"><br><a href="{src}">{src}</a>'
             if path.suffix == ".pdf" else f'<img src="{src}" alt="{caption}">')
    return f"<figure>{media}<figcaption>{caption}</figcaption></figure>"


def _html_list(lines: list[str], empty: str) -> str:
    if not lines:
        return f"<p>{html.escape(empty)}</p>"
    return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"


SELECTION_TEXT = ("The summary compares every tier at one subset size per budget, over the seeds every tier has there "
                  "(the declared --headline-size, else the size shared by the most tiers and seeds); the best-tier table "
                  "picks each tier's size on its selection seed and reports the other seeds (analysis/selection.py).")
FINDINGS_TEXT = ("Each claim of the seed papers against what these runs measured. Verdict rules (analysis/findings.py): a "
                 "claim that predicts a positive difference is reproduced when its 95 % interval lies above 0 and "
                 "contradicted when it lies below 0; an about-as-good claim is reproduced when the interval's lower end is "
                 "above −0.02 (two accuracy points) and contradicted when it lies below −0.02; a differs claim is reproduced "
                 "when the interval excludes 0; anything else, or a single seed, is inconclusive. The last column says "
                 "whether the interval is narrower than the effect the paper reports (or the 0.02 margin where it gives no "
                 "number), and if not, about how many seeds per group would make it so, from the measured seed spread.")


def _scoring_note(study: Study) -> str:
    """Which methods' runs are scored token-wise (tables.metric_points), in one sentence; empty when none is."""
    means = study.all_means
    if means is None or "scoring" not in means.columns:
        return ""
    methods = ", ".join(sorted({m for m, how in means.select("method", "scoring").iter_rows() if how == "token-wise"}))
    if not methods:
        return ""
    return (f" Runs of {methods} are scored token-wise (their checkpoint's FILIP head: mean over tokens of the best "
            "match, as the FILIP authors score zero-shot and retrieval); their pooled-embedding score is in eval.jsonl.")


def _baselines(study: Study) -> str:
    chance = f"random chance {_num(study.random_score)}" if study.random_score is not None else "random chance unknown"
    return chance + (f"; majority class {_num(study.majority_score)}" if study.majority_score is not None else "")


def section_bodies(study: Study) -> dict[str, list]:
    """Per section: the blocks shown after its figures (tables as (headers, rows), text as str, lists as list)."""
    def refusals(fits: list[GroupFit]) -> list:
        lines = [f"fit refused — {f.tier} · {f.method}" + (f" at {f.budget:,} samples seen" if f.budget else "") +
                 (f" at subset size {f.subset_size:,}" if f.subset_size else "") +
                 f": {f.refusal}" for f in fits if f.model is None]
        return [lines] if lines else []

    n_models = study.all_means["model"].n_unique() if study.all_means is not None else 1
    models = (f" The tier sections use model {study.model} (the model with the most runs); the other "
              f"{n_models - 1} model(s) appear in the model-axis sections below." if n_models > 1 else "")
    bodies = {
        "summary": [f"Metric: {metric_title(study.task, study.metric)}; {_baselines(study)}; "
                    f"{study.points['run'].n_unique()} runs; reference (unfiltered) tier: {study.reference_tier}.{models}"
                    f"{_scoring_note(study)} "
                    "Means over seeds show ± sd and a 95 % t-interval when a point has at least 2 seeds, and no error "
                    "bar with one seed. " + SELECTION_TEXT,
                    study.conclusions or ["no conclusions: no budget has runs of several tiers at one subset size with a "
                                          "shared seed"], headline_rows(study)],
        "samples": refusals(study.sample_fits),
        "compute": refusals(study.compute_fits) or ([] if study.compute_fits else
                                                    ["No compute curve: every tier x subset size was trained at one budget."]),
        "best": [best_rows(study)] + ([study.best_notes] if study.best_notes else []),
        "methods": [f"All methods at {study.methods_budget:,} samples seen (equal data budget; compute differs per method "
                    "and is listed)." if study.methods_budget else "No samples-seen budget is shared by every method.",
                    method_rows(study)],
        "fits": [fit_rows(study), "Crossovers (where one tier overtakes another):", crossover_rows(study)],
        "cards": [card_rows(study)],
        "problems": [problem_lines(study) or ["none: every run found was finished and well-formed"]],
        "findings": [FINDINGS_TEXT, finding_rows(study)],
    }
    if study.architecture is not None:
        bodies["architectures"] = [f"Every model's mean accuracy per data size ({study.architecture.setting}); ★ marks "
                                   "the best model at each data size.", architecture_rows(study)]
    if study.families is not None:
        bodies["families"] = [f"At {study.families.setting}. Cells: mean ± sd [95 % interval] over seeds.",
                              family_rows(study)]
    if study.depth is not None:
        bodies["text_depth"] = [f"Text-depth variants of one model ({study.depth.setting}); cost is counted GFLOPs per "
                                "sample (forward + backward) and the measured training throughput.", depth_rows(study)]
    return bodies


def shown_sections(study: Study) -> dict[str, str]:
    """The report's sections in page order; an axis section only when the runs hold that axis."""
    return {key: title for key, title in SECTIONS.items()
            if key not in AXIS_SECTIONS or getattr(study, AXIS_SECTIONS[key]) is not None}


def _notes(section: str, notes: dict[str, list[str]]) -> list:
    """The figure notes of a section's figures, as one list block (or nothing)."""
    lines = [line for name in SECTION_FIGURES.get(section, []) for line in notes.get(name, [])]
    return [lines] if lines else []


def _html_block(block) -> str:
    if isinstance(block, tuple):
        return _html_table(*block)
    if isinstance(block, list):
        return _html_list(block, "none")
    return f"<p>{html.escape(block)}</p>"


def render_html(study: Study, figures: dict[str, Path]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>tierclip report: {html.escape(study.task)} "
             f"{html.escape(study.metric)}</title><style>{CSS}</style></head><body>",
             "<h1>tierclip scaling report</h1><nav>" +
             " · ".join(f'<a href="#{key}">{html.escape(title)}</a>' for key, title in shown_sections(study).items()) + "</nav>"]
    bodies, notes = section_bodies(study), plots.figure_notes(study)
    for key, title in shown_sections(study).items():
        parts.append(f'<section id="{key}"><h2>{html.escape(title)}</h2>')
        parts += [_html_figure(name, figures[name]) for name in SECTION_FIGURES.get(key, []) if name in figures]
        parts += [_html_block(block) for block in _notes(key, notes) + bodies[key]]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- Markdown


def _md_text(text: str) -> str:
    """A table cell or line of Markdown: `&` and `<` escaped (no tag from a run folder renders), `|` kept in its cell.

    Only what opens markup is escaped, so the raw file stays readable (`>= 2 models`, `interval's`).
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|").replace("\n", " ")


def _md_block(block) -> list[str]:
    if isinstance(block, tuple):
        headers, rows = block
        if not rows:
            return ["(nothing to show)", ""]
        lines = ["| " + " | ".join(_md_text(h) for h in headers) + " |", "|" + "---|" * len(headers)]
        return lines + ["| " + " | ".join(_md_text(c) for c in row) + " |" for row in rows] + [""]
    if isinstance(block, list):
        return [f"- {_md_text(line)}" for line in block] + [""]
    return [_md_text(block), ""]


def render_markdown(study: Study, figures: dict[str, Path]) -> str:
    lines = [f"# tierclip scaling report: {_md_text(study.task)} {_md_text(study.metric)}", ""]
    bodies, notes = section_bodies(study), plots.figure_notes(study)
    for key, title in shown_sections(study).items():
        lines += [f"## {title}", ""]
        lines += [f"![{plots.FIGURES[name]}]({figures[name].name})\n" for name in SECTION_FIGURES.get(key, []) if name in figures]
        for block in _notes(key, notes) + bodies[key]:
            lines += _md_block(block)
    return "\n".join(lines)


# --------------------------------------------------------------------------- entry point


def fits_json(study: Study) -> dict:
    """The fit table, crossovers, headline comparisons and findings in machine-readable form (REPORT/fits.json)."""
    def entry(group_fit: GroupFit) -> dict:
        model = group_fit.model
        params = {}
        if isinstance(model, PowerLawFit):
            params = {"E": model.E, "A": model.A, "alpha": model.alpha, "x_ref": model.x_ref}
        elif isinstance(model, RepetitionFit):
            params = {"a": model.a, "b": model.b, "d": model.d, "tau": model.tau, "n_ref": model.n_ref}
        return {"tier": group_fit.tier, "method": group_fit.method, "x": group_fit.x, "budget": group_fit.budget,
                "n_points": group_fit.n_points, "refusal": group_fit.refusal, "not_drawn": group_fit.problem,
                "params": params, "intervals": model.intervals() if model else {}, "rmse": model.rmse if model else None}

    return {"task": study.task, "metric": study.metric, "random_score": study.random_score,
            "majority_score": study.majority_score,
            "fits": [entry(f) for f in study.sample_fits + study.compute_fits + study.repetition_fits],
            "crossovers": [{"kind": r.kind, "method": r.method, "budget": r.budget, "tier_a": r.tier_a, "tier_b": r.tier_b,
                            "x": r.result.x, "interval": r.result.interval, "reason": r.result.reason} for r in study.crossovers],
            "headlines": [{"method": h.method, "samples_seen": h.samples_seen, "subset_size": h.subset_size,
                           "seeds": list(h.seeds), "tiers": list(h.tiers), "declared": h.declared} for h in study.headlines],
            "findings": [{"key": f.key, "claim": f.claim, "source": f.source, "measured": f.measured,
                          "value": f.estimate.value if f.estimate else None,
                          "interval": f.estimate.interval if f.estimate else None, "verdict": f.verdict, "why": f.why,
                          "paper_effect": f.paper_effect, "seeds_needed": f.seeds}
                         for f in study.findings]}


def write_report(study: Study, out: Path, fmt: str = "png") -> dict[str, Path]:
    """Draw the figures and write index.html, summary.md and fits.json into `out`, whole or not at all."""
    out = Path(out)
    with staged_folder(out, REPORT_FILES) as stage:
        figures = plots.draw_all(study, stage, fmt)
        atomic.write_bytes(stage / "index.html", render_html(study, figures).encode("utf-8"))
        atomic.write_bytes(stage / "summary.md", render_markdown(study, figures).encode("utf-8"))
        atomic.write_bytes(stage / "fits.json", json.dumps(fits_json(study), indent=2, default=str).encode("utf-8"))
    return {"index": out / "index.html", "summary": out / "summary.md", **{name: out / p.name for name, p in figures.items()}}


def report(inputs: list[str | Path], cfg: ReportConfig) -> tuple[dict[str, Path], Study]:
    """Collect the runs under `inputs`, build the study and write the report."""
    table, problems = collect(inputs)
    if table.is_empty():
        listed = "; ".join(str(p) for p in problems[:5]) or "no run folders found"
        raise UserError(f"{', '.join(map(str, inputs))}: no finished runs to report on ({listed})")
    study = build_study(table, problems, cfg.study)
    return write_report(study, cfg.out, cfg.fmt), study
