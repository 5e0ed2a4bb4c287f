"""`.ci/setup-debian.sh`: installs the missing packages of a list when root/sudo can, else stops with one command.

The real `dpkg-query`, `apt-get`, `id` and `sudo` are replaced by small scripts on PATH that log their
arguments, so nothing is installed or removed on this machine.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "setup-debian.sh"


def fake_bin(tmp_path: Path, installed: set[str], uid: int, sudo_ok: bool | None) -> Path:
    """A PATH folder whose dpkg-query knows `installed`, whose id -u prints `uid`; sudo absent when sudo_ok is None."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "log"
    scripts = {
        "dpkg-query": "pkg=\"${@: -1}\"\ncase \" $FAKE_INSTALLED \" in *\" $pkg \"*) printf 'install ok installed';;"
                      " *) echo \"dpkg-query: no packages found matching $pkg\" >&2; exit 1;; esac",
        "apt-get": f'echo "apt-get DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> {log}',
        "id": f'[ "$1" = -u ] && echo {uid}',
    }
    if sudo_ok is not None:
        scripts["sudo"] = (f'echo "sudo $*" >> {log}\n[ "$1" = -n ] && [ "$2" = true ] && exit {0 if sudo_ok else 1}\n'
                           'shift; exec "$@"')
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)
    return bin_dir


def run_script(tmp_path: Path, installed: set[str], uid: int = 0, sudo_ok: bool | None = None, optional: bool = False):
    listing = tmp_path / "packages.txt"
    listing.write_text("# test packages\npkg-a\n\npkg-b   # trailing comment\n  pkg-c\n")
    bin_dir = fake_bin(tmp_path, installed, uid, sudo_ok)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_INSTALLED": " ".join(sorted(installed))}
    env.pop("DEBIAN_FRONTEND", None)
    flags = ["--optional"] if optional else []
    proc = subprocess.run(["bash", str(SCRIPT), *flags, str(listing)], env=env, capture_output=True, text=True, timeout=60)
    log = (tmp_path / "log").read_text().splitlines() if (tmp_path / "log").exists() else []
    return proc, log


def test_nothing_to_do_when_all_installed(tmp_path):
    proc, log = run_script(tmp_path, {"pkg-a", "pkg-b", "pkg-c"}, uid=1000, sudo_ok=None)
    assert proc.returncode == 0, proc.stderr
    assert log == []


def test_root_installs_only_the_missing_ones_after_one_update(tmp_path):
    proc, log = run_script(tmp_path, {"pkg-b"}, uid=0)
    assert proc.returncode == 0, proc.stderr
    assert log == [
        "apt-get DEBIAN_FRONTEND=noninteractive -o DPkg::Lock::Timeout=600 update -qq",
        "apt-get DEBIAN_FRONTEND=noninteractive -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends pkg-a pkg-c",
    ]


def test_passwordless_sudo_is_used_when_not_root(tmp_path):
    proc, log = run_script(tmp_path, {"pkg-a", "pkg-c"}, uid=1000, sudo_ok=True)
    assert proc.returncode == 0, proc.stderr
    apt = [line for line in log if line.startswith("apt-get")]
    assert apt[-1] == "apt-get DEBIAN_FRONTEND=noninteractive -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends pkg-b"
    assert any(line.startswith("sudo -n env DEBIAN_FRONTEND=noninteractive apt-get") for line in log)


@pytest.mark.parametrize("sudo_ok", [False, None], ids=["sudo-asks-password", "no-sudo"])
def test_without_root_or_sudo_stops_with_the_one_command(tmp_path, sudo_ok):
    proc, log = run_script(tmp_path, {"pkg-b"}, uid=1000, sudo_ok=sudo_ok)
    assert proc.returncode == 1
    assert not [line for line in log if line.startswith("apt-get")]
    lines = proc.stderr.strip().splitlines()
    assert lines == ["error: missing Debian packages the tests need; "
                     "run: sudo apt-get update && sudo apt-get install -y --no-install-recommends pkg-a pkg-c"]


def test_the_project_list_names_the_test_data_and_the_browser():
    listing = (ROOT / ".ci" / "debian-packages.txt").read_text().splitlines()
    names = {line.split("#")[0].strip() for line in listing} - {""}
    assert {"dataset-fashion-mnist", "chromium"} <= names


def test_just_test_runs_the_debian_setup_before_pytest():
    justfile = (ROOT / "Justfile").read_text()
    test_line = next(line for line in justfile.splitlines() if line.startswith("test "))
    assert "setup-debian" in test_line.split(":")[1]
    assert "bash .ci/setup-debian.sh" in justfile
    assert "apt-get" not in (ROOT / ".ci" / "run").read_text()


def test_optional_packages_are_skipped_with_one_line_without_root(tmp_path):
    proc, log = run_script(tmp_path, {"pkg-b"}, uid=1000, sudo_ok=None, optional=True)
    assert proc.returncode == 0 and log == []
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("skipping the Debian packages pkg-a pkg-c")


def test_optional_packages_install_without_recommends_as_root(tmp_path):
    proc, log = run_script(tmp_path, {"pkg-b"}, uid=0, optional=True)
    assert proc.returncode == 0, proc.stderr
    assert log[-1].endswith("install -y -qq --no-install-recommends pkg-a pkg-c")
