"""Collect finished training runs into one tidy polars frame.

A run folder (written by `train run`) holds `config.json`, `eval.jsonl`,
`results.json` and `DONE` (written last). `collect` turns every finished run
into rows of one frame, one row per run x task x metric:

    run, tier, method, model, pool, subset, subset_size, unique_samples, samples_seen,
    repetitions, gflops, gflops_per_sample, wall_time_s, seed, tier_set, rule, samples_per_s,
    fraction, tier_kind, augmentation, pool_source,
    model_family, params, image_params, text_params, embedding_params, image_size, image_width,
    image_depth, text_width, text_depth, text_context, vocab_size,
    task, metric, value, random_score, majority_score, share_<gt column> ...

The model columns are what `train run` recorded from the instantiated model (null for runs written
before it did); `samples_per_s` is the measured training throughput; `pool_source` is the pool.json
`source` text config.json copied (where the data came from, for the data cards).

`share_gt_*` columns hold the subset manifest's `gt_shares` (synthetic pools
only; null otherwise), so the data card of each tier is a `unique` away.

Nothing is mixed in silently: a run without `DONE` is listed as a problem and
left out; a missing or malformed `results.json` or `eval.jsonl` becomes a
problem naming the file (and line), and every other run is still collected.
A run whose results.json holds a non-finite number or trained on nothing
(`samples_seen: 0`) is left out as malformed; an eval line whose value is not
a finite number is skipped as a malformed line.
"""

from __future__ import annotations

import glob
import json
import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from tierclip.analysis.augmentation import augmentation_of

RUN_FILES = ("DONE", "results.json", "config.json", "eval.jsonl", "metrics.jsonl")
REQUIRED_RESULTS = ("method", "samples_seen")
RUN_COLUMNS = {
    "run": pl.Utf8, "tier": pl.Utf8, "method": pl.Utf8, "model": pl.Utf8, "pool": pl.Utf8, "subset": pl.Utf8,
    "subset_size": pl.Int64, "unique_samples": pl.Int64, "samples_seen": pl.Int64, "repetitions": pl.Float64,
    "gflops": pl.Float64, "gflops_per_sample": pl.Float64, "wall_time_s": pl.Float64, "seed": pl.Int64,
    "tier_set": pl.Utf8, "rule": pl.Utf8, "samples_per_s": pl.Float64,
    # from the subset manifest: the tier's top-k fraction (1.0 = every candidate) and kind (nested, bins, random)
    "fraction": pl.Float64, "tier_kind": pl.Utf8,
    # from config.json: the image augmentation the run trained with (analysis.augmentation), the pool's source text
    "augmentation": pl.Utf8, "pool_source": pl.Utf8,
    # the model, as train run recorded it from the instantiated model (train.models.describe_model)
    "model_family": pl.Utf8, "params": pl.Int64, "image_params": pl.Int64, "text_params": pl.Int64,
    "embedding_params": pl.Int64, "image_size": pl.Int64, "image_width": pl.Int64, "image_depth": pl.Int64,
    "text_width": pl.Int64, "text_depth": pl.Int64, "text_context": pl.Int64, "vocab_size": pl.Int64,
}
EVAL_COLUMNS = {"task": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64, "random_score": pl.Float64,
                "majority_score": pl.Float64}
POSITIVE = ("samples_seen", "subset_size", "unique_samples")  # a finished run has trained on something
SHARE_PREFIX = "share_"
WHOLE_POOL = "all"  # the tier of a run trained on the whole pool (no subset), as `train sweep` names it


