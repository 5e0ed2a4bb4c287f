"""Turn other data into the eval-set format (`curate/evalset.py`), so evaluation has one reader.

- `convert_folder`: a folder-of-classes set `DIR/CLASS/*.png|jpg|...` (torchvision's
  ImageFolder layout) with an optional `DIR/classnames.txt` (`FOLDER<TAB>readable name`
  per line; folders not listed are named after the folder, `_` read as a space) and
  optional templates (`--templates FILE` or `DIR/templates.txt`, one `{}`-template a line).
- `convert_clip_benchmark`: any clip_benchmark classification or retrieval data set by
  name, for users with a network and `pip install clip-benchmark`.
- Fashion-MNIST from Debian's package: `train/fashion_mnist.py`.

Each writes `OUT/images/...`, `OUT/samples.parquet` (file, caption, label) and
`OUT/evalset.json` (one task), first into `.OUT.partial` beside OUT, renamed to
OUT at the end (`staged_out`): a failed or interrupted conversion leaves no
half-made OUT, and a retry starts clean.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tierclip.curate.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
# A few of CLIP's ImageNet prompt templates: generic enough for any object classes.
DEFAULT_TEMPLATES = ("a photo of a {}.", "a blurry photo of a {}.", "a photo of the {}.",
                     "a close-up photo of a {}.", "a low resolution photo of a {}.", "itap of a {}.")


@dataclass(frozen=True)
class ConvertReport:
    out: Path
    n_images: int
    n_classes: int
    skipped: dict  # reason -> count of source files not written


def check_out(out: Path) -> None:
    """The output folder must be new or empty: a converter never mixes two data sets."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: already exists and is not empty; remove it or choose another --out")


@contextmanager
def staged_out(out: Path) -> Iterator[Path]:
    """Yield a fresh work folder (with `images/`) that becomes `out` only when the block finishes.

    The work folder is `.NAME.partial` beside `out` (same file system, so the final rename is atomic);
    on any error or interrupt it is deleted, and a stale one left by a killed run is replaced.
    """
    out = Path(out)
    check_out(out)
    work = out.with_name(f".{out.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "images").mkdir(parents=True)
    try:
        yield work
        check_out(out)  # nobody wrote there meanwhile
        if out.exists():
            out.rmdir()
        work.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_classification_set(out: Path, name: str, files: list[str], labels: list[str], classnames: list[str],
                             templates: Iterable[str]) -> None:
    """Write samples.parquet (no captions) and evalset.json with one zero-shot task named `name`."""
    import polars as pl
    from tierclip.curate.evalset import write_evalset

    templates = list(templates)
    samples = pl.DataFrame({"file": files, "caption": [None] * len(files), "label": labels},
                           schema={"file": pl.String, "caption": pl.String, "label": pl.String})
    tasks = [{"name": name, "kind": "zeroshot", "label_column": "label", "classnames": classnames, "templates": templates}]
    write_evalset(out, name, tasks, samples)


def read_templates(path: Path) -> list[str]:
    """One template per line, each with exactly one `{}`; blank lines and `#` comments ignored."""
    templates = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.count("{}") != 1:
            raise UserError(f"{path}: line {number}: a template needs exactly one {{}} for the class name: {line!r}")
        templates.append(line.strip())
    if not templates:
        raise UserError(f"{path}: no templates")
    return templates


def read_classnames(path: Path, folders: list[str]) -> dict[str, str]:
    """`FOLDER<TAB>readable name` lines → {folder: name}; every folder not listed reads as its own name."""
    names = {folder: folder.replace("_", " ") for folder in folders}
    if not path.is_file():
        return names
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        folder, tab, readable = line.partition("\t")
        if not tab or not readable.strip():
            raise UserError(f"{path}: line {number}: expected FOLDER<TAB>readable name, got {line!r}")
        if folder not in names:
            raise UserError(f"{path}: line {number}: no class folder {folder!r} in {path.parent}")
        names[folder] = readable.strip()
    if len(set(names.values())) < len(names):
        raise UserError(f"{path}: two class folders have the same readable name")
    return names


def convert_folder(source: Path, out: Path, name: str | None = None, templates_path: Path | None = None) -> ConvertReport:
    """Copy a folder-of-classes set into the eval-set format; unreadable images are skipped and counted."""
    source, out = Path(source), Path(out)
    folders = sorted(p.name for p in source.iterdir() if p.is_dir()) if source.is_dir() else []
    if not folders:
        raise UserError(f"{source}: expected a folder with one sub-folder of images per class")
    names = read_classnames(source / "classnames.txt", folders)
    templates_path = templates_path or (source / "templates.txt")
    templates = read_templates(templates_path) if templates_path.is_file() else list(DEFAULT_TEMPLATES)
    with staged_out(out) as work:
        files, labels, skipped = _copy_class_folders(source, work, folders, names)
        if not files:
            raise UserError(f"{source}: no readable images in any class folder")
        write_classification_set(work, name or source.name, files, labels, [names[f] for f in folders], templates)
    return ConvertReport(out, len(files), len(folders), skipped)


def _copy_class_folders(source: Path, out: Path, folders: list[str], names: dict[str, str]):
    from tierclip.curate.progress import progress

    files, labels, skipped = [], [], {"not_an_image_file": 0, "unreadable_image": 0}
    for folder in progress(folders, desc="classes", unit="class"):
        for path in sorted(p for p in (source / folder).iterdir() if p.is_file()):
            reason = _skip_reason(path)
            if reason:
                skipped[reason] += 1
                continue
            relative = f"images/{folder}/{path.name}"
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / relative)
            files.append(relative)
            labels.append(names[folder])
    return files, labels, skipped


