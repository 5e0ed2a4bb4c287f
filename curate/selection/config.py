"""`FilterConfig` and the clauses it becomes: named polars expressions, applied in a fixed order.

Order: status, basic, lang, dedup_text, dedup_image, semdedup, where,
min_score, fraction. Each clause is a boolean expression with nulls counted
as "fails" (a row without a score cannot pass a score clause). The
`fraction` clause is not here: its threshold depends on the rows that pass
all the others (see `curate.selection.query`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import polars as pl
from tierclip.curate.errors import UserError
from tierclip.curate.fields import Checked, option
from tierclip.curate.pool import OK

DEDUP_KINDS = {"text": "dup_keep", "image": "image_dup_keep"}
MAX_WHERE_OPERATORS = 512  # a 256-term OR (511 operators) takes ~0.1 s to plan and run
FRACTION_BASES = ("remaining", "pool")

# DataComp's basic filter (baselines/apply_filter.py: load_uids_with_basic_filter_helper):
# fastText language of text.replace("\n", " ") == "en" (our `lang_datacomp` column; `lang` collapses all
# whitespace first and can differ), len(text.split()) > 2, len(text) > 5,
# min(original_width, original_height) >= 200, max/min <= 3.0.
BASIC_MIN_CHARS_EXCLUSIVE = 5
BASIC_MIN_SIDE = 200
BASIC_MAX_ASPECT = 3.0


SCORE_HELP = ("Score column for --min-score/--fraction/tiers: clip_score (stage clip), or for DataComp metadata pools "
              "clip_b32_similarity_score / clip_l14_similarity_score (sidecar datacomp); found in meta or any sidecar.")


@dataclass(frozen=True)
class FilterConfig(Checked):
    """The clauses of `curate filter` (every field an option); `curate tiers` takes all but the fraction ones as its base."""

    score: str = option("clip_score", SCORE_HELP)
    # -inf stays allowed ("any row that has a score", curate quality uses it); nan and inf would select nothing.
    min_score: float | None = option(None, "Keep rows whose score is >= this value (null scores fail).", finite=False, lt=math.inf)
    fraction: float | None = option(None, "Keep the top fraction by score, DataComp's top-k rule: threshold = the "
                                          "(int(n*F)+1)-th highest score, keep score >= threshold (ties kept).", gt=0, le=1)
    fraction_of: str = option("remaining", "Rank for --fraction among 'remaining' rows (those passing every other clause) "
                                           "or the whole 'pool' (DataComp's intersection semantics).", choices=FRACTION_BASES)
    lang: str | None = option(None, "Keep captions in this language (fastText lid.176 code from the lang stage, e.g. en).")
    min_lang_prob: float | None = option(None, "With --lang: also require lang_prob >= this.", ge=0, le=1)
    dedup: tuple[str, ...] = option((), "Comma list of text,image: keep one row per duplicate group (dup_keep / "
                                        "image_dup_keep).", choices=tuple(DEDUP_KINDS), comma=True)
    semdedup: bool = option(False, "Keep rows with semdedup_keep (cluster stage).")
    basic: bool = option(False, "DataComp's basic filter: English (fastText), > 2 words, > 5 characters, shorter side "
                                ">= 200 px, aspect ratio <= 3.")
    where: str | None = option(None, 'Extra SQL-style condition on any meta/sidecar column, e.g. "width >= 200 AND '
                                     'caption_words > 3" (parsed by polars.sql_expr, never evaluated as Python).')

    def __post_init__(self):
        if isinstance(self.dedup, str):  # "text,image" from Python or a sweep of rules
            object.__setattr__(self, "dedup", tuple(k.strip() for k in self.dedup.split(",") if k.strip()))
        super().__post_init__()
        if self.min_lang_prob is not None and self.lang is None:
            raise UserError("--min-lang-prob needs --lang (e.g. --lang en)")
        self._check_values()

    def _check_values(self) -> None:
        """Values that would silently select nothing (or everything) are refused up front."""
        from tierclip.curate.langcodes import LID176_LANGS

        if self.lang is not None and self.lang not in LID176_LANGS:
            close = sorted(code for code in LID176_LANGS if code.startswith(self.lang[:1].lower()))[:8]
            raise UserError(f"--lang '{self.lang}': not a fastText lid.176 language code (the lang stage's labels"
                            f"{', e.g. ' + ' '.join(close) if close else ''})")
        if self.where is not None and not self.where.strip():
            raise UserError("--where: empty condition")

    def to_json(self) -> dict:
        return {**asdict(self), "dedup": list(self.dedup)}

    @classmethod
    def from_json(cls, data: dict) -> FilterConfig:
        return cls(**{**data, "dedup": tuple(data.get("dedup", ()))})

    def uses_score(self) -> bool:
        return self.min_score is not None or self.fraction is not None


@dataclass(frozen=True)
class Clause:
    name: str
    expr: pl.Expr  # True = keep; nulls already filled with False
    text: str
    option: str  # the command-line option that asked for it (for error messages)

    def columns(self) -> list[str]:
        return self.expr.meta.root_names()


def _clause(name: str, expr: pl.Expr, text: str, option: str) -> Clause:
    return Clause(name, expr.fill_null(False).alias(f"pass_{name}"), text, option)


# Python's str.split() splits on runs of str.isspace() characters: Unicode White_Space
# (the regex \s) plus the separators U+001C..U+001F.
_SPACE = r"[\s\x1c-\x1f]"
_WORD_CHAR = r"[^\s\x1c-\x1f]"
# "more than 2 words" == three whitespace-separated runs exist; `contains` stops at the first
# match, ~3x faster than counting every word of 10 million captions.
_THREE_WORDS = f"{_WORD_CHAR}{_SPACE}+{_WORD_CHAR}+{_SPACE}+{_WORD_CHAR}"


def basic_expr() -> pl.Expr:
    """DataComp's basic filter: words as in Python's text.split(), characters as Python's len()
    (code points). Written as polars expressions so it runs inside the one lazy query."""
    caption = pl.col("caption").fill_null("")
    short_side = pl.min_horizontal("width", "height")  # ignores nulls: checked separately below
    long_side = pl.max_horizontal("width", "height")
    return ((pl.col("lang_datacomp") == "en")
            & pl.col("width").is_not_null() & pl.col("height").is_not_null()
            & caption.str.contains(_THREE_WORDS)
            & (caption.str.len_chars() > BASIC_MIN_CHARS_EXCLUSIVE)
            & (short_side >= BASIC_MIN_SIDE)
            & (long_side.cast(pl.Float64) / short_side.cast(pl.Float64) <= BASIC_MAX_ASPECT))


BASIC_TEXT = (f'basic(lang_datacomp == "en", words > 2, chars > {BASIC_MIN_CHARS_EXCLUSIVE}, '
              f"min(width, height) >= {BASIC_MIN_SIDE}, max/min side <= {BASIC_MAX_ASPECT})")


def parse_where(text: str) -> pl.Expr:
    """A user's `--where` as a polars SQL expression: parsed, never evaluated as Python, at most MAX_WHERE_OPERATORS
    operators (polars' optimiser takes time quadratic in a chain's length: 2,000 ORs took 27 s and 1.5 GB)."""
    try:
        expr = pl.sql_expr(text)
    except Exception as exc:  # polars raises several SQL error types; all mean "bad expression"
        raise UserError(f"--where: cannot parse {text!r} as a SQL condition ({_first_words(exc)})") from None
    operators = where_operators(expr)
    if operators > MAX_WHERE_OPERATORS:
        raise UserError(f"--where: {operators} operators, more than {MAX_WHERE_OPERATORS}; for a list of values write "
                        "`column IN (v1, v2, ...)` (one operator however long the list)")
    return expr


def where_operators(expr: pl.Expr) -> int:
    """Operator nodes (binary operators and functions) in a parsed expression, counted in polars' own serialisation
    (a 2,000-term chain is ~2,000 levels deep: too deep to walk as nested JSON objects)."""
    plan = expr.meta.serialize(format="json")
    return plan.count('{"BinaryExpr"') + plan.count('{"Function"')


def _first_words(exc: Exception, limit: int = 120) -> str:
    """The start of a parser error: polars' SQL errors append ~500 characters of parser internals (a Rust debug dump)."""
    text = " ".join(str(exc).split())
    head, sep, tail = text.partition(": ")
    if sep and "{" in tail:
        text = head
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def clauses(config: FilterConfig) -> list[Clause]:
    """The config's clauses in application order (status first; fraction handled by the query)."""
    found = [_clause("status", pl.col("status") == OK, f'status == "{OK}"', "status")]
    if config.basic:
        found.append(_clause("basic", basic_expr(), BASIC_TEXT, "--basic"))
    if config.lang is not None:
        expr, text = pl.col("lang") == config.lang, f'lang == "{config.lang}"'
        if config.min_lang_prob is not None:
            expr, text = expr & (pl.col("lang_prob") >= config.min_lang_prob), f"{text} and lang_prob >= {config.min_lang_prob}"
        found.append(_clause("lang", expr, text, "--lang"))
    for kind in config.dedup:
        found.append(_clause(f"dedup_{kind}", pl.col(DEDUP_KINDS[kind]), DEDUP_KINDS[kind], f"--dedup {kind}"))
    if config.semdedup:
        found.append(_clause("semdedup", pl.col("semdedup_keep"), "semdedup_keep", "--semdedup"))
    if config.where is not None:
        found.append(_clause("where", parse_where(config.where), f"where({config.where})", "--where"))
    if config.min_score is not None:
        found.append(_clause("min_score", pl.col(config.score) >= config.min_score,
                             f"{config.score} >= {config.min_score}", "--min-score"))
    return found