@dataclass(frozen=True)
class Problem:
    """Something wrong with one run: `kind` is incomplete | missing | malformed | empty | path."""

    path: str
    kind: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}: line {self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class RunError(Exception):
    """A run that cannot be collected; carries the problem that says why."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema={**RUN_COLUMNS, **EVAL_COLUMNS})


def find_runs(inputs: list[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Run folders named by the inputs: run folders, globs, or folders holding run folders (searched down)."""
    runs, problems = [], []
    for item in inputs:
        paths = [Path(p) for p in sorted(glob.glob(str(item)))] if glob.has_magic(str(item)) else [Path(item)]
        if not paths or not any(p.exists() for p in paths):
            problems.append(Problem(str(item), "path", "no such file or folder"))
        for path in paths:
            runs.extend(_runs_under(path))
    unique = list(dict.fromkeys(p.resolve() for p in runs))
    return unique, problems


def _runs_under(path: Path) -> list[Path]:
    if not path.is_dir():
        return []
    if is_run_folder(path):
        return [path]
    return [run for child in sorted(path.iterdir()) for run in _runs_under(child)]


def is_run_folder(path: Path) -> bool:
    return any((path / name).exists() for name in RUN_FILES)


def read_json_file(path: Path) -> dict:
    """A JSON object from `path`, or RunError naming the file (and line) when it is missing or malformed."""
    if not path.is_file():
        raise RunError(Problem(str(path), "missing", "file is missing"))
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunError(Problem(str(path), "malformed", f"not valid JSON ({exc.msg}, column {exc.colno})", exc.lineno)) from None
    except UnicodeDecodeError:
        raise RunError(Problem(str(path), "malformed", "not UTF-8 text")) from None
    if not isinstance(obj, dict):
        raise RunError(Problem(str(path), "malformed", f"expected a JSON object, found {type(obj).__name__}"))
    return obj


def read_eval_rows(path: Path) -> tuple[list[dict], list[Problem]]:
    """eval.jsonl rows ({task, metric, value, random_score}); each bad line is a problem, the good ones are kept."""
    rows, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append(_eval_row(row))
        except (json.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
            problems.append(Problem(str(path), "malformed", f"bad eval row ({exc.__class__.__name__}: {exc})", number))
    return rows, problems


def _eval_row(row: dict) -> dict:
    if not isinstance(row, dict):
        raise TypeError("expected a JSON object")
    value = float(row["value"])
    if not math.isfinite(value):
        raise ValueError(f"value is {value}, not a finite number")
    return {"task": str(row["task"]), "metric": str(row["metric"]), "value": value,
            "random_score": _baseline(row.get("random_score")), "majority_score": _baseline(row.get("majority_score"))}


def _baseline(value) -> float | None:
    """A chance or majority score: a finite number, else None (an eval set that does not provide it)."""
    number = None if value is None or isinstance(value, bool) else float(value)
    return number if number is not None and math.isfinite(number) else None


def rows_from_results_metrics(results: dict) -> list[dict]:
    """Fallback when eval.jsonl is missing: results.json `metrics` {"task/metric": value} (no random score)."""
    rows = []
    for key, value in (results.get("metrics") or {}).items():
        task, _, metric = str(key).partition("/")
        rows.append(_eval_row({"task": task, "metric": metric or "value", "value": value}))
    return rows


def run_fields(run_dir: Path, results: dict, config: dict) -> dict:
    """The per-run columns, from results.json first and the subset manifest copy in config.json second."""
    manifest = config.get("subset_manifest") or {}
    fields = {
        "run": results.get("run") or run_dir.name,
        "tier": results.get("tier") or manifest.get("tier") or results.get("subset") or WHOLE_POOL,
        "tier_set": manifest.get("tier_set"),
        "rule": manifest.get("rule"),
        "subset_size": results.get("subset_size", manifest.get("n")),
        "fraction": manifest.get("fraction"),
        "tier_kind": manifest.get("tier_kind"),
        "augmentation": augmentation_of(config),
        "pool_source": _as_text((config.get("pool_info") or {}).get("source")) if isinstance(config.get("pool_info"), dict) else None,
    }
    for name in RUN_COLUMNS:
        fields.setdefault(name, results.get(name))
    fields["pool"] = _as_text(fields["pool"])
    fields["tier_set"] = _as_text(fields["tier_set"])
    fields["rule"] = _as_text(fields["rule"])
    shares = manifest.get("gt_shares") or {}
    fields.update({SHARE_PREFIX + str(col): float(share) for col, share in shares.items()})
    return fields


def _as_text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and "name" in value:
        return str(value["name"])
    return json.dumps(value, sort_keys=True)


def collect_run(run_dir: Path) -> tuple[pl.DataFrame, list[Problem]]:
    """The rows of one finished run, and its (non-fatal) problems; RunError when it cannot be collected."""
    if not (run_dir / "DONE").exists():
        raise RunError(Problem(str(run_dir), "incomplete", "no DONE file: run unfinished, left out"))
    results = read_json_file(run_dir / "results.json")
    missing = [key for key in REQUIRED_RESULTS if results.get(key) is None]
    if missing:
        raise RunError(Problem(str(run_dir / "results.json"), "malformed", f"missing keys: {', '.join(missing)}"))
    problems = []
    try:
        config = read_json_file(run_dir / "config.json")
    except RunError as exc:
        config, problems = {}, [exc.problem]
    eval_path = run_dir / "eval.jsonl"
    if eval_path.is_file():
        rows, eval_problems = read_eval_rows(eval_path)
        problems += eval_problems
    else:
        rows = _results_metrics(run_dir / "results.json", results)
        problems.append(Problem(str(eval_path), "missing", "file is missing; used results.json metrics (no random score)"))
    if not rows:
        raise RunError(Problem(str(eval_path), "empty", "no evaluation rows for this run"))
    try:
        return _run_frame(run_fields(run_dir, results, config), rows), problems
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise RunError(Problem(str(run_dir / "results.json"), "malformed", f"bad value, run left out ({exc})")) from None


def _results_metrics(path: Path, results: dict) -> list[dict]:
    try:
        return rows_from_results_metrics(results)
    except (TypeError, ValueError, AttributeError) as exc:
        raise RunError(Problem(str(path), "malformed", f"bad metrics ({exc})")) from None


def _as_int(value) -> int:
    if isinstance(value, bool) or float(value) != int(float(value)):
        raise ValueError(f"{value!r} is not a whole number")
    return int(float(value))


CASTS = {pl.Utf8: str, pl.Int64: _as_int, pl.Float64: float}


def _run_frame(fields: dict, rows: list[dict]) -> pl.DataFrame:
    """Typed rows; a value of the wrong type (e.g. a text samples_seen) raises ValueError naming it."""
    schema = {**RUN_COLUMNS, **EVAL_COLUMNS, **{k: pl.Float64 for k in fields if k.startswith(SHARE_PREFIX)}}
    typed = {}
    for name, dtype in schema.items():
        if name in fields:
            value = fields[name]
            try:
                typed[name] = None if value is None else CASTS[dtype](value)
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"{name}={value!r} is not {dtype}") from None
    _check_values(typed)
    return pl.DataFrame([{**typed, **row} for row in rows], schema=schema)


def _check_values(typed: dict) -> None:
    """Numbers a fit divides by or takes the log of: positive sizes and budgets, finite floats."""
    for name in POSITIVE:
        if typed.get(name) is not None and typed[name] <= 0:
            raise ValueError(f"{name}={typed[name]}: a finished run has trained on at least one sample")
    for name, value in typed.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name}={value}: not a finite number")


def collect(inputs: list[str | Path]) -> tuple[pl.DataFrame, list[Problem]]:
    """One tidy frame over every finished run under `inputs`, and the problems met on the way."""
    run_dirs, problems = find_runs(inputs)
    frames = []
    for run_dir in run_dirs:
        try:
            frame, run_problems = collect_run(run_dir)
        except RunError as exc:
            problems.append(exc.problem)
            continue
        frames.append(frame)
        problems.extend(run_problems)
    if not frames:
        return empty_frame(), problems
    table = pl.concat(frames, how="diagonal_relaxed")
    return table.sort(["tier", "method", "model", "subset_size", "samples_seen", "seed", "task", "metric"], nulls_last=True), problems


def share_columns(table: pl.DataFrame) -> list[str]:
    return [name for name in table.columns if name.startswith(SHARE_PREFIX)]
