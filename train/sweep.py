"""`train sweep`: a grid of runs (subsets/tiers x methods x models x budgets x seeds), run one after another or printed.

The grid comes from a small TOML file, flags, or both (flags replace the file's lists):

```toml
pool = "demo/pool"
scale = "cpu-small"
subsets = ["demo/tiers"]        # a subset folder, or a tier-set folder (tiers.json: all its tiers and controls)
methods = ["clip", "flip"]
models = ["tc-rn-tiny", "tc-vit-tiny"]   # optional: a model axis (any open_clip name; default: [options] model or the scale's)
seeds = [0, 1]
samples_seen = [20000, 40000]   # optional: budgets to sweep (default: the scale's)
eval = ["demo/pool/eval"]

[options]                        # any other `train run` option, by its flag name with underscores
model = "tc-rn-tiny"
lr = 2e-3
flip_mask_ratio = 0.75           # a method option applies to the runs of the methods that have it
```

Runs go to OUT/<subset>-<method>[-<model>][-n<samples>]-s<seed>, a tier of a tier set named <tier set>-<tier>;
the model is in the name whenever the grid has a model axis (`models` or `--model`), so adding a model to a
sweep never renames the runs it has. Each run's results.json records the model's family, tower sizes,
widths, depths, context and vocabulary (train.models.describe_model), which `analysis collect` reads.
Locally a finished run (DONE present)
is skipped and an unfinished one resumes, so re-running a sweep completes it. `--print torchrun`
prints one torchrun line per run instead (with `--nodes N`: the same line for every node, meeting at a
c10d rendezvous on $MASTER_ADDR); `--print sbatch` prints per run an `sbatch` of a batch script that
starts one torchrun per node with `srun` and takes the rendezvous from Slurm's environment.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tierclip.curate.errors import UserError
from tierclip.curate.fields import Checked, option

SPEC_KEYS = ("pool", "scale", "subsets", "methods", "models", "seeds", "samples_seen", "eval", "options")
# `train run` options the grid sets itself; every other one may be an [options] key.
GRID_KEYS = frozenset({"pool", "out", "subset", "method", "seed", "samples_seen", "eval", "resume", "scale"})


@dataclass(frozen=True)
class SweepOptions(Checked):
    """`train sweep`'s options: each list flag replaces the sweep file's list of the same idea."""

    spec: str | None = option(None, "Sweep TOML file (pool, scale, subsets, methods, models, seeds, samples_seen, eval, "
                                    "[options]).", argument=True)
    out: str = option(..., "Folder to hold one run folder per grid point.")
    pool: str | None = option(None, "Pool folder (replaces the file's `pool`).")
    subset: tuple[str, ...] = option((), "Subset or tier-set folder (repeatable; replaces the file's `subsets`).")
    method: tuple[str, ...] = option((), "Method (repeatable; replaces the file's `methods`).")
    model: tuple[str, ...] = option((), "open_clip model name (repeatable: a model axis; replaces the file's `models`).")
    seed: tuple[int, ...] = option((), "Seed (repeatable; replaces the file's `seeds`).", ge=0, le=2**32 - 1)
    samples_seen: tuple[int, ...] = option((), "Budget in samples (repeatable; replaces the file's `samples_seen`).", ge=1)
    scale: str | None = option(None, "Named scale (replaces the file's `scale`; default cpu-small).")
    eval: tuple[str, ...] = option((), "Eval set folder (repeatable; replaces the file's `eval`).")
    print: str | None = option(None, "Print command lines instead of running them: torchrun or sbatch.",
                               choices=("torchrun", "sbatch"))
    nproc: int = option(1, "Processes (GPUs) per node in printed torchrun/sbatch lines.", ge=1)
    nodes: int = option(1, "Nodes per run in printed torchrun/sbatch lines (one torchrun a node, c10d rendezvous).", ge=1)


@dataclass(frozen=True)
class SweepSpec:
    pool: str
    subsets: tuple[str | None, ...] = (None,)
    methods: tuple[str, ...] = ("clip",)
    models: tuple[str, ...] = ()  # empty: no model axis ([options] model or the scale's model)
    seeds: tuple[int, ...] = (0,)
    samples_seen: tuple[int | None, ...] = (None,)
    scale: str = "cpu-small"
    eval_roots: tuple[str, ...] = ()
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedRun:
    name: str
    out: Path
    subset: str | None
    method: str
    seed: int
    samples_seen: int | None
    model: str | None = None  # None: [options] model or the scale's


def sweep(options: SweepOptions) -> list[str]:
    """Run the grid (or, with --print, its command lines); the lines to print."""
    grid = load_spec(options.spec, pool=options.pool, subsets=options.subset, methods=options.method, models=options.model,
                     seeds=options.seed, samples_seen=options.samples_seen, scale=options.scale, eval=options.eval)
    runs = plan_runs(grid, options.out)
    if options.print:
        return command_lines(grid, runs, options.print, options.nproc, options.nodes)
    counts = run_sweep(grid, runs)
    return [f"{len(runs)} runs: {counts['started']} started, {counts['resumed']} resumed, {counts['skipped']} already finished"]


def option_keys() -> list[str]:
    """The keys `[options]` accepts: `train run`'s option names with underscores, but those the grid sets."""
    from tierclip.train.config import run_option_specs
    from tierclip.train.methods import method_option_specs

    return [s.key for s in run_option_specs() if s.key not in GRID_KEYS] + [s.key for s in method_option_specs()]


