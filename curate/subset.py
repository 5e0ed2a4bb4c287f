"""A subset: `uids.parquet` (sorted, unique `uid`) and `manifest.json`.

The manifest records the pool, the rule as text, the thresholds actually
used, the fraction, n, the parent subset, per-clause drop counts, the tool
version and the creation time. A tier set is a folder of subsets plus a
`tiers.json` that orders them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from curate import atomic
from curate.errors import UserError


@dataclass(frozen=True)
class Subset:
    path: Path
    uids: pl.DataFrame  # one column `uid`, sorted, unique
    manifest: dict

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def n(self) -> int:
        return self.uids.height

    @property
    def pool(self) -> str:
        return self.manifest.get("pool", {}).get("path", "")


def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tierclip")
    except PackageNotFoundError:
        return "unknown"


def write_subset(out: str | Path, uids: pl.Series | list[str], manifest: dict) -> Subset:
    """Write sorted unique uids and the manifest (n, tool version and created are filled in)."""
    out = Path(out)
    frame = pl.DataFrame({"uid": pl.Series("uid", uids, dtype=pl.Utf8)}).unique().sort("uid")
    full = {**manifest, "n": frame.height, "tool_version": tool_version(),
            "created": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic.write_parquet(out / "uids.parquet", frame)
    atomic.write_json(out / "manifest.json", full)
    return Subset(out, frame, full)


def read_subset(path: str | Path) -> Subset:
    path = Path(path)
    uids_path, manifest_path = path / "uids.parquet", path / "manifest.json"
    if not uids_path.is_file():
        raise UserError(f"{path}: not a subset (no uids.parquet)")
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    return Subset(path, pl.read_parquet(uids_path, columns=["uid"]), manifest)


def pool_ref(pool) -> dict:
    """How a manifest names its pool: path and name (checked when a subset meets a pool)."""
    return {"path": str(Path(pool.root).resolve()), "name": pool.info.name}


def check_subset_pool(subset: Subset, pool) -> None:
    """A subset from another pool is a user error, named clearly."""
    expected = subset.manifest.get("pool", {}).get("name")
    if expected is not None and expected != pool.info.name:
        raise UserError(
            f"{subset.path}: subset was built from pool '{expected}', not '{pool.info.name}' ({pool.root})"
        )
