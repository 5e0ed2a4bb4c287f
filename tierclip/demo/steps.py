"""How the demo runs a step: the console command, printed, skipped when its output is complete."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path


def command(tool: str, *args: object) -> list[str]:
    """`curate ...` as `python -m tierclip.curate.cli ...` with this interpreter (works without the venv on PATH)."""
    return [sys.executable, "-m", f"tierclip.{tool}.cli", *(str(a) for a in args)]


def step(title: str, argv: list[str], done: Path | None = None) -> float:
    """Run one command unless `done` exists; return its wall time."""
    shown = " ".join(shlex.quote(a) for a in ([argv[2].removeprefix("tierclip.").split(".")[0]] + argv[3:]))
    if done is not None and done.exists():
        print(f"== {title}: already done ({done})", flush=True)
        return 0.0
    print(f"== {title}\n   $ {shown}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(argv, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if result.returncode != 0:
        raise SystemExit(f"demo: step '{title}' failed (exit {result.returncode}); fix it and re-run: finished steps are kept")
    took = time.perf_counter() - start
    print(f"   ({took:.0f} s)", flush=True)
    return took


def stage_done(pool: Path, stage: str) -> Path:
    """The last shard's completion marker stands for the stage (the runner writes markers per shard)."""
    from tierclip.curate.pool import Pool
    from tierclip.curate.sidecars import StageFiles

    if not (pool / "pool.json").exists():
        return StageFiles.of(pool, stage).done(0)
    opened = Pool(pool, check_files=False)
    return opened.done_path(stage, opened.info.n_shards - 1)


def repeat(flag: str, values) -> list[str]:
    return [part for value in values for part in (flag, str(value))]


def trainable_methods(wanted: tuple[str, ...], models: list[str]) -> dict[str, tuple[tuple[str, ...], dict[str, str]]]:
    """Per model: the wanted methods that train.methods knows and that can train it (FILIP and DeFILIP need a
    ViT tower), and why each other one is left out."""
    from tierclip.train.methods import refusal

    reasons = {model: {method: refusal(method, model) for method in wanted} for model in models}
    return {model: (tuple(m for m in wanted if why[m] is None), {m: reason for m, reason in why.items() if reason})
            for model, why in reasons.items()}


def augmented_methods(methods: tuple[str, ...]) -> tuple[str, ...]:
    """The methods among `methods` whose image views carry random augmentation (CLIP+Aug, SLIP, DeCLIP, DeFILIP)."""
    from tierclip.train.augment import augmented_views
    from tierclip.train.methods import METHODS

    return tuple(m for m in methods if m in METHODS and augmented_views(METHODS[m].views))


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")
