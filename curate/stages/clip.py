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
import itertools
import re
from collections.abc import Iterable, Iterator
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
    jpeg_draft: bool = option(False, "decode JPEGs of at least twice the model's input size at 1/2, 1/4 or 1/8 scale "
                              "(libjpeg's DCT scaling): faster, but the embeddings differ slightly from a full decode.")
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


class PairDecoder:
    """A map-style dataset whose indices are the work itself: (image bytes, caption or None) pairs.

    Item: (pixels, True, tokens), or (zeros, False, tokens) for a missing or broken image; tokens are an empty
    tensor when there is no caption list. The bytes travel to the loader workers with the index, so one set of
    workers serves every shard of a run (`decoded_batches`).
    """

    def __init__(self, preprocess, tokenizer, decode=None, draft_to: int = 0):
        from PIL import Image
        from tierclip.curate.images import DecodeOptions

        self.preprocess, self.tokenizer, self.decode = preprocess, tokenizer, decode or DecodeOptions()
        self.draft_to = draft_to
        self.blank_shape = tuple(preprocess(Image.new("RGB", (8, 8))).shape)

    def __getitem__(self, job: tuple):
        return self.__getitems__([job])[0]

    def __getitems__(self, jobs: list[tuple]) -> list[tuple]:
        import torch

        with one_thread():
            captions = [caption for _, caption in jobs]
            tokens = self.tokenizer(captions) if captions and captions[0] is not None else torch.zeros(len(jobs), 0, dtype=torch.long)
            return [(*self.pixels(blob), row_tokens) for (blob, _), row_tokens in zip(jobs, tokens, strict=True)]

    def batch(self, jobs: list[tuple]) -> tuple:
        """(pixels, ok, tokens) of the jobs stacked, as the loader hands them to the model."""
        import torch

        return torch.utils.data.default_collate(self.__getitems__(jobs))

    def pixels(self, blob: bytes | None) -> tuple:
        import torch
        from tierclip.curate.images import ImageDecodeError, decode_image

        try:
            return self.preprocess(decode_image(blob, self.decode, self.draft_to)), True
        except ImageDecodeError:  # missing bytes or any decoder error: the row keeps a null score
            return torch.zeros(self.blank_shape), False


@contextlib.contextmanager
def one_thread():
    """Decode with one torch thread, then restore the count. Loader workers already run with one (DataLoader sets
    it); decoding in the main process (`--loader-workers 0`) beside the model's thread pool is where it matters:
    the elementwise preprocessing (to-tensor, normalise) of a 224-px image took 14 ms with torch's 2 threads on a
    busy 2-core box, 0.4 ms with 1. Elementwise results do not depend on the thread count."""
    import torch

    threads = torch.get_num_threads()
    if threads != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads != 1:
            torch.set_num_threads(threads)


class PairFeed:
    """The loader's batch sampler: the chunks of (bytes, caption) pairs of the shard being scored, fed per shard."""

    def __init__(self):
        self.chunks: Iterator[list[tuple]] = iter(())

    def __iter__(self) -> Iterator[list[tuple]]:
        # A generator: the chunks are taken when iteration starts, so an iterator the DataLoader makes and drops
        # unused (it makes two on its first pass) takes nothing from the next one.
        chunks, self.chunks = self.chunks, iter(())
        yield from chunks


_DECODERS: dict[tuple, tuple] = {}  # one (key, loader, feed): the loader workers outlive shards, not runs of other options


def shard_loader(cfg: ClipConfig, decode, pinned: bool) -> tuple:
    """The DataLoader (and its feed) of this process's model and options, created once: its workers start with the
    first shard and serve every later one (persistent workers), instead of starting and stopping per shard."""
    import torch
    from tierclip.curate.procs import loader_worker_init

    key = (cfg.model, cfg.pretrained, cfg.model_config, cfg.device, cfg.loader_workers, cfg.jpeg_draft, decode, pinned)
    if key not in _DECODERS:
        close_loaders()
        model, preprocess, tokenizer, _ = load_model(cfg)
        feed = PairFeed()
        loader = torch.utils.data.DataLoader(PairDecoder(preprocess, tokenizer, decode, draft_size(cfg, model)), batch_sampler=feed,
                                             num_workers=cfg.loader_workers, persistent_workers=cfg.loader_workers > 0,
                                             pin_memory=pinned, worker_init_fn=loader_worker_init)
        _DECODERS[key] = (loader, feed)
    return _DECODERS[key]


def draft_size(cfg: ClipConfig, model) -> int:
    """With `--clip-jpeg-draft`, the model's input side (JPEGs of twice that are decoded reduced); 0 without."""
    if not cfg.jpeg_draft:
        return 0
    import open_clip

    size = open_clip.get_model_preprocess_cfg(model)["size"]
    return max(size) if isinstance(size, (tuple, list)) else int(size)


