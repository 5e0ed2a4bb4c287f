"""The study's model axes, as tables over the seed means (`tables.seed_means` over every model's runs):

* `architecture_table`: accuracy vs unique samples per model at a fixed samples-seen budget (Scaling (Down)
  CLIP's "which architecture for which data size"), the best model per data size ranked 1;
* `family_table`: method x model at one shared configuration (tier, subset size, budget), models labelled
  ConvNet or ViT (the CLIP-benchmark's "supervision helps ConvNets and ViTs differently");
* `depth_table`: text-encoder depth variants of one otherwise identical model at one shared configuration,
  with accuracy, GFLOPs per sample and measured samples/s.

Each returns None when the runs do not hold that axis, so the report shows the section only when they do.
Pure polars; no fitting, no plotting.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

# What makes two runs' models "the same model except the text depth".
DEPTH_GROUP = ["model_family", "image_width", "image_depth", "image_size", "text_width", "text_context", "vocab_size"]
SETTING = ["tier", "subset_size", "samples_seen"]
TEXT_TOWER = ["text_width", "text_depth", "text_context", "vocab_size"]


@dataclass(frozen=True, eq=False)
class AxisTable:
    """Rows of seed means for one axis; `setting` is the shared configuration they were taken at (text)."""

    rows: pl.DataFrame
    setting: str


def _with_model_columns(means: pl.DataFrame) -> pl.DataFrame:
    for name in ("model_family", "params", "image_params", "text_depth", "samples_per_s", "gflops_per_sample"):
        if name not in means.columns:
            means = means.with_columns(pl.lit(None).alias(name))
    return means.with_columns(model_family=pl.col("model_family").fill_null("unknown"))


def same_text_tower(means: pl.DataFrame) -> pl.DataFrame:
    """The runs whose text tower is the most common one (by runs; ties: the deepest), so image towers are
    compared with the text tower held fixed (text-depth variants belong to the depth table)."""
    present = [c for c in TEXT_TOWER if c in means.columns]
    if not present or means.select(present).drop_nulls().is_empty():
        return means
    common = (means.drop_nulls(present).group_by(present).agg(runs=pl.col("n").sum())
              .sort(["runs", *present], descending=True).head(1).drop("runs"))
    return means.join(common, on=present)


def architecture_table(means: pl.DataFrame) -> AxisTable | None:
    """(tier, method, budget) panels with >= 2 models and >= 2 unique-sample sizes: every model's mean per size,
    `rank` 1 = the best model at that size (ties: fewer parameters first). Models share one text tower."""
    means = same_text_tower(_with_model_columns(means))
    panels = (means.group_by(["tier", "method", "samples_seen"])
              .agg(models=pl.col("model").n_unique(), sizes=pl.col("unique_samples").n_unique())
              .filter((pl.col("models") >= 2) & (pl.col("sizes") >= 2)).select("tier", "method", "samples_seen"))
    if panels.is_empty():
        return None
    rows = means.join(panels, on=["tier", "method", "samples_seen"])
    rows = (rows.sort(["mean", "params"], descending=[True, False], nulls_last=True)
            .with_columns(rank=pl.int_range(1, pl.len() + 1).over(["tier", "method", "samples_seen", "unique_samples"]))
            .sort(["tier", "method", "samples_seen", "unique_samples", "rank"]))
    return AxisTable(rows, "each panel at one samples-seen budget (fixed compute in samples; GFLOPs differ per model)")


def _best_setting(means: pl.DataFrame, cells: list[str], keep) -> tuple[dict, pl.DataFrame] | None:
    """The (tier, subset size, budget) holding the most distinct `cells` among rows passing `keep`
    (ties: larger budget, then larger subset, then tier name), and its rows."""
    candidates = means.filter(keep)
    if candidates.is_empty():
        return None
    coverage = (candidates.group_by(SETTING).agg(cells=pl.struct(cells).n_unique())
                .sort(["cells", "samples_seen", "subset_size", "tier"], descending=[True, True, True, False]))
    setting = coverage.row(0, named=True)
    rows = candidates.filter((pl.col("tier") == setting["tier"]) & (pl.col("subset_size") == setting["subset_size"])
                             & (pl.col("samples_seen") == setting["samples_seen"]))
    return setting, rows


def _setting_text(setting: dict) -> str:
    return f"tier {setting['tier']}, subset size {setting['subset_size']:,}, {setting['samples_seen']:,} samples seen"


def family_table(means: pl.DataFrame) -> AxisTable | None:
    """Method x model rows at the setting covering the most (method, model) cells, when both a ConvNet and a
    ViT model (with the same text tower) have runs there."""
    means = same_text_tower(_with_model_columns(means))
    families = set(means["model_family"].to_list())
    if not {"convnet", "vit"} <= families:
        return None
    found = _best_setting(means, ["method", "model"], pl.col("model_family").is_in(["convnet", "vit"]))
    if found is None:
        return None
    setting, rows = found
    if set(rows["model_family"].to_list()) != {"convnet", "vit"}:
        return None
    return AxisTable(rows.sort(["method", "model_family", "params", "model"]), _setting_text(setting))


def family_representatives(rows: pl.DataFrame) -> dict[str, str]:
    """Per family, the model with the most (method) cells in the table (ties: fewer parameters, then name)."""
    counts = (rows.group_by(["model_family", "model"]).agg(cells=pl.len(), params=pl.col("params").first())
              .sort(["cells", "params", "model"], descending=[True, False, False], nulls_last=True))
    return {str(family): str(group["model"][0]) for (family,), group in counts.group_by(["model_family"], maintain_order=True)}


def depth_table(means: pl.DataFrame) -> AxisTable | None:
    """Text-depth variants (same image tower, text width, context and vocabulary) of the group with the most
    depths, at the (tier, subset size, budget) covering the most depths; one method (CLIP when present)."""
    means = _with_model_columns(means)
    if "text_width" not in means.columns or means["text_depth"].drop_nulls().n_unique() < 2:
        return None
    usable = means.drop_nulls([c for c in DEPTH_GROUP if c in means.columns] + ["text_depth"])
    if usable.is_empty():
        return None
    groups = (usable.group_by([c for c in DEPTH_GROUP if c in usable.columns]).agg(depths=pl.col("text_depth").n_unique())
              .filter(pl.col("depths") >= 2).sort("depths", descending=True))
    if groups.is_empty():
        return None
    group = usable.join(groups.head(1).drop("depths"), on=[c for c in DEPTH_GROUP if c in usable.columns])
    methods = group["method"].unique().to_list()
    method = "clip" if "clip" in methods else sorted(methods)[0]
    found = _best_setting(group.filter(pl.col("method") == method), ["text_depth"], pl.lit(True))
    if found is None:
        return None
    setting, rows = found
    if rows["text_depth"].n_unique() < 2:
        return None
    rows = rows.sort(["text_depth", "model"]).group_by("text_depth", maintain_order=True).first()
    return AxisTable(rows, f"{method}, {_setting_text(setting)}")
