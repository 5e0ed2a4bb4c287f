"""The `curate inspect` page: charts (PNG files beside index.html) and the HTML itself, written by `write_report`.

The rows, reasons and gallery samples come from `curate.selection.inspect_rows`.
Hand-written HTML (a dozen tags) rather than a template engine; captions,
errors, statuses and the rule are untrusted text: every value that comes from
the data goes through `esc` (html.escape).
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import numpy as np
import polars as pl
from tierclip.curate import atomic
from tierclip.curate.pool import Pool, check_not_pool_files, gt_flag_columns
from tierclip.curate.selection import charts
from tierclip.curate.selection.inspect_rows import (
    InspectConfig,
    fetch_samples,
    gallery_rows,
    open_target,
    reason_counts,
    row_table,
)
from tierclip.curate.selection.sources import score_columns
from tierclip.curate.subset import Subset

STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}td.n{text-align:right}
.gallery{display:flex;flex-wrap:wrap;gap:.6em}.card{width:170px;font-size:12px;border:1px solid #ddd;padding:.3em}
.card img{display:block;margin:0 auto .3em}.noimg{height:60px;background:#eee;text-align:center;line-height:60px}
.meta{color:#666}img.chart{max-width:100%;margin:.3em}"""


def write_report(target: str | Path, out: str | Path, config: InspectConfig, pool_path: str | Path | None = None) -> Path:
    """OUT/index.html and its chart PNGs for a pool or a subset."""
    pool, subset = open_target(target, pool_path)
    check_not_pool_files(out)
    rows = row_table(pool, subset)
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        drawn = draw_charts(rows, out)
        picked = gallery_rows(rows, config)
        page = render(pool, subset, rows, drawn, picked, fetch_samples(pool, picked, config), config)
        atomic.write_bytes(out / "index.html", page.encode("utf-8"))
    except BaseException:
        if created:  # no half-made report left behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    return out / "index.html"


def esc(value: object) -> str:
    """Escape anything shown in the page (data is untrusted)."""
    return html.escape("" if value is None else str(value), quote=True)


def finite(values: pl.Series) -> np.ndarray:
    array = values.cast(pl.Float64).to_numpy()
    return array[np.isfinite(array)]


def draw_charts(rows: pl.DataFrame, out: Path) -> list[tuple[str, str]]:
    """(title, file name) for each chart written into `out`."""
    drawn = []
    reasons = reason_counts(rows)
    drawn.append(("Rows per reason", charts.bar_counts(reasons, "rows per reason", out / "reasons.png").name))
    for column in [c for c in score_columns() if c in rows.columns]:
        groups = {"kept": finite(rows.filter(pl.col("reason").is_null())[column]),
                  "rejected": finite(rows.filter(pl.col("reason").is_not_null())[column])}
        name = f"hist_{column}.png"
        charts.overlaid_histograms(groups, f"{column}: kept vs rejected", column, out / name)
        drawn.append((f"{column} histogram", name))
        for flag in _defect_flags(rows):
            split = {f"{flag}": finite(rows.filter(pl.col(flag))[column]),
                     f"not {flag}": finite(rows.filter(~pl.col(flag))[column])}
            name = f"hist_{column}_{flag}.png"
            charts.overlaid_histograms(split, f"{column} by {flag}", column, out / name)
            drawn.append((f"{column} by {flag}", name))
    return drawn


def _defect_flags(rows: pl.DataFrame) -> list[str]:
    """Boolean gt_* columns with at least one row set (gt_clean included: clean vs the rest)."""
    return [c for c in gt_flag_columns(rows.schema) if rows[c].any()]


