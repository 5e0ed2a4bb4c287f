"""The pool's image embeddings: the clip stage's, or ones imported at ingest (DataComp's `.npz` features).

Both live in the pool format's `embeddings/MODEL_TAG/NNNNN.npy` (float16,
shape (rows, 2, dim): [:, 0] image, [:, 1] text, L2-normalised; NaN rows where
there is no embedding). Imported embeddings carry a record,
`embeddings/MODEL_TAG/embeddings.json` (model, pretrained, source, keys), so the
stages that need image embeddings (image_dedup's near-duplicates, cluster,
SemDeDup, DataComp's image-based filter) run on a metadata-only pool.

Which one a stage uses: the clip stage's when the clip stage is complete
(the user computed it on purpose), else the imported one, else none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate.errors import UserError

RECORD = "embeddings.json"


@dataclass(frozen=True)
class EmbeddingSource:
    tag: str  # folder under embeddings/
    model: str  # open_clip model name
    pretrained: str  # open_clip pretrained tag or checkpoint path
    origin: str  # "clip stage" or e.g. "datacomp l14_img"


def imported(pool) -> EmbeddingSource | None:
    """The embeddings imported at ingest (the first folder, by name, with a record and every shard present)."""
    root = pool.root / "embeddings"
    if not root.is_dir():
        return None
    for folder in sorted(root.iterdir()):
        record = folder / RECORD
        if record.is_file() and all(pool.embeddings_path(folder.name, s).is_file() for s in pool.shard_ids()):
            info = json.loads(record.read_text())
            return EmbeddingSource(folder.name, info["model"], info["pretrained"], f"{info['source']} {info['image_key']}")
    return None


def pool_embeddings(pool) -> EmbeddingSource | None:
    """The image embeddings stages use: the complete clip stage's, else the imported ones, else None."""
    if "clip" in pool.stages():
        from curate.stages.clip import clip_config_of, embeddings_tag

        cfg = clip_config_of(pool)
        return EmbeddingSource(embeddings_tag(cfg), cfg.model, cfg.pretrained, "clip stage")
    return imported(pool)


def require(pool) -> EmbeddingSource:
    source = pool_embeddings(pool)
    if source is None:
        raise UserError(f"{pool.root}: no image embeddings; run `curate score {pool.root} --stages clip` "
                        "or ingest DataComp's .npz features with `curate ingest datacomp`")
    return source


def shard_image_embeddings(pool, source: EmbeddingSource, shard: int) -> np.ndarray:
    """One shard's image embeddings as float32 (NaN rows = no embedding); read from a memory map."""
    array = np.load(pool.embeddings_path(source.tag, shard), mmap_mode="r", allow_pickle=False)
    return np.asarray(array[:, 0], dtype=np.float32)


def iter_image_embeddings(pool, source: EmbeddingSource):
    """(shard, float32 image embeddings) shard by shard, so no caller needs the whole pool's embeddings at once."""
    for shard in pool.shard_ids():
        yield shard, shard_image_embeddings(pool, source, shard)


def embedding_dim(pool, source: EmbeddingSource) -> int:
    return int(np.load(pool.embeddings_path(source.tag, 0), mmap_mode="r", allow_pickle=False).shape[2])


def write_record(folder: Path, info: dict) -> None:
    from curate import atomic

    atomic.write_json(folder / RECORD, info)
