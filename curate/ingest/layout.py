"""The resumable layout of an ingest: options recorded up front, shards skipped when done, pool.json last.

- `ingest.json` records the source and options when the ingest starts; a re-run into the
  same folder with other options is refused (it would mix two inputs in one pool). When the
  ingest finishes it also holds the counts per status.
- A shard whose `meta/NNNNN.parquet` exists is complete (write_shard writes it last).
- `.tmp-*` files a killed run left behind are removed before anything is written.
- `pool.json` is written last; its `created` is the only field that differs between a
  resumed and an uninterrupted ingest.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from tierclip.curate import atomic
from tierclip.curate.errors import UserError
from tierclip.curate.pool import PoolInfo, check_not_pool_files, write_pool_info

INGEST_FILE = "ingest.json"


def start(out: Path, config: dict) -> None:
    """Create `out` (or resume into it) and remove temporary files a killed run left."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    check_not_pool_files(out, allow_pool_root=True)  # a pool resumed in place, never one inside another's files
    recorded = _recorded_config(out)
    if recorded is None and out.is_dir() and any(p.name != "_img2dataset" for p in out.iterdir()):
        raise UserError(f"{out}: folder is not empty and holds no {INGEST_FILE}; choose a new --out")
    if recorded is not None and recorded != config:
        raise UserError(f"{out / INGEST_FILE}: this pool was ingested with other options ({_diff(recorded, config)}); "
                        "choose a new --out or delete the folder")
    for tmp in out.rglob(".tmp-*"):
        tmp.unlink()
    atomic.write_json(out / INGEST_FILE, {"config": config})


def finish(out: Path, name: str, source: str, report_json: dict, decode: dict | None = None) -> None:
    """`decode`: the decoder limits ingest applied (pool.json `decode`), so every reader applies the same."""
    atomic.write_json(out / INGEST_FILE, {"config": _recorded_config(out), "report": report_json})
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    write_pool_info(out, PoolInfo(name, source, created, report_json["n_rows"], report_json["n_shards"], decode=decode))


def _recorded_config(out: Path) -> dict | None:
    path = out / INGEST_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())["config"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"{path}: unreadable; delete the folder and ingest again") from None


def _diff(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} then {new.get(k)!r}" for k in keys)