def close_loaders() -> None:
    """Stop the cached loader's workers (a loader for other options replaces it)."""
    for loader, _ in _DECODERS.values():
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
    _DECODERS.clear()


def decoded_batches(cfg: ClipConfig, blobs: Iterable, captions: list[str] | None, decode, device: str) -> Iterator[tuple]:
    """(pixels, ok, tokens) model batches of exactly `batch_size` rows (the last one shorter), on `device`.

    Each loader worker decodes a slice of a model batch, so all of them work on every batch: with whole batches
    per worker, a 1,000-row shard at batch 512 kept 2 of 12 workers busy and a GPU scored ~470 pairs/s. The
    image bytes are read lazily, as the workers ask for work; on CUDA the slices arrive in pinned memory and are
    copied without blocking.
    """
    workers = cfg.loader_workers
    chunk = max(1, -(-cfg.batch_size // max(1, workers)))
    pinned = device.startswith("cuda") and workers > 0
    loader, feed = shard_loader(cfg, decode, pinned)
    chunks = chunked(zip(blobs, captions if captions is not None else itertools.repeat(None), strict=False), chunk)
    feed.chunks = read_ahead(chunks, 4 * workers) if workers else chunks
    moved = (tuple(part.to(device, non_blocking=pinned) for part in batch) for batch in loader)
    return rebatch(moved, cfg.batch_size)


def read_ahead(items: Iterator, depth: int) -> Iterator:
    """The items, pulled by a background thread up to `depth` ahead: reading the shard's tar (~0.25 ms a pair
    in Python's tarfile) overlaps the model's work in this thread instead of adding to it. An exception of the
    source is raised here, in order."""
    import queue
    import threading

    ahead: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple) -> None:
        while not stop.is_set():
            try:
                return ahead.put(entry, timeout=0.1)
            except queue.Full:
                continue

    def pull() -> None:
        try:
            for item in items:
                offer((True, item))
            offer((False, None))
        except BaseException as exc:  # handed to the consumer, raised there
            offer((False, exc))

    threading.Thread(target=pull, daemon=True, name="clip-read-ahead").start()
    try:
        while True:
            more, item = ahead.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()


def chunked(pairs: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    """Lists of `size` consecutive pairs (the last one shorter)."""
    chunk: list[tuple] = []
    for pair in pairs:
        chunk.append(pair)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def embed_batch(model, pixels, tokens, device: str) -> tuple:
    """L2-normalised float32 image and text embeddings of one batch (text None without tokens), on `device`:
    the stage's model work, which `bench/bench_speed.py` times alone as the model limit."""
    import torch.nn.functional as F

    image = F.normalize(model.encode_image(pixels).float(), dim=-1)
    text = F.normalize(model.encode_text(tokens).float(), dim=-1) if tokens.shape[1] else None
    return image, text


def encode(cfg: ClipConfig, blobs: Iterable[bytes | None], captions: list[str] | None,
           decode=None) -> tuple[np.ndarray, np.ndarray | None]:
    """L2-normalised float32 image embeddings (NaN rows for unreadable images) and text embeddings (or None)."""
    import torch

    model, _, _, device = load_model(cfg)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else contextlib.nullcontext()
    images, texts = [], []
    try:
        with torch.inference_mode(), autocast:
            for pixels, ok, tokens in decoded_batches(cfg, blobs, captions, decode, device):
                image, text = embed_batch(model, pixels, tokens, device)
                images.append(image.masked_fill(~ok[:, None], float("nan")))
                texts.append(text)
    except BaseException:  # a loader left mid-shard is not reused
        close_loaders()
        raise
    dim = images[0].shape[1] if images else model.text_projection.shape[1]
    image_emb = torch.cat(images).cpu().numpy() if images else np.zeros((0, dim), np.float32)
    if captions is None:
        return image_emb, None
    return image_emb, torch.cat(texts).cpu().numpy() if texts else np.zeros((0, dim), np.float32)


def rebatch(chunks, batch_size: int) -> Iterator[tuple]:
    """Tuples of tensors (pixels, ok, tokens) from the loader regrouped into model batches of exactly `batch_size`
    rows (the last one shorter), in order."""
    import torch

    def joined(parts: list[tuple]) -> tuple:
        return tuple(torch.cat(column) for column in zip(*parts, strict=True))

    pending: list[tuple] = []
    held = 0
    for part in chunks:
        pending.append(part)
        held += len(part[0])
        while held >= batch_size:
            whole = joined(pending)
            yield tuple(column[:batch_size] for column in whole)
            pending, held = [tuple(column[batch_size:] for column in whole)], held - batch_size
    if held:
        yield joined(pending)


def compute(meta: pl.DataFrame, images: Iterator | None, cfg: ClipConfig, ctx: ShardContext) -> pl.DataFrame:
    blobs = images_required(images, ctx, "clip")  # read lazily, as the loader asks for work
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