def load_spec(path: str | Path | None, **flags) -> SweepSpec:
    """The TOML file's grid with any non-empty flag replacing its value; every option checked as `train run` would."""
    raw = _read_spec(Path(path)) if path is not None else {}
    raw |= {k: v for k, v in flags.items() if v not in (None, [], ())}
    where = path or "train sweep"
    if raw.get("models") and "model" in raw.get("options", {}):
        raise UserError(f"{where}: give the model either as `models` (--model) or as [options] model, not both")
    if "pool" not in raw:
        raise UserError(f"{where}: no pool given (pool = ... in the file, or --pool)")
    spec = SweepSpec(
        pool=str(raw["pool"]), subsets=tuple(raw.get("subsets") or [None]), methods=tuple(raw.get("methods") or ["clip"]),
        models=tuple(str(m) for m in raw.get("models") or ()),
        seeds=tuple(int(s) for s in raw.get("seeds") or [0]),
        samples_seen=tuple(int(n) for n in raw["samples_seen"]) if raw.get("samples_seen") else (None,),
        scale=raw.get("scale", "cpu-small"), eval_roots=tuple(str(e) for e in raw.get("eval") or ()),
        options=dict(raw.get("options", {})),
    )
    check_options(spec, where)
    return spec


def _read_spec(path: Path) -> dict:
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: unreadable sweep file ({exc})") from None
    unknown = set(raw) - set(SPEC_KEYS)
    if unknown:
        raise UserError(f"{path}: unknown keys {sorted(unknown)} (known: {', '.join(SPEC_KEYS)})")
    bad = set(raw.get("options", {})) - set(option_keys())
    if bad:
        raise UserError(f"{path}: [options] has unknown keys {sorted(bad)} (known: {', '.join(option_keys())})")
    return raw


def check_options(spec: SweepSpec, where) -> None:
    """Every [options] value checked for every method of the grid (as `train run` checks it) before any run starts;
    a method option that no method of the grid uses is refused."""
    from tierclip.train.config import make_run_config
    from tierclip.train.methods import method_option_keys

    used = set().union(*(method_option_keys(m) for m in spec.methods if _known_method(m)))
    stray = sorted(set(spec.options) - set(run_options(spec)) - used)
    if stray:
        raise UserError(f"{where}: [options] {stray[0]} is an option of no method in the grid ({', '.join(spec.methods)})")
    for method in spec.methods:
        try:
            make_run_config("check", spec.pool, method=method, scale=spec.scale, **run_options(spec), **method_options(spec, method))
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None


def _known_method(name: str) -> bool:
    from tierclip.train.methods import METHODS

    return name in METHODS


def run_options(spec: SweepSpec) -> dict:
    """The [options] that are run-level `train run` options (an `aug` table as KEY=VALUE items)."""
    from tierclip.train.augment import aug_items
    from tierclip.train.methods import method_option_specs

    method_keys = {s.key for s in method_option_specs()}
    found = {k: v for k, v in spec.options.items() if k not in method_keys}
    if isinstance(found.get("aug"), dict):
        found["aug"] = aug_items(found["aug"])
    return found


