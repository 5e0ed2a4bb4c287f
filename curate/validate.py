"""`curate validate`: check a pool's files against the format and count its rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
from tierclip.curate.errors import UserError
from tierclip.curate.pool import META_COLUMNS, Pool, read_tar_samples
from tierclip.curate.uids import is_uid


@dataclass
class Report:
    n_rows: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_pool(pool: Pool, check_shards: bool = True) -> Report:
    report = Report()
    seen_uids: set[str] = set()
    for shard in pool.shard_ids():
        _check_shard(pool, shard, report, seen_uids, check_shards)
    if report.n_rows != pool.info.n_samples:
        report.problems.append(f"pool.json says n_samples={pool.info.n_samples} but meta has {report.n_rows} rows")
    for stage in pool.stages():
        _check_sidecar(pool, stage, report)
    return report


def _check_shard(pool: Pool, shard: int, report: Report, seen_uids: set[str], check_shards: bool) -> None:
    path = pool.meta_path(shard)
    if not path.is_file():
        report.problems.append(f"{path}: missing meta file")
        return
    meta = pl.read_parquet(path)
    missing = [c for c in META_COLUMNS if c not in meta.columns]
    if missing:
        report.problems.append(f"{path}: missing columns {missing}")
        return
    report.n_rows += meta.height
    for status, count in meta["status"].value_counts().iter_rows():
        report.status_counts[status] = report.status_counts.get(status, 0) + count
    for row, uid in enumerate(meta["uid"].to_list()):
        if not is_uid(uid):
            report.problems.append(f"{path}: row {row}: uid {uid!r} is not 32 hex characters")
        elif uid in seen_uids:
            report.problems.append(f"{path}: row {row}: duplicate uid {uid}")
        seen_uids.add(uid)
    if check_shards and pool.tar_path(shard).is_file():
        try:
            keys = [s.key for s in read_tar_samples(pool.tar_path(shard))]
        except UserError as exc:
            report.problems.append(str(exc))
            return
        if keys != meta["key"].to_list():
            report.problems.append(f"{pool.tar_path(shard)}: keys do not match {path} row for row")


def _check_sidecar(pool: Pool, stage: str, report: Report) -> None:
    damaged = pool.sidecar_problems(stage)
    if damaged:
        report.problems.extend(f"{problem}; `curate score {pool.root} --stages {stage}` recomputes it" for problem in damaged)
        return
    for shard in pool.shard_ids():
        uids = pl.read_parquet(pool.scores_path(stage, shard), columns=["uid"])["uid"]
        if not uids.equals(pool.meta(shard)["uid"]):
            report.problems.append(f"{pool.scores_path(stage, shard)}: rows are not aligned with meta")
