"""Fashion-MNIST's test set (from Debian's `dataset-fashion-mnist` package) as an eval set.

The package installs the original idx files (`t10k-images-idx3-ubyte.gz`,
`t10k-labels-idx1-ubyte.gz`, ...) under `/usr/share/datasets/fashion-mnist/`;
we ask `dpkg -L` where they are and fall back to that folder. `--source DIR` reads
the same files from anywhere else (e.g. Zalando's own download).

The idx format is four big-endian header fields and raw bytes; numpy reads it in
three lines, so no data-set library is needed. `n` images are taken class-balanced
(the first n/10 of each class in test-set order), written as 28×28 grayscale PNGs.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

from tierclip.curate.errors import UserError
from tierclip.train.eval_convert import ConvertReport, staged_out, write_classification_set

DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
CLASSNAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
TEMPLATES = ("a photo of a {}.", "a black and white photo of a {}.", "a low resolution photo of a {}.",
             "a product photo of a {}.", "a photo of the {}.")
IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # number of dimensions -> magic number of an unsigned-byte idx file
NAME = "fashion_mnist"


def debian_source_dir() -> Path:
    """The folder holding the Debian package's idx files, or a UserError saying how to install it."""
    listed = _dpkg_listed_files()
    candidates = [p.parent for p in listed if p.name.startswith(TEST_IMAGES)] + [DEBIAN_DIR]
    for folder in candidates:
        if _idx_file(folder, TEST_IMAGES) and _idx_file(folder, TEST_LABELS):
            return folder
    raise UserError(f"Fashion-MNIST not found: Debian's {DEBIAN_PACKAGE} package is not installed "
                    f"(`sudo apt-get install -y {DEBIAN_PACKAGE}`), or pass --source DIR holding {TEST_IMAGES}.gz and {TEST_LABELS}.gz")


def read_test_set(source: Path):
    """(images uint8 [N, 28, 28], labels uint8 [N]) of the test split in `source`."""
    images_path, labels_path = _idx_file(source, TEST_IMAGES), _idx_file(source, TEST_LABELS)
    if not images_path or not labels_path:
        raise UserError(f"{source}: expected {TEST_IMAGES}[.gz] and {TEST_LABELS}[.gz]")
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if len(images) != len(labels) or labels.max(initial=0) >= len(CLASSNAMES):
        raise UserError(f"{labels_path}: {len(labels)} labels (max {labels.max(initial=0)}) do not fit {len(images)} images of 10 classes")
    return images, labels


def read_idx(path: Path, ndim: int):
    """An unsigned-byte idx file (plain or .gz) as a numpy array."""
    import numpy as np

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    header = np.frombuffer(data[:4 * (1 + ndim)], dtype=">u4")
    if len(header) != 1 + ndim or header[0] != IDX_MAGIC[ndim]:
        raise UserError(f"{path}: not an idx file of {ndim} dimension(s) (magic {header[:1]})")
    shape = tuple(int(n) for n in header[1:])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 * (1 + ndim))
    if body.size != int(np.prod(shape)):
        raise UserError(f"{path}: truncated ({body.size} bytes of data, header says {shape})")
    return body.reshape(shape)


def balanced_indices(labels, n: int) -> list[int]:
    """The first n indices in the order (rank within class, index): classes balanced to within one image."""
    counts: dict[int, int] = {}
    ranks = []
    for label in labels.tolist():
        ranks.append(counts.get(label, 0))
        counts[label] = ranks[-1] + 1
    order = sorted(range(len(ranks)), key=lambda i: (ranks[i], i))
    return sorted(order[:n])


def convert_fashion_mnist(out: Path, n: int = 2000, source: Path | None = None) -> ConvertReport:
    from PIL import Image
    from tierclip.curate.progress import progress

    out = Path(out)
    images, labels = read_test_set(Path(source) if source else debian_source_dir())
    if not 1 <= n <= len(labels):
        raise UserError(f"--n {n}: choose between 1 and {len(labels)} test images")
    with staged_out(out) as work:
        files, names = [], []
        for index in progress(balanced_indices(labels, n), desc="fashion-mnist", unit="image"):
            relative = f"images/{index:05d}.png"
            Image.fromarray(images[index]).save(work / relative)  # uint8 H×W: a grayscale ("L") PNG
            files.append(relative)
            names.append(CLASSNAMES[labels[index]])
        write_classification_set(work, NAME, files, names, list(CLASSNAMES), TEMPLATES)
    return ConvertReport(out, len(files), len(CLASSNAMES), {})


def _idx_file(folder: Path, stem: str) -> Path | None:
    for path in (folder / f"{stem}.gz", folder / stem):
        if path.is_file():
            return path
    return None


def _dpkg_listed_files() -> list[Path]:
    if not shutil.which("dpkg"):
        return []
    listed = subprocess.run(["dpkg", "-L", DEBIAN_PACKAGE], capture_output=True, text=True, check=False)
    return [Path(line) for line in listed.stdout.splitlines()] if listed.returncode == 0 else []