def method_options(spec: SweepSpec, method: str) -> dict:
    """The [options] that configure `method` (the others belong to other methods of the grid)."""
    from tierclip.train.methods import method_option_keys

    keys = method_option_keys(method) if _known_method(method) else set()
    return {k: v for k, v in spec.options.items() if k in keys}


def expand_subsets(entries: tuple[str | None, ...]) -> list[tuple[str, str | None]]:
    """(name, path) per subset; a tier-set folder becomes its tiers and controls in tiers.json order."""
    out = []
    for entry in entries:
        if entry is None:
            out.append(("all", None))
            continue
        folder = Path(entry)
        if (folder / "tiers.json").is_file():
            # Prefixed with the tier set's folder name: tier sets of several sizes reuse tier names (top30, ...).
            out += [(f"{folder.name}-{name}", str(path)) for name, path in tier_entries(folder)]
        elif (folder / "uids.parquet").is_file():
            out.append((folder.name, str(folder)))
        else:
            raise UserError(f"{folder}: neither a subset (uids.parquet) nor a tier set (tiers.json)")
    return out


def tier_entries(folder: Path) -> list[tuple[str, Path]]:
    """(name, subset folder) of each tier and control in tiers.json: names are plain folder names and paths stay
    inside the tier set, as for names and paths given on the command line."""
    from tierclip.curate.paths import check_name, inside

    source = folder / "tiers.json"
    try:
        index = json.loads(source.read_text())
        entries = index.get("tiers", []) + index.get("controls", [])
        return [(check_name(t["name"], str(source)), inside(folder, str(t["path"]), str(source))) for t in entries]
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError, KeyError) as exc:
        raise UserError(f"{source}: not a tier set index ({type(exc).__name__}: {exc})") from None


def plan_runs(spec: SweepSpec, out_root: str | Path) -> list[PlannedRun]:
    from tierclip.curate.paths import check_name

    runs = []
    grid = itertools.product(expand_subsets(spec.subsets), spec.methods, spec.models or (None,), spec.samples_seen, spec.seeds)
    for (name, subset), method, model, samples, seed in grid:
        budget = f"-n{samples}" if samples is not None else ""
        model_part = f"-{re.sub(r'[^A-Za-z0-9_.-]+', '_', model)}" if model is not None else ""  # hf-hub:org/x
        run_name = check_name(f"{name}-{method}{model_part}{budget}-s{seed}", "train sweep: run folder")
        runs.append(PlannedRun(run_name, Path(out_root) / run_name, subset, method, seed, samples, model))
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise UserError("sweep: two subsets share a folder name; give subsets with distinct names")
    return runs


def run_sweep(spec: SweepSpec, runs: list[PlannedRun]) -> dict[str, int]:
    """Run every planned run in turn: skip finished ones, resume unfinished ones."""
    from tierclip.train.config import make_run_config
    from tierclip.train.models import model_config
    from tierclip.train.run import DONE, run_training

    for model in spec.models:  # an unknown model fails before the first run, not after hours of others
        model_config(model)
    counts = {"skipped": 0, "resumed": 0, "started": 0}
    for run in runs:
        if (run.out / DONE).exists():
            counts["skipped"] += 1
            print(f"skip {run.name} (finished)")
            continue
        resume = (run.out / "resume.pt").exists()
        counts["resumed" if resume else "started"] += 1
        print(f"{'resume' if resume else 'start'} {run.name}")
        model = {"model": run.model} if run.model is not None else {}
        cfg = make_run_config(run.out, spec.pool, subset=run.subset, method=run.method, scale=spec.scale,
                              samples_seen=run.samples_seen, seed=run.seed, eval=spec.eval_roots, resume=resume,
                              **run_options(spec), **method_options(spec, run.method), **model)
        run_training(cfg)
    return counts


