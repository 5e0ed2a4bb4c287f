"""The `scores/STAGE/` layout, defined here and nowhere else, and the check that a sidecar is whole.

```
scores/STAGE/
  00000.parquet                 the sidecar: uid + the stage's columns, meta's rows in meta's order
  _config.json                  the options the stage ran with
  _stats/00000.json             per-shard counters
  _done/00000                   completion marker, written last (sidecar, stats, marker)
  _parts/NAME/00000.npy|.parquet, _parts/_done/00000    a global stage's per-shard inputs and their markers
  _global/NAME.npy, _global/_done (JSON build stats), _global/_tasks/PHASE/TASK.json (a phase task's marker)
scores/.previous-STAGE/, scores/.discard-STAGE/     set aside by `curate score --force` (readers ignore dot folders),
                                                    with _side_outputs.json listing side-output folders set aside too
```

`StageFiles` names every path; `Pool` (its sidecar methods), the stage runner, the stage helpers in
`curate/stages/base.py` and `curate ingest datacomp` (which writes a sidecar before the pool has a
pool.json) all go through it. `StageFiles.problem` checks a sidecar the way `Pool` checks meta files:
its parquet footer must read, hold a `uid` column and as many rows as the shard's meta.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tierclip.curate import atomic

SCORES = "scores"
SET_ASIDE_KINDS = ("previous", "discard")  # scores/.previous-STAGE (old outputs of a --force run), .discard-STAGE
SIDE_OUTPUTS = "_side_outputs.json"  # in a set-aside folder: the side-output folders (clip's embeddings) set aside with it


def shard_name(shard: int) -> str:
    """NNNNN: how every per-shard file of a pool is named (shards/, meta/, scores/STAGE/, embeddings/MODEL/)."""
    return f"{shard:05d}"


def scores_root(pool_root: str | Path) -> Path:
    return Path(pool_root) / SCORES


def stage_names(pool_root: str | Path) -> list[str]:
    """Stage folders under scores/, sorted; set-aside dot folders (`.previous-STAGE`) are not stages."""
    root = scores_root(pool_root)
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def hidden(folder: Path) -> Path:
    """Where `--force` keeps a side-output folder (`embeddings/MODEL`) aside: `.previous-MODEL` beside it."""
    return folder.with_name(f".previous-{folder.name}")


@dataclass(frozen=True)
class StageFiles:
    """Every path of one stage's folder `scores/STAGE/`."""

    folder: Path

    @classmethod
    def of(cls, pool_root: str | Path, stage: str) -> StageFiles:
        return cls(scores_root(pool_root) / stage)

    @property
    def stage(self) -> str:
        return self.folder.name

    def sidecar(self, shard: int) -> Path:
        return self.folder / f"{shard_name(shard)}.parquet"

    def done(self, shard: int) -> Path:
        return self.folder / "_done" / shard_name(shard)

    def stats(self, shard: int) -> Path:
        return self.folder / "_stats" / f"{shard_name(shard)}.json"

    @property
    def config(self) -> Path:
        return self.folder / "_config.json"

    def parts(self, name: str, shard: int, suffix: str = ".npy") -> Path:
        return self.folder / "_parts" / name / f"{shard_name(shard)}{suffix}"

    def parts_done(self, shard: int) -> Path:
        return self.folder / "_parts" / "_done" / shard_name(shard)

    @property
    def global_dir(self) -> Path:
        return self.folder / "_global"

    @property
    def global_done(self) -> Path:
        return self.global_dir / "_done"

    def tasks_dir(self, phase: str) -> Path:
        return self.global_dir / "_tasks" / phase

    def task_done(self, phase: str, task: str) -> Path:
        return self.tasks_dir(phase) / f"{task}.json"

    def set_aside(self, kind: str = "previous") -> Path:
        """Where `--force` keeps the old outputs (`previous`) or drops them from (`discard`): a dot folder beside."""
        if kind not in SET_ASIDE_KINDS:
            raise ValueError(f"unknown set-aside kind {kind!r}")
        return self.folder.with_name(f".{kind}-{self.stage}")

    def is_done(self, shard: int) -> bool:
        return self.done(shard).exists()

    def write(self, shard: int, frame, stats: dict | None = None) -> None:
        """One shard's sidecar, then its stats, then its completion marker (a marker means the other two are whole)."""
        atomic.write_parquet(self.sidecar(shard), frame)
        atomic.write_json(self.stats(shard), stats or {"rows": frame.height})
        atomic.write_bytes(self.done(shard), b"")

    def problem(self, shard: int, meta_rows: int) -> str | None:
        """Why shard's sidecar is not whole (`PATH: reason`), or None: footer readable, a uid column, meta's row count."""
        import pyarrow.parquet as pq

        path = self.sidecar(shard)
        if not path.is_file():
            return f"{path}: missing sidecar (its completion marker is there)"
        try:
            footer = pq.read_metadata(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for a cut or overwritten file
            from tierclip.curate.images import reason_of

            return f"{path}: damaged sidecar ({reason_of(exc)})"
        if "uid" not in footer.schema.names:
            return f"{path}: damaged sidecar (no uid column)"
        if footer.num_rows != meta_rows:
            return f"{path}: damaged sidecar ({footer.num_rows} rows, its meta file has {meta_rows})"
        return None
