"""Tiny pools and a minimal CLIP method for the training-core tests."""

from __future__ import annotations

from pathlib import Path

from tests.tiny import make_pool, png_bytes

COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}


def color_pairs(n: int, offset: int = 0) -> list[tuple[bytes, str]]:
    names = list(COLORS)
    pairs = []
    for i in range(offset, offset + n):
        name = names[i % len(names)]
        shade = tuple(max(0, c - (i // len(names)) % 7 * 4) for c in COLORS[name])  # distinct bytes, distinct uids
        pairs.append((png_bytes(shade, size=(32, 32)), f"a photo of a {name} shape"))
    return pairs


def color_pool(root: Path, shards: int = 2, per_shard: int = 16, name: str = "tiny"):
    return make_pool(root, [color_pairs(per_shard, s * per_shard) for s in range(shards)], name=name)


def queue_values(method: str, size: int) -> dict:
    """`declip_queue_size` for the methods that have a nearest-neighbour queue (another method refuses the option)."""
    from tierclip.train.methods import method_option_keys

    return {"declip_queue_size": size} if "declip_queue_size" in method_option_keys(method) else {}


def queue_option(method: str, size: int) -> list[str]:
    return [arg for key, value in queue_values(method, size).items() for arg in (f"--{key.replace('_', '-')}", str(value))]


class TinyClip:
    """A minimal CLIP method (open_clip's ClipLoss) to test the loop without train/methods."""

    views = ("image", "text")
    model_overrides: dict = {}

    @staticmethod
    def build(model, cfg):
        from torch import nn

        class Method(nn.Module):
            views = ("image", "text")

            def __init__(self):
                super().__init__()
                self.cfg = cfg
                self.seen_progress = []

            def forward(self, model, batch):
                from open_clip.loss import ClipLoss

                image, text, scale = model(batch["image"], batch["text"])
                loss = ClipLoss()(image, text, scale)  # one process: the loop tests run no process group
                return {"loss": loss, "clip_loss": loss}

            def on_progress(self, model, progress):
                self.seen_progress.append(progress)

        return Method()


def color_evalset(root: Path) -> Path:
    """An eval set with one zero-shot task (colour) over a few single-colour images."""
    import polars as pl
    from tierclip.curate.evalset import write_evalset

    (root / "images").mkdir(parents=True)
    rows = []
    for i, name in enumerate(list(COLORS) * 2):
        file = f"images/{i:03d}.png"
        (root / file).write_bytes(png_bytes(COLORS[name], size=(32, 32)))
        rows.append({"file": file, "caption": f"a photo of a {name} shape", "color": name})
    task = {"name": "color", "kind": "zeroshot", "label_column": "color", "classnames": list(COLORS),
            "templates": ["a photo of a {} shape."]}
    write_evalset(root, "tiny-eval", [task], pl.DataFrame(rows))
    return root


def metrics(run: Path, part: str = "loss") -> list:
    """One logged value per metrics.jsonl line of a run folder."""
    import json

    return [json.loads(line)[part] for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]


def torchrun_train(args: list[str], nproc: int, env: dict | None = None):
    """`torchrun --standalone --nproc_per_node NPROC -m tierclip.train.cli run ARGS`; the finished process."""
    import os
    import subprocess
    import sys

    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
              "-m", "tierclip.train.cli", "run"]
    return subprocess.run(launch + args, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=500)


def clip_scores_with_checkpoint(pool_root: Path, checkpoint: Path, model: str):
    """Score POOL with the curate clip stage and a `train run` checkpoint; the clip sidecar as a frame."""
    from tierclip.curate.cli import app
    from tierclip.curate.pool import Pool
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["score", str(pool_root), "--stages", "clip", "--clip-model", model,
                                      "--clip-pretrained", str(checkpoint), "--workers", "1"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return Pool(pool_root).scan_scores("clip").collect()
