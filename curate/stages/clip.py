"""`clip`: open_clip image and text embeddings and their cosine similarity (the CLIP score).

Any open_clip model: `--clip-model NAME --clip-pretrained TAG` (downloads, for
users with a network) or `--clip-pretrained PATH` to a local checkpoint, including a
`train run` checkpoint. Extra JSON model configs are registered from
`--clip-model-config PATH` (a file or folder) and from a `model_configs/` folder
next to a local checkpoint or one level up (where `train run` puts a copy).

Images are decoded and preprocessed by a torch DataLoader with worker
processes while the model runs; CUDA with bf16 autocast when present, CPU
fp32 otherwise. L2-normalised float16 embeddings are written row-aligned to
`embeddings/MODEL_TAG/00000.npy` with shape (rows, 2, dim) ([:, 0] image,
[:, 1] text); an unreadable image gets a NaN image row and a null score.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl
from tierclip.curate import atomic
from tierclip.curate.clipmodels import CHECKPOINT_SUFFIXES
from tierclip.curate.devices import DEVICE_PATTERN
from tierclip.curate.errors import UserError
from tierclip.curate.fields import Checked
from tierclip.curate.stages.base import IMAGES, ShardContext, Stage, images_required, option

PRODUCES = {"clip_score": pl.Float32}
_MODELS: dict[tuple, tuple] = {}  # (model, pretrained, model_config, device) -> (model, preprocess, tokenizer, device)


@dataclass(frozen=True)
class ClipConfig(Checked):
    model: str = option("ViT-B-32", "open_clip model name (a built-in config or one from --clip-model-config).")
    pretrained: str = option("openai", "an open_clip pretrained tag (needs a network) or a local checkpoint file, e.g. "
                             "RUN/checkpoint.pt; a model_configs/ folder next to it or one level up is registered automatically.",
                             path=True)
    model_config: str | None = option(None, "a JSON open_clip model config file (or a folder of them) to register.", path=True)
    batch_size: int = option(256, "images and captions per forward pass.", ge=1)
    loader_workers: int = option(2, "DataLoader processes decoding images (0 = decode in the main process).", ge=0)
    device: str = option("auto", "auto (cuda with bf16 autocast when available), cpu, cuda or cuda:N.", pattern=DEVICE_PATTERN)
    torch_threads: int = option(0, "torch CPU threads for the model (0 = torch's default; 1 is faster on a busy machine).", ge=0)
    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = ("batch_size", "loader_workers", "torch_threads")  # do not change the results


def embeddings_tag(cfg: ClipConfig) -> str:
    """Folder name under embeddings/: model and pretrained tag, or model and `<run folder>-<file stem>` for a checkpoint."""
    path = Path(cfg.pretrained)
    label = f"{path.parent.name}-{path.stem}" if path.suffix in CHECKPOINT_SUFFIXES else cfg.pretrained
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{cfg.model}-{label}")


def register_model_configs(cfg: ClipConfig) -> None:
    """--clip-model-config, and a `model_configs/` folder next to a checkpoint or one level up (where `train run` puts one)."""
    from tierclip.curate.clipmodels import register_model_configs as register

    if cfg.model_config:
        if not Path(cfg.model_config).exists():
            raise UserError(f"{cfg.model_config}: no such model config file or folder (--clip-model-config)")
        register(cfg.model_config)
    checkpoint = Path(cfg.pretrained)
    if checkpoint.is_file():
        register(*(f for f in (checkpoint.parent / "model_configs", checkpoint.parent.parent / "model_configs") if f.is_dir()))


def load_model(cfg: ClipConfig) -> tuple:
    """The model, its eval preprocess and tokenizer, loaded once per worker process."""
    from tierclip.curate.devices import resolve_device

    device = resolve_device(cfg.device)
    key = (cfg.model, cfg.pretrained, cfg.model_config, device)
    if key not in _MODELS:
        _MODELS[key] = (*_create(cfg, device), device)
    return _MODELS[key]


def _create(cfg: ClipConfig, device: str) -> tuple:
    from tierclip.curate.clipmodels import get_tokenizer
    from tierclip.curate.clipmodels import load_model as load_open_clip

    register_model_configs(cfg)
    model, _, preprocess = load_open_clip(cfg.model, cfg.pretrained, device=device, flag="--clip-model",
                                          hint="pass --clip-model-config PATH for a custom JSON config")
    model.eval()
    return model, preprocess, get_tokenizer(cfg.model)


class ImageBytes:
    """A map-style dataset over image bytes: (pixels, True), or (zeros, False) for a missing or broken image."""

    def __init__(self, blobs: list[bytes | None], preprocess, decode=None):
        from PIL import Image
        from tierclip.curate.images import DecodeOptions

        self.blobs, self.preprocess, self.decode = blobs, preprocess, decode or DecodeOptions()
        self.blank_shape = tuple(preprocess(Image.new("RGB", (8, 8))).shape)

    def __len__(self) -> int:
        return len(self.blobs)

    def __getitem__(self, index: int):
        import torch
        from tierclip.curate.images import ImageDecodeError, decode_image

        try:
            return self.preprocess(decode_image(self.blobs[index], self.decode)), True
        except ImageDecodeError:  # missing bytes or any decoder error: the row keeps a null score
            return torch.zeros(self.blank_shape), False


def encode(cfg: ClipConfig, blobs: list[bytes | None], captions: list[str] | None,
           decode=None) -> tuple[np.ndarray, np.ndarray | None]:
    """L2-normalised float32 image embeddings (NaN rows for unreadable images) and text embeddings (or None)."""
    import torch
    import torch.nn.functional as F
    from tierclip.curate.procs import loader_worker_init

    model, preprocess, tokenizer, device = load_model(cfg)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    # Each loader worker decodes a slice of a model batch, so all of them work on every batch: with whole batches
    # per worker, a 1,000-row shard at batch 512 kept 2 of 12 workers busy and a GPU scored ~470 pairs/s.
    chunk = max(1, -(-cfg.batch_size // max(1, cfg.loader_workers)))
    loader = torch.utils.data.DataLoader(ImageBytes(blobs, preprocess, decode), batch_size=chunk, shuffle=False,
                                         num_workers=cfg.loader_workers if len(blobs) > chunk else 0,
                                         worker_init_fn=loader_worker_init)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else contextlib.nullcontext()
    images, texts, start = [], [], 0
    with torch.inference_mode(), autocast:
        for pixels, ok in rebatch(loader, cfg.batch_size):
            image = F.normalize(model.encode_image(pixels.to(device)).float(), dim=-1).cpu().numpy()
            image[~ok.numpy()] = np.nan
            images.append(image)
            if captions is not None:
                tokens = tokenizer(captions[start:start + len(ok)]).to(device)
                texts.append(F.normalize(model.encode_text(tokens).float(), dim=-1).cpu().numpy())
            start += len(ok)
    dim = model.text_projection.shape[1] if not images else images[0].shape[1]
    image_emb = np.concatenate(images) if images else np.zeros((0, dim), np.float32)
    text_emb = (np.concatenate(texts) if texts else np.zeros((0, dim), np.float32)) if captions is not None else None
    return image_emb, text_emb


def rebatch(chunks, batch_size: int) -> Iterator[tuple]:
    """(pixels, ok) chunks from the loader regrouped into model batches of exactly `batch_size` (the last one shorter)."""
    import torch

    def joined(parts: list[tuple]) -> tuple:
        return torch.cat([p for p, _ in parts]), torch.cat([o for _, o in parts])

    pending: list[tuple] = []
    held = 0
    for pixels, ok in chunks:
        pending.append((pixels, ok))
        held += len(ok)
        while held >= batch_size:
            pixels_all, ok_all = joined(pending)
            yield pixels_all[:batch_size], ok_all[:batch_size]
            pending, held = [(pixels_all[batch_size:], ok_all[batch_size:])], held - batch_size
    if held:
        yield joined(pending)


def compute(meta: pl.DataFrame, images: Iterator | None, cfg: ClipConfig, ctx: ShardContext) -> pl.DataFrame:
    blobs = list(images_required(images, ctx, "clip"))
    captions = [c or "" for c in meta["caption"].to_list()]
    image_emb, text_emb = encode(cfg, blobs, captions, ctx.pool.decode_options)
    score = (image_emb * text_emb).sum(axis=1)  # NaN where the image is unreadable
    atomic.write_npy(ctx.pool.embeddings_path(embeddings_tag(cfg), ctx.shard), np.stack([image_emb, text_emb], axis=1).astype(np.float16))
    return pl.DataFrame({"uid": meta["uid"], "clip_score": score.astype(np.float32)}).with_columns(pl.col("clip_score").fill_nan(None))


def clip_config_of(pool) -> ClipConfig:
    """The options the pool's clip sidecar was computed with (the runner records them in scores/clip/_config.json)."""
    import json

    path = pool.scores_dir("clip") / "_config.json"
    if not path.is_file():
        raise UserError(f"{path}: missing; run `curate score {pool.root} --stages clip` first")
    return ClipConfig(**json.loads(path.read_text())["options"])


def embedding_folders(pool, cfg: ClipConfig) -> list[Path]:
    """The folder this config's embeddings go to (set aside with the sidecars by `--force`)."""
    return [pool.root / "embeddings" / embeddings_tag(cfg)]


STAGE = Stage(name="clip", produces=PRODUCES, compute=compute, config=ClipConfig, needs=("uid", "caption", IMAGES),
              max_workers=1, scores=("clip_score",), side_outputs=embedding_folders,
              doc="open_clip image-text cosine similarity; embeddings under embeddings/MODEL_TAG/")
