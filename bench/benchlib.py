"""What the bench scripts share: pools, command launching, metrics.jsonl reading, the bare training step.

The scripts in bench/ import this module by name (`python bench/X.py` puts bench/ first on sys.path), and this
module puts the checkout it lives in first on the import path, so a script measures this checkout's code.

- Commands: `command("curate", "score", ..., batch_size=256)` runs this checkout's command line
  (`python -m tierclip.curate.cli score ... --batch-size 256`); `run_command` returns its wall seconds (and its
  stdout when asked) and raises with the tail of its stderr when it fails; `script` starts a bench script.
- Pools: `synth_pool` (`curate synth`), `jpeg_pool` (scenes stored as JPEGs as img2dataset stores photos),
  `metadata_pool` (a DataComp-like pool without images), `save_random_checkpoint`.
- Runs: `train_run` and `clip_stage` (the two commands whose speed the benches compare), `read_metrics`,
  `logged_rate`, `run_summary`.
- `bare_step`: `train run`'s CLIP step (forward, ClipLoss, backward, gradient clipping, AdamW with open_clip_train's
  parameter groups, warmup + cosine lr, logit-scale clamp) on batches already in memory, on any device and
  precision: the ceiling a run's loader and loop are measured against. `build_model` passes patch dropout.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
if str(CHECKOUT) not in sys.path:  # measure this checkout's code, also when the venv's editable install is another one's
    sys.path.insert(0, str(CHECKOUT))

CLI_ENV = {"HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "NO_ALBUMENTATIONS_UPDATE": "1"}
PRECISIONS = ("fp32", "bf16")


# -- commands ----------------------------------------------------------------------------------
def flags(options: dict) -> list[str]:
    """{"batch_size": 256, "force": True} -> ["--batch-size", "256", "--force"] (False and None are left out)."""
    out: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        out += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return out


def command(part: str, *args: object, **options: object) -> list[str]:
    """A tierclip command (`curate`, `train`, `analysis`) run by this interpreter, with `options` as flags."""
    return [sys.executable, "-m", f"tierclip.{part}.cli", *map(str, args), *flags(options)]


def script(path: str | Path, *args: object, **options: object) -> list[str]:
    """A bench script (e.g. `__file__` for a measurement in a fresh process) run by this interpreter."""
    return [sys.executable, str(path), *map(str, args), *flags(options)]


def checkout_env(checkout: Path | None = None) -> dict:
    """The environment for commands: offline, and this checkout (or `checkout`, another source tree of tierclip,
    to measure its code instead) first on the import path, then bench/ (for the bench scripts started as commands).
    PYTHONSAFEPATH keeps the working folder off it: from inside another checkout a command imports that one's code."""
    parts = (str(checkout or CHECKOUT), str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH"))
    path = os.pathsep.join(p for p in parts if p)
    return {**os.environ, **CLI_ENV, "PYTHONPATH": path, "PYTHONSAFEPATH": "1"}


class Clock:
    """Wall and CPU seconds of a `with` block: this process's, and its children's that ended in it (a command, its
    loader workers; Linux counts a waited-for child's own waited-for children too)."""

    def start(self) -> Clock:
        self.started = _clocks()
        return self

    def stop(self) -> Clock:
        self.wall, self.cpu = (end - start for end, start in zip(_clocks(), self.started, strict=True))
        return self

    def __enter__(self) -> Clock:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def per_1000(self, items: int) -> float:
        return round(self.cpu * 1000 / max(1, items), 2)


def _clocks() -> tuple[float, float]:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_command(args: list[str], capture: bool = False, checkout: Path | None = None) -> float | tuple[float, str]:
    """Run a command (with `checkout`'s code: `checkout_env`); its wall seconds (and its stdout with `capture`).
    Raises RuntimeError with the command's last output when it fails."""
    started = time.perf_counter()
    done = subprocess.run(args, env=checkout_env(checkout), stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args[:8])} ... exited {done.returncode}: {done.stderr[-2000:]}")
    wall = time.perf_counter() - started
    return (wall, done.stdout) if capture else wall


def last_json_line(args: list[str]) -> dict:
    """Run a command that prints JSON lines; its last one."""
    _, out = run_command(args, capture=True)
    return json.loads(out.strip().splitlines()[-1])


