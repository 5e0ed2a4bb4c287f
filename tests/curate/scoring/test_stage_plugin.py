"""A new stage is one definition: added to STAGES, it gets `curate score` options, runs, and its column is filterable."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
from tierclip.curate.cli import app
from tierclip.curate.fields import Checked
from tierclip.curate.selection.config import FilterConfig
from tierclip.curate.selection.query import collect_flags, plan
from tierclip.curate.selection.sources import ColumnIndex, producers, score_columns
from tierclip.curate.stages import STAGES
from tierclip.curate.stages.base import ShardContext, Stage, option
from typer.testing import CliRunner

from tests.tiny import make_pool


@dataclass(frozen=True)
class VowelConfig(Checked):
    weight: float = option(1.0, "multiplies the share of vowels.", ge=0)
    letters: str = option("aeiou", "letters that count as vowels.")


def vowel_share(meta: pl.DataFrame, images: Iterator | None, cfg: VowelConfig, ctx: ShardContext) -> pl.DataFrame:
    caption = pl.col("caption").fill_null("")
    share = caption.str.count_matches(f"[{cfg.letters}]") / caption.str.len_chars().clip(1)
    return meta.select("uid", (share * cfg.weight).cast(pl.Float32).alias("vowel_share"))


VOWELS = Stage(name="vowels", produces={"vowel_share": pl.Float32}, compute=vowel_share, config=VowelConfig,
               needs=("uid", "caption"), scores=("vowel_share",), doc="share of vowels in the caption")


def test_a_stage_added_to_stages_gets_options_runs_and_is_filterable(tmp_path, monkeypatch):
    monkeypatch.setitem(STAGES, "vowels", VOWELS)
    runner = CliRunner()
    help_text = runner.invoke(app, ["score", "--help"], terminal_width=200).output
    assert "--vowels-weight" in help_text and "vowels: multiplies the share of vowels." in help_text
    assert "--vowels-letters" in help_text and "--text-dedup-threshold" in help_text and "--cluster-k" in help_text
    assert "vowels" in help_text.split("--stages")[1].split("--engine")[0]  # listed among the stages

    pool = make_pool(tmp_path / "pool", [[(None, "aaaa"), (None, "xyz"), (None, "banana")], [(None, None), (None, "eel")]])
    assert "run `curate score" in ColumnIndex(pool).missing_message("vowel_share")
    assert producers()["vowel_share"] == "vowels" and "vowel_share" in score_columns()
    refused = runner.invoke(app, ["score", str(pool.root), "--stages", "vowels", "--vowels-weight", "-1"])
    assert refused.exit_code == 2 and "--vowels-weight -1: must be a finite number >= 0" in refused.output  # its bounds
    assert not pool.scores_dir("vowels").exists()
    result = runner.invoke(app, ["score", str(pool.root), "--stages", "vowels", "--workers", "1", "--vowels-weight", "2",
                                 "--vowels-letters", "ae"])
    assert result.exit_code == 0, result.output
    shares = pool.scan_scores("vowels").collect()["vowel_share"].to_list()
    assert [round(s, 3) for s in shares] == [2.0, 0.0, 1.0, 0.0, round(2 * 2 / 3, 3)]
    flags = collect_flags(plan(pool, FilterConfig(where="vowel_share > 0.5")))
    assert flags.filter(pl.col("keep")).height == 3