def command_lines(spec: SweepSpec, runs: list[PlannedRun], launcher: str, nproc: int = 1, nodes: int = 1) -> list[str]:
    """One shell command per unfinished run: a torchrun line (run it on every node) or an `sbatch` of a batch script."""
    if launcher not in ("torchrun", "sbatch"):
        raise UserError(f"--print {launcher}: expected torchrun or sbatch")
    lines = []
    for run in runs:
        if (run.out / "DONE").exists():
            continue
        train = shlex.join(["-m", "tierclip.train.cli", "run", *run_args(spec, run)])
        if launcher == "torchrun":
            lines.append(f"{torchrun_prefix(nproc, nodes, run.name)} {train}")
        else:
            lines.append(sbatch_script(run, f"{SLURM_TORCHRUN.format(nproc=nproc)} {train}", nodes, nproc,
                                       gpus=spec.options.get("device") != "cpu"))
    return lines


def run_args(spec: SweepSpec, run: PlannedRun) -> list[str]:
    """`train run`'s arguments for one planned run (with --resume: a re-submitted job continues where it stopped)."""
    args = [spec.pool, "--out", str(run.out), "--method", run.method, "--scale", spec.scale, "--seed", str(run.seed), "--resume"]
    args += ["--subset", run.subset] if run.subset else []
    args += ["--model", run.model] if run.model is not None else []
    args += ["--samples-seen", str(run.samples_seen)] if run.samples_seen is not None else []
    for root in spec.eval_roots:
        args += ["--eval", root]
    for key, value in {**run_options(spec), **method_options(spec, run.method)}.items():
        args += option_args(key, value)
    return args


def option_args(key: str, value) -> list[str]:
    """`--key-name value` (each item of a repeatable option; typer's `--flag` / `--no-flag` for a boolean)."""
    flag = f"--{key.replace('_', '-')}"
    if isinstance(value, bool):
        return [flag if value else f"--no-{flag[2:]}"]
    items = value if isinstance(value, (tuple, list)) else [value]
    return [part for item in items for part in (flag, str(item))]


def torchrun_prefix(nproc: int, nodes: int, run_id: str) -> str:
    """One node: a standalone rendezvous. Several: the same line on every node, meeting at a c10d rendezvous on
    $MASTER_ADDR (the first node's address, set by the user) and $MASTER_PORT (29500 unless set)."""
    if nodes == 1:
        return f"torchrun --standalone --nproc_per_node={nproc}"
    return (f"torchrun --nnodes={nodes} --nproc-per-node={nproc} --rdzv-backend=c10d "
            f'--rdzv-endpoint="$MASTER_ADDR:${{MASTER_PORT:-29500}}" --rdzv-id={shlex.quote(run_id)}')


# Under Slurm: one torchrun per node (srun, one task a node), all meeting at a c10d rendezvous on the allocation's first
# node, whose address that node reports itself (`hostname --ip-address`, as PyTorch's Slurm example does); node names
# come from `scontrol show hostnames $SLURM_JOB_NODELIST`, as in open_clip's multi-node recipe. The port is MASTER_PORT
# when the submitting shell sets it (sbatch passes the environment on), else one derived from the job id, so two jobs
# sharing a first node do not collide.
SLURM_RENDEZVOUS = """head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
head_addr=$(srun --nodes=1 --ntasks=1 -w "$head_node" hostname --ip-address | awk '{print $1}')
export MASTER_ADDR=$head_addr MASTER_PORT=${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}"""
SLURM_TORCHRUN = ('srun torchrun --nnodes="$SLURM_NNODES" --nproc-per-node={nproc} --rdzv-id="$SLURM_JOB_ID" '
                  '--rdzv-backend=c10d --rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT"')


def sbatch_script(run: PlannedRun, command: str, nodes: int, nproc: int, gpus: bool) -> str:
    """`mkdir -p OUT && sbatch <<'EOF'` + a batch script running `command` on `nodes` nodes + `EOF` (paste it, or pipe
    the whole output to bash: one job per run). The job's log is OUT/slurm-JOBID.out."""
    directives = [f"--job-name={run.name}", f"--nodes={nodes}", "--ntasks-per-node=1", f"--output={run.out}/slurm-%j.out"]
    directives += [f"--gpus-per-node={nproc}"] if gpus else []
    body = ["#!/bin/bash", *(f"#SBATCH {shlex.quote(d)}" for d in directives), "set -euo pipefail", SLURM_RENDEZVOUS, command]
    return "\n".join([f"mkdir -p {shlex.quote(str(run.out))} && sbatch <<'EOF'", *body, "EOF"])
