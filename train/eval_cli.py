"""`train eval RUN --eval EVAL` and `train make-evalset folder|fashion-mnist|clip-benchmark`."""

from __future__ import annotations

from pathlib import Path

import typer
from tierclip.curate.cliopts import checked
from tierclip.curate.cliutil import new_app
from tierclip.curate.devices import DEVICE_PATTERN

make_evalset_app = new_app("Convert data into the eval-set format that `train eval` reads (one task list: evalset.json).")


def eval_run(
    run: Path = typer.Argument(..., help="Run folder (config.json, checkpoint.pt, model_configs/) written by `train run`."),
    eval: list[Path] = typer.Option(..., "--eval", help="Eval-set folder (evalset.json); repeat for several."),
    device: str = checked("auto", "--device", kind=str, pattern=DEVICE_PATTERN,
                          help="auto (cuda when available, else cpu), cpu, cuda or a device such as cuda:1."),
    batch_size: int = checked(256, "--batch-size", ge=1, help="Images (and captions) encoded per forward pass."),
) -> None:
    """Evaluate a run's final checkpoint zero-shot on eval sets; merge the rows into RUN/eval.jsonl (earlier rows of
    other eval sets are kept, a re-evaluated task is replaced), update results.json's metrics, print every row."""
    from tierclip.curate.cliutil import print_table
    from tierclip.train.checkpoint import check_readable
    from tierclip.train.evaluate import evaluate_run

    if (run / "checkpoint.pt").is_file():  # a cut or damaged checkpoint: one line naming it, not a torch traceback
        check_readable(run / "checkpoint.pt")
    rows = evaluate_run(run, eval, device=device, batch_size=batch_size)
    print_table([(r.get("evalset", "–"), r["task"], r["metric"], f"{r['value']:.4f}", _score(r.get("random_score")),
                  _score(r.get("majority_score")), r.get("n", "–")) for r in rows],
                ("eval set", "task", "metric", "value", "random", "majority", "n"))
    tail = f"; updated the metrics of {run / 'results.json'}" if (run / "results.json").is_file() else ""
    print(f"wrote {run / 'eval.jsonl'} ({len(rows)} rows){tail}")


def _score(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "–"


def make_folder(
    source: Path = typer.Argument(..., help="Folder with one sub-folder of images per class (optional classnames.txt, templates.txt)."),
    out: Path = typer.Option(..., help="New eval-set folder to write."),
    name: str = typer.Option(None, help="Task name in eval.jsonl (default: the source folder's name)."),
    templates: Path = typer.Option(None, help="Prompt templates, one per line with {} for the class name "
                                   "(default: SOURCE/templates.txt, else CLIP-style defaults)."),
) -> None:
    """Convert a folder-of-classes image set (DIR/CLASS/*.png|jpg) into an eval set with one zero-shot task."""
    from tierclip.train.eval_convert import convert_folder

    _report(convert_folder(source, out, name=name, templates_path=templates))


def make_fashion_mnist(
    out: Path = typer.Option(..., help="New eval-set folder to write."),
    n: int = checked(2000, "--n", ge=1, help="Test images to take, class-balanced (the test split has 10,000)."),
    source: Path = typer.Option(None, help="Folder with t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) "
                                "(default: where Debian's dataset-fashion-mnist installs them)."),
) -> None:
    """Fashion-MNIST's test split (Debian package dataset-fashion-mnist) as a 10-class zero-shot eval set."""
    from tierclip.train.fashion_mnist import convert_fashion_mnist

    _report(convert_fashion_mnist(out, n=n, source=source))


def make_clip_benchmark(
    dataset: str = typer.Argument(..., help="clip_benchmark data set name, e.g. cifar10, mnist, flickr30k, mscoco_captions."),
    out: Path = typer.Option(..., help="New eval-set folder to write."),
    download_root: Path = typer.Option(Path("clip_benchmark_data"), help="Where clip_benchmark downloads the raw data."),
    split: str = typer.Option("test", help="Split to convert."),
    n: int = checked(None, "--n", ge=1, help="Convert only the first N images (default: all)."),
) -> None:
    """A clip_benchmark data set by name (needs `pip install clip-benchmark` and a network)."""
    from tierclip.train.eval_convert import convert_clip_benchmark

    _report(convert_clip_benchmark(dataset, out, download_root / dataset, split=split, limit=n))


def _report(report) -> None:
    skipped = ", ".join(f"{count} {reason}" for reason, count in report.skipped.items() if count) or "none"
    print(f"wrote {report.out}: {report.n_images} images, {report.n_classes} classes; skipped: {skipped}")


make_evalset_app.command("folder")(make_folder)
make_evalset_app.command("fashion-mnist")(make_fashion_mnist)
make_evalset_app.command("clip-benchmark")(make_clip_benchmark)