# -- pools -------------------------------------------------------------------------------------
def synth_pool(root: Path, n: int, image_size: int = 32, workers: int = 1, **options: object) -> Path:
    """`curate synth` (clean profile, no eval set unless `options` say otherwise), made once: reused when
    pool.json exists."""
    if not (root / "pool.json").exists():
        settings = {"profile": "clean", "eval_n": 0, "seed": 0, **options}
        run_command(command("curate", "synth", n=n, out=root, image_size=image_size, workers=workers, **settings))
    return root


def jpeg_pool(root: Path, n: int, image_size: int = 256, shard_size: int = 10_000, workers: int = 1,
              render_size: int | None = None) -> Path:
    """An img2dataset-style pool of `image_size`-px JPEGs, `shard_size` pairs per shard, made once.

    `curate synth` renders the scenes at `render_size` px (default 1.5 x image_size), each is saved as a JPEG file
    (quality 95, as ingest re-encodes), and `curate ingest folder --image-size` stores them resized to `image_size`.
    """
    if (root / "pool.json").exists():
        return root
    scenes = synth_pool(root.with_name(root.name + "-scenes"), n, render_size or image_size * 3 // 2, workers)
    folder = root.with_name(root.name + "-jpegs")
    write_jpeg_folder(scenes, folder, workers)
    run_command(command("curate", "ingest", "folder", folder, captions=folder / "captions.parquet", out=root,
                        image_size=image_size, shard_size=shard_size))
    return root


def write_jpeg_folder(pool_root: Path, folder: Path, workers: int = 1) -> None:
    """Every image of a pool as a JPEG file under `folder/images/`, and `folder/captions.parquet` (path, caption)."""
    import multiprocessing

    import polars as pl
    from tierclip.curate.pool import Pool

    (folder / "images").mkdir(parents=True, exist_ok=True)
    shards = [(pool_root, shard, folder) for shard in Pool(pool_root).shard_ids()]
    with multiprocessing.get_context("fork").Pool(max(1, workers)) as procs:
        rows = [row for part in procs.map(_shard_to_jpegs, shards) for row in part]
    pl.DataFrame(rows).write_parquet(folder / "captions.parquet")


def _shard_to_jpegs(task: tuple) -> list[dict]:
    from tierclip.curate.images import decode_image, encode_image
    from tierclip.curate.pool import Pool

    pool_root, shard, folder = task
    rows = []
    for sample in Pool(pool_root).samples(shard):
        path = f"images/{sample.key}.jpg"
        (folder / path).write_bytes(encode_image(decode_image(sample.image), "jpg"))
        rows.append({"path": path, "caption": sample.caption or ""})
    return rows


def metadata_pool(root: Path, rows: int, shard_rows: int, seed: int = 0) -> Path:
    """A DataComp-like pool without images, made once (`.bench-complete` marks it): meta with web-like captions and
    sizes, a `datacomp` sidecar (clip_b32/l14_similarity_score, rounded like the real ones) and a `lang` sidecar."""
    import shutil

    import numpy as np
    from tierclip.curate.pool import Pool, PoolInfo, write_meta, write_pool_info

    marker = root / ".bench-complete"
    if marker.is_file() and Pool(root).info.n_samples == rows:
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    n_shards = -(-rows // shard_rows)
    write_pool_info(root, PoolInfo("bench-datacomp", "bench/benchlib.py", "2026-01-01T00:00:00+00:00", rows, n_shards))
    pool = Pool(root, check_files=False)
    for shard in range(n_shards):
        first = shard * shard_rows
        meta, datacomp, lang = _metadata_frames(rng, shard, first, min(shard_rows, rows - first))
        write_meta(root, shard, meta)
        pool.write_scores("datacomp", shard, datacomp)
        pool.write_scores("lang", shard, lang)
    marker.write_text("")
    return root


WORDS = ("a photo of the red blue green small large old new dog cat car house tree city beach mountain river people man "
         "woman child food table chair book phone street night sky sunset garden flower kitchen room view logo shirt "
         "dress shoes sale free stock image").split()


def _metadata_frames(rng, shard: int, first: int, n: int) -> tuple:
    import numpy as np
    import polars as pl
    from tierclip.curate.pool import OK

    text = rng.bytes(16 * n).hex()
    uids = [text[i: i + 32] for i in range(0, len(text), 32)]
    keys = [f"{first + i:09d}" for i in range(n)]
    words = np.array(WORDS)[rng.integers(0, len(WORDS), n * 13)].reshape(n, 13)
    captions = [" ".join(row[:length]) for row, length in zip(words.tolist(), rng.integers(1, 14, n).tolist(), strict=True)]
    meta = pl.DataFrame({
        "uid": uids, "key": keys, "shard": np.full(n, shard, np.int32), "caption": captions,
        "url": [f"https://example.com/{k}.jpg" for k in keys],
        "width": rng.integers(32, 1600, n).astype(np.int32), "height": rng.integers(32, 1600, n).astype(np.int32),
        "status": [OK] * n, "error": pl.Series([None] * n, dtype=pl.Utf8),
    })
    b32 = np.round(rng.normal(0.28, 0.05, n), 4).astype(np.float32)  # rounded: ties, as in real metadata
    l14 = np.round(b32 * 0.9 + rng.normal(0.0, 0.03, n), 4).astype(np.float32)
    datacomp = pl.DataFrame({"uid": uids, "clip_b32_similarity_score": b32, "clip_l14_similarity_score": l14})
    langs = np.where(rng.random(n) < 0.6, "en", "de")
    lang = pl.DataFrame({"uid": uids, "lang": langs, "lang_prob": rng.random(n).astype(np.float32), "lang_datacomp": langs})
    return meta, datacomp, lang


def save_random_checkpoint(run: Path, model: str, seed: int = 0) -> Path:
    """RUN/checkpoint.pt of a randomly initialised `model`, with its config in RUN/model_configs/ (as `train run`
    lays it out): throughput does not depend on the weights, and nothing is downloaded. Made once."""
    checkpoint = run / "checkpoint.pt"
    if checkpoint.exists():
        return checkpoint
    import torch
    from tierclip.train.models import write_model_config

    torch.manual_seed(seed)
    write_model_config(model, run / "model_configs")
    torch.save({"state_dict": build_model(model).state_dict()}, checkpoint)
    return checkpoint


# -- the two commands whose speed is compared ---------------------------------------------------
def clip_stage_command(pool_root: Path, **fields: object) -> list[str]:
    return command("curate", "score", pool_root, stages="clip", workers=1, force=True, **stage_options("clip", **fields))


def stage_options(stage: str, **fields: object) -> dict:
    """A stage's config fields as `curate score` names its options ({"batch_size": 8} -> {"clip_batch_size": 8})."""
    from tierclip.curate.fields import option_key
    from tierclip.curate.stages import STAGES

    return {option_key(STAGES[stage].prefix, name): value for name, value in fields.items()}


def clip_stage(pool_root: Path, checkout: Path | None = None, **fields: object) -> dict:
    """`curate score POOL --stages clip --force` with ClipConfig `fields` (model, pretrained, batch_size, ...), this
    checkout's or `checkout`'s: pairs/s end to end, and from the first shard's completion to the last one's
    (start-up and first shard left out)."""
    from tierclip.curate.pool import Pool

    with Clock() as clock:
        run_command(clip_stage_command(pool_root, **fields), checkout=checkout)
    scores = Pool(pool_root).scan_scores("clip").collect()["clip_score"]
    return {"pairs_per_s": round(len(scores) / clock.wall, 2), "pairs": len(scores), "seconds": round(clock.wall, 2),
            "cpu_s_per_1000": clock.per_1000(len(scores)),
            "after_first_shard_pairs_per_s": after_first_shard(pool_root, "clip"),
            "scored": int(scores.is_not_null().sum()), "score_mean": round(float(scores.mean()), 6)}


def after_first_shard(pool_root: Path, stage: str) -> float | None:
    """Pairs/s from the first shard's completion marker to the last one's; None with one shard."""
    from tierclip.curate.pool import Pool

    pool = Pool(pool_root)
    shards = pool.shard_ids()
    if len(shards) < 2:
        return None
    times = [pool.done_path(stage, shard).stat().st_mtime for shard in shards]
    return round(sum(pool.meta(shard).height for shard in shards[1:]) / (max(times) - min(times)), 2)


def train_run(pool_root: Path, out: Path, skip: int, **options: object) -> dict:
    """`train run POOL --out OUT` with `options` (a fresh OUT): `run_summary` plus its wall seconds."""
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    settings = {"log_every": 1, "checkpoint_every": 10**9, **options}
    with Clock() as clock:
        run_command(command("train", "run", pool_root, out=out, **settings))
    summary = run_summary(out, skip)
    return {**summary, "wall_s": round(clock.wall, 1), "cpu_s_per_1000": clock.per_1000(summary["samples_seen"])}


# -- runs --------------------------------------------------------------------------------------
def read_metrics(run: Path) -> list[dict]:
    """metrics.jsonl of a `train run` folder, one dict per logged step."""
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def logged_rate(rows: list[dict], skip: int) -> float:
    """Samples/s over the logged windows after the first `skip` logged lines (each window's samples / its seconds)."""
    seen = [0] + [row["samples_seen"] for row in rows]
    windows = [(seen[i + 1] - seen[i], rows[i]["samples_per_s"]) for i in range(len(rows))][skip:] or [(1, rows[-1]["samples_per_s"])]
    return sum(n for n, _ in windows) / sum(n / rate for n, rate in windows)


def run_summary(run: Path, skip: int) -> dict:
    """Samples/s after `skip` logged lines, end to end (results.json), first and last loss of a finished run."""
    rows = read_metrics(run)
    results = json.loads((run / "results.json").read_text())
    return {"samples_per_s": round(logged_rate(rows, skip), 2), "samples_seen": results["samples_seen"],
            "samples_per_s_end_to_end": round(results["samples_seen"] / results["wall_time_s"], 2),
            "first_loss": rows[0]["loss"], "last_loss": rows[-1]["loss"], "steps": len(rows),
            "device": results.get("device"), "world_size": results.get("world_size")}


# -- the bare training step --------------------------------------------------------------------
def build_model(name: str, patch_dropout: float = 0.0, device: str = "cpu"):
    """The open_clip model `name` (project configs included), seeded, with `patch_dropout` forced when > 0."""
    import torch
    from tierclip.train.models import create_model

    torch.manual_seed(0)
    overrides = {"force_patch_dropout": patch_dropout} if patch_dropout else {}
    return create_model(name, overrides=overrides, device=device)[0]


def bare_step(model, batches: list[dict], skip: int, device: str = "cpu", precision: str = "fp32",
              lr: float = 5e-4, warmup_steps: int = 10, weight_decay: float = 0.1) -> dict:
    """Samples/s of `train run`'s CLIP step on in-memory batches (no loader, no logging, no checkpoints), timed
    after `skip` steps; the loss of every step.

    The run's optimizer (train.loop.build_optimizer: open_clip_train's groups), schedule (build_scheduler), default
    gradient clipping and logit-scale clamp (OptimConfig); `precision` bf16 is the run's CUDA autocast.
    """
    import torch
    from open_clip.loss import ClipLoss
    from tierclip.train.config import OptimConfig
    from tierclip.train.loop import build_optimizer, build_scheduler

    model = model.to(device).train()
    optim = OptimConfig(lr=lr, warmup_steps=warmup_steps, weight_decay=weight_decay)
    optimizer = build_optimizer(model, optim)
    scheduler = build_scheduler(optimizer, warmup_steps, len(batches))
    moved: dict[int, dict] = {}  # a batch repeated in the list is moved to the device once
    batches = [moved.setdefault(id(b), {k: v.to(device) for k, v in b.items()}) for b in batches]
    loss_fn, sync = ClipLoss(), (torch.cuda.synchronize if device.startswith("cuda") else (lambda: None))
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=precision == "bf16")
    losses, clock = [], Clock().start()
    for step, batch in enumerate(batches):
        if step == skip:
            sync()
            clock.start()
        losses.append(_one_step(model, optimizer, loss_fn, batch, autocast, optim))
        scheduler.step()
    sync()
    clock.stop()
    timed = (len(batches) - skip) * len(batches[0]["text"])
    rate = timed / clock.wall
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return {"samples_per_s": round(rate, 2), "cpu_s_per_1000": clock.per_1000(timed),
            "losses": [round(float(loss), 6) for loss in losses],
            "peak_gpu_memory_gib": round(peak, 2) if peak is not None else None}


def _one_step(model, optimizer, loss_fn, batch: dict, autocast, optim):
    import torch
    from tierclip.train.loop import clamp_logit_scales

    optimizer.zero_grad(set_to_none=True)
    with autocast:
        image_features, text_features, logit_scale = model(batch["image"], batch["text"])[:3]
        loss = loss_fn(image_features, text_features, logit_scale)
    loss.backward()
    if optim.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
    optimizer.step()
    clamp_logit_scales(model, optim)  # the loop's own clamp: the window of optim
    return loss.detach()


def random_batches(model, steps: int, batch: int, distinct: int = 4) -> list[dict]:
    """`steps` batches of random pixels at the model's image size and random token ids (`distinct` ones, cycled)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    size = model.visual.image_size
    size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    made = [{"image": torch.randn(batch, 3, *size, generator=generator),
             "text": torch.randint(1, model.vocab_size, (batch, model.context_length), generator=generator)}
            for _ in range(min(steps, distinct))]
    return [made[step % len(made)] for step in range(steps)]


def training_dataset(pool_root: Path, model_name: str, seed: int = 0):
    """`train run --method clip`'s dataset on the pool: its usable samples, the eval-style image view, the tokenizer."""
    import open_clip
    from tierclip.curate.pool import Pool
    from tierclip.train.augment import make_view_transform
    from tierclip.train.data import PositionDataset, build_index
    from tierclip.train.models import get_tokenizer

    pre = open_clip.get_model_preprocess_cfg(build_model(model_name))
    views = {"image": make_view_transform("image", pre["size"], pre["mean"], pre["std"])}
    return PositionDataset(build_index(Pool(pool_root), None), views, get_tokenizer(model_name), seed)


# -- profiles ----------------------------------------------------------------------------------
# Where the time of a profiled command goes: (activity, frame markers) per role, the first activity whose marker is
# in a sample's stack wins. Roles: the main thread, other threads of the command, its child processes (loader workers).
MAIN_ACTIVITIES = (
    ("start-up: imports", ("_find_and_load",)),
    ("waiting for the tar read-ahead", ("read_ahead (",)),
    ("tar read", ("read_tar_samples", "iter_images")),
    ("loader workers' start and stop", ("popen_fork.py", "_shutdown_workers (")),
    ("start-up: model load", ("load_model (", "create_model (", "_create (")),
    ("training step: forward", ("MethodStep.forward",)),
    ("training step: backward", ("backward (",)),
    ("training step: clipping + AdamW", ("clip_grad_norm_", "AdamW.step", "Optimizer.step", "_optimizer_step (")),
    ("model forward (clip stage)", ("embed_batch (", "encode_image (", "encode_text (")),
    ("tokenize", ("tokenizer.py",)),
    ("waiting for the loader", ("_next_data (", "_get_data (")),
    ("writes", ("write_scores (", "write_npy (", "save_state (", "write_json (")),
    ("pool index and checks", ("build_index (", "check_inputs (", "plan (")),
)
WORKER_ACTIVITIES = (("decode + preprocess", ("fetch (", "__getitems__ (")), ("idle", ("",)))
THREAD_ACTIVITIES = (("read-ahead: tar read", ("read_tar_samples", "iter_images")), ("read-ahead: waiting", ("read_ahead",)),
                     ("pin memory", ("_pin_memory_loop",)), ("helper threads, mostly idle", ("",)))


def profile_command(args: list[str], raw: Path, rate: int = 50, checkout: Path | None = None) -> float:
    """`run_command` under py-spy (every thread and child process, idle samples too); raw stacks to `raw`."""
    spy = Path(sys.executable).with_name("py-spy")
    return run_command([str(spy), "record", "--format", "raw", "--threads", "--subprocesses", "--idle", "--nonblocking",
                        "--rate", str(rate), "--output", str(raw), "--", *args], checkout=checkout)


def profile_seconds(raw: Path, rate: int = 50) -> dict[str, float]:
    """Seconds per "role: activity" of a py-spy raw file (see MAIN_ACTIVITIES)."""
    seconds: dict[str, float] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        label = _classify(stack.split(";"))
        seconds[label] = seconds.get(label, 0.0) + int(count) / rate
    return dict(sorted(seconds.items(), key=lambda item: -item[1]))


def _classify(frames: list[str]) -> str:
    thread = next((frame for frame in frames if frame.startswith("thread (")), "")
    if any("_worker_loop (" in frame for frame in frames):
        role, rules = "loader workers", WORKER_ACTIVITIES
    elif "MainThread" in thread:
        if frames[-1] == thread:
            return "main thread: interpreter start and exit (no Python frames)"
        role, rules = "main thread", MAIN_ACTIVITIES + (("other", ("",)),)
    else:
        role, rules = "threads", THREAD_ACTIVITIES
    text = ";".join(frames)
    return f"{role}: {next(name for name, markers in rules if any(marker in text for marker in markers))}"


# -- the machine -------------------------------------------------------------------------------
def machine_facts(device: str = "cpu") -> dict:
    """What ran the measurement: device name, core count, load average, library versions."""
    import open_clip
    import torch

    on_cuda = device.startswith("cuda")
    return {"device": torch.cuda.get_device_name(0) if on_cuda else platform.processor() or platform.machine(),
            "gpus": torch.cuda.device_count() if on_cuda else 0, "cpu_cores": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 2), "torch": torch.__version__,
            "cuda": torch.version.cuda if on_cuda else None, "open_clip": open_clip.__version__}
