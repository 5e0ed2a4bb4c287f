"""Fashion-MNIST from Debian's dataset-fashion-mnist package: real data, never skipped."""

from __future__ import annotations

import gzip
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from tierclip.curate.errors import UserError
from tierclip.curate.evalset import read_evalset
from tierclip.train import fashion_mnist as fm


def test_debian_package_is_installed():
    """The project's one real test set: CI installs it (`apt-get install -y dataset-fashion-mnist`)."""
    assert shutil.which("dpkg"), "dpkg not found: the Fashion-MNIST test set comes from a Debian package"
    status = subprocess.run(["dpkg", "-s", fm.DEBIAN_PACKAGE], capture_output=True, text=True, check=False)
    assert status.returncode == 0 and "Status: install ok installed" in status.stdout, (
        f"Debian package {fm.DEBIAN_PACKAGE} is not installed: run `sudo apt-get install -y {fm.DEBIAN_PACKAGE}`")
    assert fm.debian_source_dir().is_dir()


def test_convert_reads_real_debian_data(tmp_path):
    report = fm.convert_fashion_mnist(tmp_path / "fm", n=30)
    assert (report.n_images, report.n_classes) == (30, 10)
    evalset = read_evalset(tmp_path / "fm")
    (task,) = evalset.tasks
    assert task["classnames"] == list(fm.CLASSNAMES) and len(task["classnames"]) == 10
    assert all(template.count("{}") == 1 for template in task["templates"])
    labels = evalset.samples["label"].to_list()
    assert sorted(labels) == sorted(list(fm.CLASSNAMES) * 3)  # class-balanced: 3 of each
    # test image 0 of Fashion-MNIST is an ankle boot
    assert dict(zip(evalset.samples["file"], labels, strict=True))["images/00000.png"] == "Ankle boot"
    with Image.open(evalset.image_path(evalset.samples["file"][0])) as image:
        assert image.size == (28, 28) and image.mode == "L"
        assert 0 < np.asarray(image).mean() < 255  # a real picture, not a blank


def test_read_test_set_shapes():
    images, labels = fm.read_test_set(fm.debian_source_dir())
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels).tolist()) == set(range(10))


def test_balanced_indices():
    labels = np.array([0, 0, 0, 1, 2, 1, 0])
    assert fm.balanced_indices(labels, 3) == [0, 3, 4]  # the first of each class
    assert fm.balanced_indices(labels, 5) == [0, 1, 3, 4, 5]


def test_missing_debian_package_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "nowhere")
    monkeypatch.setattr(fm, "_dpkg_listed_files", lambda: [])
    with pytest.raises(UserError, match=r"apt-get install -y dataset-fashion-mnist"):
        fm.convert_fashion_mnist(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_idx_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="expected t10k-images-idx3-ubyte"):
        fm.read_test_set(tmp_path)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(np.array([0x803, 2, 28, 28], dtype=">u4").tobytes() + bytes(100))  # header says 2 images, data is short
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(np.array([0x801, 2], dtype=">u4").tobytes() + bytes([1, 2]))
    with pytest.raises(UserError, match="truncated"):
        fm.read_test_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(np.array([0x999, 2], dtype=">u4").tobytes() + bytes([1, 2]))
    with pytest.raises(UserError, match="not an idx file"):
        fm.read_idx(tmp_path / "t10k-labels-idx1-ubyte", 1)
    with pytest.raises(UserError, match="--n 0"):
        fm.convert_fashion_mnist(tmp_path / "out", n=0)
