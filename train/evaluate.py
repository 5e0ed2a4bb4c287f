"""Zero-shot classification and image-text retrieval of an open_clip model on eval sets.

An eval set (format: `curate/evalset.py`) declares its tasks; every task of
every eval set given becomes rows of `eval.jsonl`:

    {"task": "shape", "metric": "top1", "value": 0.43, "random_score": 0.125, "evalset": "synth-eval", "n": 800}

- `zeroshot` tasks: a classifier built with `open_clip.build_zero_shot_classifier`
  (per class: the L2-normalised text embeddings of every template, averaged and
  renormalised), then top-1 and, when there are more than 5 classes, top-5
  accuracy (with 5 or fewer classes top-5 is 1 by construction).
  `random_score` = k / n_classes; `majority_score` = the share of images in
  the k most frequent classes (always answering them: the majority baseline,
  equal to k / n_classes on balanced classes).
- `retrieval` tasks: recall@1/5/10 both ways, as clip_benchmark computes them,
  in two conventions (see `train/eval_metrics.py`): clip_benchmark's (one query
  per caption row; `image_retrieval_recall@k`, `text_retrieval_recall@k`) and
  ours with identical captions merged (`t2i_recall_merged@k`,
  `i2t_recall_merged@k`); `random_score` is the exact expected recall of a
  random ranking (k / N with one positive per query). A recall@k with k at
  least the number of candidates is 1 by construction and left out.

Image embeddings are computed once per eval set and shared by its tasks.
"""

from __future__ import annotations

import json
from pathlib import Path

from tierclip.curate import atomic
from tierclip.curate.errors import UserError
from tierclip.curate.evalset import EvalSet, read_evalset

RECALL_KS = (1, 5, 10)
TOP5_MIN_CLASSES = 6


def evaluate_model(model, preprocess, tokenizer, eval_root, device="cpu", batch_size=256) -> list[dict]:
    """Every task of the eval set at `eval_root` → eval.jsonl rows. `model` must already be on `device`."""
    import torch

    evalset = read_evalset(eval_root)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _autocast(device):
            image_features = _image_features(model, preprocess, evalset, device, batch_size)
            rows = []
            for task in evalset.tasks:
                task_rows = TASK_KINDS[task["kind"]](model, tokenizer, evalset, task, image_features, device, batch_size)
                rows += [{**row, "task": task["name"], "evalset": evalset.name} for row in task_rows]
    finally:
        model.train(was_training)
    return rows


def evaluate_zeroshot(model, tokenizer, evalset: EvalSet, task: dict, image_features, device, batch_size) -> list[dict]:
    import open_clip
    import torch
    from tierclip.train.eval_metrics import majority_share, topk_accuracy, zeroshot_chance

    classnames = list(task["classnames"])
    labels, row_index = _label_indices(evalset, task, classnames)
    classifier = open_clip.build_zero_shot_classifier(model, tokenizer, classnames, task["templates"], device=device)
    logits = image_features[row_index].to(device) @ classifier.float()
    targets = torch.tensor(labels, device=device)
    ks = (1, 5) if len(classnames) >= TOP5_MIN_CLASSES else (1,)
    return [{**_row(f"top{k}", topk_accuracy(logits, targets, k), zeroshot_chance(len(classnames), k), len(labels)),
             "majority_score": majority_share(labels, k)} for k in ks]


def evaluate_retrieval(model, tokenizer, evalset: EvalSet, task: dict, image_features, device, batch_size) -> list[dict]:
    import polars as pl
    from tierclip.train.eval_metrics import retrieval_metrics

    frame = evalset.samples.with_row_index("_row").filter(pl.col(task["caption_column"]).is_not_null())
    if frame.height == 0:
        raise UserError(f"{evalset.root / 'samples.parquet'}: task {task['name']!r} has no rows with a caption")
    files, image_ids = _unique_ids(frame["file"].to_list())
    captions, text_ids = _unique_ids(frame[task["caption_column"]].to_list())
    first_row_of_file = dict(zip(reversed(image_ids), reversed(frame["_row"].to_list()), strict=True))
    images = image_features[[first_row_of_file[i] for i in range(len(files))]].to(device)
    texts = _text_features(model, tokenizer, captions, device, batch_size)  # each distinct caption encoded once
    scores = texts @ images.T
    return [_row(metric, value, chance, n) for metric, value, chance, n in retrieval_metrics(scores, text_ids, image_ids, RECALL_KS)]