def _table(headers: tuple[str, ...], body: list[tuple]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    cells = "".join(
        "<tr>" + "".join(f'<td class="n">{esc(v)}</td>' if isinstance(v, int | float) else f"<td>{esc(v)}</td>" for v in row) + "</tr>"
        for row in body
    )
    return f"<table><tr>{head}</tr>{cells}</table>"


def _summary(pool: Pool, subset: Subset | None, rows: pl.DataFrame) -> list[str]:
    parts = [f"<h1>{esc(subset.name if subset else pool.name)}</h1>",
             f"<p>pool <b>{esc(pool.name)}</b> ({esc(pool.root)}): {rows.height} rows</p>"]
    status = rows["status"].value_counts(sort=True)
    parts += ["<h2>Rows per status</h2>", _table(("status", "rows"), [(s, int(n)) for s, n in status.iter_rows()])]
    if subset is not None:
        manifest = subset.manifest
        parts += [f"<h2>Subset</h2><p>{subset.n} uids kept. Rule: <code>{esc(manifest.get('rule', ''))}</code></p>",
                  _table(("threshold", "value"), sorted((k, v) for k, v in (manifest.get("thresholds") or {}).items())),
                  "<h3>Drop counts per clause (applied in order)</h3>",
                  _table(("clause", "rows dropped"), _ordered_counts(manifest))]
    parts += ["<h2>Rows per reason</h2>", _table(("reason", "rows"), list(reason_counts(rows).items()))]
    flags = gt_flag_columns(rows.schema)
    if flags:
        kept, rejected = rows.filter(pl.col("reason").is_null()), rows.filter(pl.col("reason").is_not_null())
        body = [(flag, int(rows[flag].sum()), _share(kept, flag), _share(rejected, flag)) for flag in flags]
        parts += ["<h2>Ground truth (synthetic pool)</h2>",
                  _table(("flag", "rows with flag", "share of kept", "share of rejected"), body)]
    return parts


def _ordered_counts(manifest: dict) -> list[tuple[str, int]]:
    """Drop counts in the order the clauses were applied (JSON files store keys sorted)."""
    counts = manifest.get("drop_counts") or {}
    order = manifest.get("clause_order") or list(counts)
    return [(name, counts[name]) for name in order if name in counts]


def _share(frame: pl.DataFrame, flag: str) -> str:
    return f"{frame[flag].mean():.3f}" if frame.height else "-"


def _card(row: dict, sample: dict, config: InspectConfig, scores: list[str], flags: list[str]) -> str:
    thumb = sample.get("thumb")
    image = f'<img src="{esc(thumb)}" alt="">' if thumb else '<div class="noimg">no image</div>'
    caption = sample.get("caption")
    shown = caption if caption is None or len(caption) <= config.caption_chars else caption[: config.caption_chars] + "…"
    lines = [image, f"<div>{esc(shown) if caption is not None else '<i>no caption</i>'}</div>",
             f'<div class="meta">uid {esc(row["uid"][:12])}… status {esc(row["status"])}</div>']
    if sample.get("error"):
        lines.append(f'<div class="meta">error: {esc(sample["error"])}</div>')
    values = [f"{c}={row[c]:.3f}" for c in scores if row.get(c) is not None]
    if values:
        lines.append(f'<div class="meta">{esc(", ".join(values))}</div>')
    set_flags = [f for f in flags if row.get(f)]
    if set_flags:
        lines.append(f'<div class="meta">{esc(", ".join(set_flags))}</div>')
    return f'<div class="card">{"".join(lines)}</div>'


def render(pool: Pool, subset: Subset | None, rows: pl.DataFrame, drawn: list[tuple[str, str]],
           picked: pl.DataFrame, samples: dict[str, dict], config: InspectConfig) -> str:
    parts = _summary(pool, subset, rows)
    parts.append("<h2>Charts</h2>")
    parts += [f'<img class="chart" src="{esc(name)}" alt="{esc(title)}" title="{esc(title)}">' for title, name in drawn]
    scores = [c for c in score_columns() if c in rows.columns]
    flags = gt_flag_columns(rows.schema)
    parts.append(f"<h2>Gallery (up to {config.per_reason} per reason)</h2>")
    for group, members in picked.group_by("group", maintain_order=True):
        cards = [_card(row, samples.get(row["uid"], {}), config, scores, flags) for row in members.iter_rows(named=True)]
        parts.append(f"<h3>{esc(group[0])} ({members.height} shown)</h3><div class=\"gallery\">{''.join(cards)}</div>")
    title = esc(f"curate inspect: {subset.name if subset else pool.name}")
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>{STYLE}</style></head>'
            f"<body>{''.join(parts)}</body></html>\n")
