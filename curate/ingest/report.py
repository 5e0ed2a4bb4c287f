"""What an ingest did: rows per status, shards written and resumed; printed as one table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tierclip.curate.pool import OK


@dataclass
class IngestReport:
    status_counts: Counter = field(default_factory=Counter)
    n_shards: int = 0
    n_resumed_shards: int = 0

    @property
    def n_rows(self) -> int:
        return sum(self.status_counts.values())

    def count(self, statuses) -> None:
        self.status_counts.update(statuses)

    def to_json(self) -> dict:
        return {"n_rows": self.n_rows, "n_shards": self.n_shards, "status_counts": dict(sorted(self.status_counts.items()))}


def status_rows(report: IngestReport) -> list[tuple]:
    """(status, rows, share) sorted with success first, then by count; a `total` row last."""
    total = report.n_rows
    ordered = sorted(report.status_counts.items(), key=lambda kv: (kv[0] != OK, -kv[1], kv[0]))
    rows = [(status, count, f"{count / total:.3f}") for status, count in ordered]
    return rows + [("total", total, "1.000" if total else "0")]


def print_report(report: IngestReport, out) -> None:
    from tierclip.curate.cliutil import print_table

    resumed = f" ({report.n_resumed_shards} already done, skipped)" if report.n_resumed_shards else ""
    print(f"ingested {report.n_rows} rows into {report.n_shards} shards at {out}{resumed}")
    print_table(status_rows(report), ("status", "rows", "share"))