# One dict from task kind to its evaluator (the kinds `curate/evalset.py` accepts).
TASK_KINDS = {"zeroshot": evaluate_zeroshot, "retrieval": evaluate_retrieval}


def main_metrics(rows: list[dict]) -> dict[str, float]:
    """results.json's `metrics`: every eval row as {"task/metric": value}."""
    return {f"{row['task']}/{row['metric']}": row["value"] for row in rows}


def evaluate_run(run_dir, eval_roots, device=None, batch_size=256) -> list[dict]:
    """Load RUN/checkpoint.pt, evaluate it on every eval set and merge the rows into RUN/eval.jsonl (`merge_eval_rows`:
    a re-evaluated task replaces its old rows, other eval sets' rows are kept); rebuild results.json's `metrics`
    from the merged rows when the run has one. Both files are written atomically. Returns the merged rows."""
    from tierclip.curate.devices import resolve_device

    run_dir = Path(run_dir)
    device = resolve_device(device or "auto")
    evalsets = [read_evalset(root) for root in eval_roots]  # fail on a bad eval set before loading a model
    _check_unique_task_names(evalsets)
    earlier = read_eval_file(run_dir / EVAL_FILE)
    _check_task_owners(run_dir / EVAL_FILE, earlier, evalsets)
    model, preprocess, tokenizer = load_run_model(run_dir, device)
    rows = [row for evalset in evalsets for row in evaluate_model(model, preprocess, tokenizer, evalset.root, device, batch_size)]
    merged = merge_eval_rows(earlier, rows)
    write_eval_rows(run_dir / EVAL_FILE, merged)
    _rebuild_results_metrics(run_dir / RESULTS_FILE, merged)
    return merged


EVAL_FILE, RESULTS_FILE = "eval.jsonl", "results.json"


def read_eval_file(path: Path) -> list[dict]:
    """The rows of an existing eval.jsonl ([] when there is none); a line that is not an eval row is a UserError."""
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not {"task", "metric", "value"} <= set(row):
            raise UserError(f"{path}: line {number} is not an eval row; move the file aside to evaluate from scratch")
        rows.append(row)
    return rows


def merge_eval_rows(earlier: list[dict], new: list[dict]) -> list[dict]:
    """Earlier rows of tasks not re-evaluated, then the new rows: a task re-evaluated on its eval set replaces every
    earlier row of that (eval set, task), the newest wins (an earlier row without an eval set matches by task)."""
    fresh = {(row["evalset"], row["task"]) for row in new}
    fresh_tasks = {task for _, task in fresh}

    def replaced(row: dict) -> bool:
        return (row.get("evalset"), row["task"]) in fresh or (row.get("evalset") is None and row["task"] in fresh_tasks)

    return [row for row in earlier if not replaced(row)] + new


def _check_task_owners(path: Path, earlier: list[dict], evalsets: list[EvalSet]) -> None:
    """A task name already in eval.jsonl from another eval set would give results.json two values for one key."""
    owners = {row["task"]: row["evalset"] for row in earlier if row.get("evalset") is not None}
    for evalset in evalsets:
        for task in evalset.tasks:
            other = owners.get(task["name"])
            if other is not None and other != evalset.name:
                raise UserError(f"{path}: task {task['name']!r} is already there from eval set {other!r}; eval set "
                                f"{evalset.name!r} ({evalset.root}) uses the same task name: rename one")


def _rebuild_results_metrics(path: Path, rows: list[dict]) -> None:
    """results.json's `metrics` from the merged eval rows, so the two files agree (nothing when there is no results.json)."""
    if not path.is_file():
        return
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path}: not valid JSON, so its metrics cannot be updated; eval.jsonl was written") from None
    if not isinstance(results, dict):
        raise UserError(f"{path}: not a JSON object, so its metrics cannot be updated; eval.jsonl was written")
    atomic.write_json(path, {**results, "metrics": main_metrics(rows)})


