"""The eval set of held-out concepts (format: `curate/evalset.py`).

Every image of a held-out emoji concept (all styles and skin tones) is a row: `file`, `caption` (its CLDR
name, e.g. "waving hand: medium skin tone"; styles of one emoji share it), `source`, `license`,
`attribution`, `concept`, `group`, `subgroup`, `skin_tone`. Tasks:
- `heldout_retrieval`: image-text retrieval over every row by its name (both directions, the headline:
  names never seen in training);
- `group`, `subgroup`, `skin_tone`: zero-shot classification on balanced classes. A class takes part
  when it has at least `min_per_class` held-out images; every taking part class contributes the same number
  of images (the smallest count, drawn with the seed), so chance (1/k) and the majority-class baseline
  are equal; its label column (`zs_group`, ...) is null outside that draw. A task with fewer than two
  such classes is left out (and said so).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
from tierclip.curate import atomic
from tierclip.curate.evalset import write_evalset
from tierclip.curate.images import ImageDecodeError
from tierclip.curate.ingest.checks import ImageOptions, check_image
from tierclip.curate.realpool.items import Item
from tierclip.curate.realpool.render import load_image

TEMPLATES = {
    "group": ("a {} emoji.", "an emoji of {}.", "{} emoji"),
    "subgroup": ("{}: an emoji.", "a {} emoji.", "an emoji of {}."),
    "skin_tone": ("an emoji: {}.", "a person: {}.", "{}"),
}
LABELS = tuple(TEMPLATES)


def write_heldout_evalset(root: Path, items: list[Item], images: ImageOptions, min_per_class: int,
                          rng: np.random.Generator) -> list[str]:
    """Write the eval set; return one line per task left out (fewer than two classes with enough images)."""
    frame, unusable = _write_images(root, items, images)
    tasks = [{"name": "heldout_retrieval", "kind": "retrieval", "caption_column": "caption"}]
    notes = [f"{len(unusable)} held-out images left out of the eval set: {'; '.join(unusable[:3])}"] if unusable else []
    for label in LABELS:
        column, classes = balanced_column(frame[label].to_list(), min_per_class, rng)
        if len(classes) < 2:
            notes.append(f"zero-shot task {label!r} left out: {len(classes)} class(es) with >= {min_per_class} held-out images")
            continue
        frame = frame.with_columns(pl.Series(f"zs_{label}", column, dtype=pl.Utf8))
        tasks.append({"name": label, "kind": "zeroshot", "label_column": f"zs_{label}", "classnames": classes,
                      "templates": list(TEMPLATES[label])})
    write_evalset(root, "packages-heldout", tasks, frame)
    return notes


def balanced_column(labels: list[str | None], min_per_class: int, rng: np.random.Generator) -> tuple[list, list[str]]:
    """(label or None per row, the classes taking part): each class with >= min_per_class rows keeps the
    same number of rows, the smallest such count, drawn at random."""
    counts = Counter(label for label in labels if label is not None)
    classes = sorted(label for label, n in counts.items() if n >= min_per_class)
    column: list[str | None] = [None] * len(labels)
    if not classes:
        return column, []
    per_class = min(counts[c] for c in classes)
    for label in classes:
        rows = [i for i, value in enumerate(labels) if value == label]
        for i in rng.choice(rows, size=per_class, replace=False).tolist():
            column[i] = label
    return column, classes


def _write_images(root: Path, items: list[Item], images: ImageOptions) -> tuple[pl.DataFrame, list[str]]:
    """Each held-out image through ingest's checks (decode, pixel limit, resize), saved as images/KEY.EXT; and
    why each unusable one was left out."""
    rows, unusable = [], []
    for item in items:
        checked = _checked(item, images)
        if isinstance(checked, str):
            unusable.append(f"{item.relative}: {checked}")
            continue
        file = f"images/{item.key}.{checked.ext}"
        atomic.write_bytes(root / file, checked.data)
        rows.append({"file": file, "caption": item.name, "source": item.source, "license": item.license,
                     "attribution": item.attribution, "concept": item.concept,
                     **{label: item.labels.get(label) for label in LABELS}})
    schema = {"file": pl.Utf8, "caption": pl.Utf8, "source": pl.Utf8, "license": pl.Utf8, "attribution": pl.Utf8,
              "concept": pl.Utf8, **dict.fromkeys(LABELS, pl.Utf8)}
    return pl.DataFrame(rows, schema=schema), unusable


def _checked(item: Item, images: ImageOptions):
    """The image as ingest stores it, or why it cannot be used."""
    if item.path is None or not item.path.is_file():
        return "no image file in the package"
    try:
        data, ext = load_image(item.path, images.image_size)
    except ImageDecodeError as exc:
        return str(exc)
    checked = check_image(data, ext, images)
    return checked.problem or checked
