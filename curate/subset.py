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
from tierclip.curate import atomic
from tierclip.curate.errors import UserError


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
    from tierclip.curate.pool import check_not_pool_files

    out = Path(out)
    check_not_pool_files(out)
    frame = pl.DataFrame({"uid": pl.Series("uid", uids, dtype=pl.Utf8)}).unique().sort("uid")
    full = {**manifest, "n": frame.height, "tool_version": tool_version(),
            "created": datetime.now(UTC).isoformat(timespec="seconds")}
    created = not out.exists()
    try:  # both files reach their names only when both are written: no half-made subset
        with atomic.atomic_path(out / "uids.parquet") as uids_tmp:
            frame.write_parquet(uids_tmp, compression="zstd", statistics=True)
            atomic.write_json(out / "manifest.json", full)  # uids.parquet gets its name only after this succeeded
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    return Subset(out, frame, full)


def read_subset(path: str | Path) -> Subset:
    path = Path(path)
    uids_path, manifest_path = path / "uids.parquet", path / "manifest.json"
    if not uids_path.is_file():
        raise UserError(f"{path}: not a subset (no uids.parquet)")
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    return Subset(path, pl.read_parquet(uids_path, columns=["uid"]), manifest)


def pool_ref(pool) -> dict:
    """How a manifest names its pool: path, name, and the fingerprint of its uids (Pool.fingerprint), which a
    pool that merely shares the name cannot match."""
    return {"path": str(Path(pool.root).resolve()), "name": pool.info.name, "fingerprint": pool.fingerprint()}


def check_subset_pool(subset: Subset, pool, allow_mismatch: bool = False, option: str = "--allow-pool-mismatch") -> list[str]:
    """Refuse a subset of another pool: by fingerprint (uids), else by name (manifests older than fingerprints).

    With `allow_mismatch` a mismatch is returned as a warning (with how many subset uids the pool lacks)
    instead of raised. Also returns a note when only the name could be checked.
    """
    recorded = subset.manifest.get("pool", {})
    problem = None
    if recorded.get("name") is not None and recorded["name"] != pool.info.name:
        problem = f"subset was built from pool '{recorded['name']}', not '{pool.info.name}' ({pool.root})"
    elif recorded.get("fingerprint") is not None and recorded["fingerprint"] != pool.fingerprint():
        problem = (f"subset was built from another pool named '{pool.info.name}' (its rows differ from {pool.root}: "
                   f"fingerprint {recorded['fingerprint']} vs {pool.fingerprint()})")
    if problem is not None:
        missing = missing_uids(subset, pool)
        problem = f"{subset.path}: {problem}; {missing} of {subset.n} subset uids are not in this pool"
        if not allow_mismatch:
            raise UserError(f"{problem}; use the subset's own pool, or pass {option} to go on without the missing rows")
        return [f"WARNING: {problem}; going on without them ({option})"]
    if recorded.get("fingerprint") is None:
        return [f"note: {subset.path / 'manifest.json'} records no pool fingerprint (written before tierclip kept one); "
                f"only the pool name '{pool.info.name}' was checked"]
    return []


def missing_uids(subset: Subset, pool) -> int:
    """Subset uids that are not rows of the pool."""
    present = pool.scan_meta().select("uid").join(subset.uids.lazy(), on="uid", how="semi").select(pl.len()).collect().item()
    return subset.n - present