def load_run_model(run_dir: Path, device: str):
    """(model, eval preprocess, tokenizer) of a run's final checkpoint, with the run's own model configs registered."""
    from tierclip.curate.clipmodels import get_tokenizer, load_model, register_model_configs

    config_path, checkpoint = run_dir / "config.json", run_dir / "checkpoint.pt"
    if not config_path.is_file():
        raise UserError(f"{run_dir}: not a run folder (no config.json)")
    if not checkpoint.is_file():
        raise UserError(f"{checkpoint}: no such checkpoint (is the run finished?)")
    model_name = json.loads(config_path.read_text()).get("model")
    if not model_name:
        raise UserError(f"{config_path}: no 'model' key")
    if (run_dir / "model_configs").is_dir():
        register_model_configs(run_dir / "model_configs")
    model, _, preprocess = load_model(model_name, str(checkpoint), device=device, flag=f"{config_path}: model",
                                      hint=f"neither an open_clip config nor in {run_dir / 'model_configs'}")
    return model, preprocess, get_tokenizer(model_name)


def write_eval_rows(path: Path, rows: list[dict]) -> None:
    atomic.write_bytes(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode("utf-8"))


def _row(metric: str, value: float, random_score: float, n: int) -> dict:
    return {"metric": metric, "value": value, "random_score": random_score, "n": n}


def _image_features(model, preprocess, evalset: EvalSet, device, batch_size):
    """L2-normalised image embeddings of every row of samples.parquet, in row order (float32, on CPU)."""
    import torch
    from tierclip.curate.progress import progress

    files = evalset.samples["file"].to_list()
    chunks = []
    for start in progress(range(0, len(files), batch_size), desc=f"eval {evalset.name}: images", unit="batch", leave=False):
        batch = torch.stack([_load_image(evalset, preprocess, start + i, f) for i, f in enumerate(files[start:start + batch_size])])
        chunks.append(model.encode_image(batch.to(device), normalize=True).float().cpu())
    return torch.cat(chunks)


def _text_features(model, tokenizer, texts: list[str], device, batch_size):
    import torch

    chunks = [model.encode_text(tokenizer(texts[start:start + batch_size]).to(device), normalize=True).float()
              for start in range(0, len(texts), batch_size)]
    return torch.cat(chunks)


def _load_image(evalset: EvalSet, preprocess, row: int, file: str):
    from tierclip.curate.images import ImageDecodeError, decode_image

    try:
        return preprocess(decode_image(evalset.image_path(file).read_bytes()))
    except (OSError, ImageDecodeError) as exc:
        reason = exc if isinstance(exc, ImageDecodeError) else exc.strerror
        raise UserError(f"{evalset.root / 'samples.parquet'}: row {row}: cannot read image {file!r} ({reason})") from None


def _label_indices(evalset: EvalSet, task: dict, classnames: list[str]) -> tuple[list[int], list[int]]:
    """(class index, row index) of every row with a label; a label outside the class names is an error."""
    position = {name: i for i, name in enumerate(classnames)}
    labels, rows = [], []
    for row, label in enumerate(evalset.samples[task["label_column"]].to_list()):
        if label is None:
            continue
        if label not in position:
            raise UserError(f"{evalset.root / 'samples.parquet'}: row {row}: label {label!r} is not a class name of task {task['name']!r}")
        labels.append(position[label])
        rows.append(row)
    if not rows:
        raise UserError(f"{evalset.root / 'samples.parquet'}: task {task['name']!r} has no labelled rows")
    return labels, rows


def _unique_ids(values: list) -> tuple[list, list[int]]:
    """(distinct values in first-seen order, index of each value among them)."""
    index: dict = {}
    ids = [index.setdefault(value, len(index)) for value in values]
    return list(index), ids


def _check_unique_task_names(evalsets: list[EvalSet]) -> None:
    seen: dict[str, Path] = {}
    for evalset in evalsets:
        for task in evalset.tasks:
            if task["name"] in seen:
                raise UserError(f"{evalset.root / 'evalset.json'}: task name {task['name']!r} is also used by {seen[task['name']]};"
                                " rename one so eval.jsonl rows stay distinct")
            seen[task["name"]] = evalset.root


def _autocast(device):
    """bf16 autocast on CUDA (as training), nothing on CPU."""
    import contextlib

    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16) if str(device).startswith("cuda") else contextlib.nullcontext()
