"""Where the pool's packages are: the list (packages.txt beside this file) and the folders set-up left them in.

npm packages are unpacked by `just setup-packages` into `CACHE/NAME-VERSION/package/` (CACHE: the
`TIERCLIP_PACKAGES` environment variable, default ~/.cache/tierclip/packages); Debian packages live under
`/usr/share` (`TIERCLIP_DEBIAN_ROOT` moves that root, for a package unpacked with `dpkg -x`). Nothing is
fetched here: a missing package is one line naming it and the set-up command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tierclip.curate.errors import UserError

PACKAGES_FILE = Path(__file__).with_name("packages.txt")
CACHE_ENV, DEBIAN_ROOT_ENV = "TIERCLIP_PACKAGES", "TIERCLIP_DEBIAN_ROOT"
# Where each Debian package puts what the pool reads (relative to the Debian root).
DEBIAN_DATA = {"openclipart-png": "usr/share/openclipart/png", "tuxpaint-stamps-default": "usr/share/tuxpaint/stamps"}
SETUP_HINT = "run `just setup-packages` (.ci/setup-packages.sh)"


@dataclass(frozen=True)
class Package:
    kind: str                  # npm or debian
    name: str
    version: str | None        # npm: the pinned version
    sources: tuple[str, ...]   # the pool sources that read it

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


def read_packages(path: Path = PACKAGES_FILE) -> tuple[Package, ...]:
    """`KIND NAME[@VERSION] SOURCE...` lines; `#` comments and blank lines ignored."""
    packages = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("#", 1)[0].split()
        if parts:
            name, _, version = parts[1].partition("@")
            packages.append(Package(parts[0], name, version or None, tuple(parts[2:])))
    return tuple(packages)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "tierclip" / "packages")


def package_root(package: Package) -> Path:
    """The folder holding the package's files (it may not exist)."""
    if package.kind == "npm":
        return cache_dir() / f"{package.name}-{package.version}" / "package"
    return Path(os.environ.get(DEBIAN_ROOT_ENV) or "/") / DEBIAN_DATA[package.name]


def is_present(package: Package) -> bool:
    root = package_root(package)
    return (root / "package.json").is_file() if package.kind == "npm" else root.is_dir()


def require(package: Package) -> Path:
    """The package's folder, or one line naming what is missing and how to get it."""
    if not is_present(package):
        where = f"{package_root(package).parent} (${CACHE_ENV})" if package.kind == "npm" else str(package_root(package))
        raise UserError(f"{package.kind} package {package.spec} not found: no {where}; {SETUP_HINT}")
    return package_root(package)


def packages_of(source: str) -> tuple[Package, ...]:
    return tuple(p for p in read_packages() if source in p.sources)


def by_name(name: str) -> Package:
    return next(p for p in read_packages() if p.name == name)


def inside(root: Path, relative: str) -> Path:
    """`root / relative`, refused when a path from a package's data file leads outside its folder."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise UserError(f"{root}: data file names {relative!r}, outside the package folder")
    return path