def _skip_reason(path: Path) -> str | None:
    from tierclip.curate.images import ImageDecodeError, decode_image

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return "not_an_image_file"
    try:
        decode_image(path.read_bytes())  # the decoder `train eval` will use (curate/images.py)
    except (OSError, ImageDecodeError):
        return "unreadable_image"
    return None


def convert_clip_benchmark(dataset: str, out: Path, download_root: Path, split: str = "test", limit: int | None = None) -> ConvertReport:
    """A clip_benchmark data set (downloaded by clip_benchmark into `download_root`) → eval set."""
    try:
        from clip_benchmark.datasets.builder import build_dataset, get_dataset_default_task
    except ImportError:
        raise UserError("clip-benchmark: the clip_benchmark package is not installed; "
                        "`pip install clip-benchmark` (its data sets also need a network to download)") from None
    out = Path(out)
    check_out(out)  # before any download
    kind = get_dataset_default_task(dataset)
    if kind not in CLIP_BENCHMARK_KINDS:
        raise UserError(f"clip-benchmark: {dataset!r} is a {kind} data set; only {sorted(CLIP_BENCHMARK_KINDS)} convert")
    try:
        data = build_dataset(dataset, root=str(download_root), transform=None, split=split, download=True, task=kind)
    except (ValueError, AssertionError) as exc:  # clip_benchmark's answer to an unknown name or split
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"clip-benchmark: cannot build {dataset!r} (split {split!r}): {detail} "
                        "(names: clip_benchmark's README, e.g. cifar10, mnist, flickr30k, mscoco_captions)") from None
    with staged_out(out) as work:
        report = CLIP_BENCHMARK_KINDS[kind](data, dataset, work, limit)
    return ConvertReport(out, report.n_images, report.n_classes, report.skipped)


def _clip_benchmark_classification(data, dataset: str, out: Path, limit: int | None) -> ConvertReport:
    from tierclip.curate.progress import progress

    if not isinstance(data.templates, list):
        raise UserError(f"clip-benchmark: {dataset!r} has class-specific templates, which the eval-set format does not hold")
    templates = [template.replace("{c}", "{}") for template in data.templates]  # clip_benchmark writes {c}
    classnames = list(data.classes)
    files, labels = [], []
    for index in progress(range(min(len(data), limit or len(data))), desc=dataset, unit="image"):
        image, label = data[index]
        files.append(_save_image(image, out, index))
        labels.append(classnames[int(label)])
    write_classification_set(out, _task_name(dataset), files, labels, classnames, templates)
    return ConvertReport(out, len(files), len(classnames), {})


def _clip_benchmark_retrieval(data, dataset: str, out: Path, limit: int | None) -> ConvertReport:
    import polars as pl
    from tierclip.curate.evalset import write_evalset
    from tierclip.curate.progress import progress

    files, captions = [], []
    for index in progress(range(min(len(data), limit or len(data))), desc=dataset, unit="image"):
        image, texts = data[index]
        file = _save_image(image, out, index)
        files += [file] * len(texts)  # one row per caption: an image with several captions has several positives
        captions += list(texts)
    samples = pl.DataFrame({"file": files, "caption": captions}, schema={"file": pl.String, "caption": pl.String})
    write_evalset(out, _task_name(dataset), [{"name": _task_name(dataset), "kind": "retrieval", "caption_column": "caption"}], samples)
    return ConvertReport(out, len(set(files)), 0, {})


# clip_benchmark task kind → converter (one dict, no dispatch on names).
CLIP_BENCHMARK_KINDS = {"zeroshot_classification": _clip_benchmark_classification, "zeroshot_retrieval": _clip_benchmark_retrieval}


def _save_image(image, out: Path, index: int) -> str:
    relative = f"images/{index:06d}.png"
    from tierclip.curate.images import to_rgb

    to_rgb(as_pil(image, index)).save(out / relative)  # the shared decoder's RGB rule: 16-bit scaled, alpha onto white
    return relative


def as_pil(image, index: int):
    """A data set's image as PIL: PIL as is; a CHW tensor in [0, 1] (clip_benchmark's `dummy`) or an HWC array converted."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    if hasattr(image, "detach"):  # a torch tensor; checked by attribute so torch is imported only when needed
        from torchvision.transforms.functional import to_pil_image

        return to_pil_image(image.detach().cpu())
    if hasattr(image, "__array_interface__"):
        return Image.fromarray(image)
    raise UserError(f"clip-benchmark: item {index} holds a {type(image).__name__}, not an image")


def _task_name(dataset: str) -> str:
    return dataset.replace("/", "_").replace("-", "_")
