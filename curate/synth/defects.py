"""Inject defects into a shard's drafted rows; each defect is one function in `INJECTORS`.

A shard is first drafted clean (scene, rendered image, English caption for
every row), then the rows labelled with a defect are changed in order, so a
duplicate can copy an earlier row and a misaligned row can borrow the
caption of a clean one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from tierclip.curate.errors import UserError
from tierclip.curate.pool import OK
from tierclip.curate.synth.captions import boilerplate, describe, describes, light_edit
from tierclip.curate.synth.config import DEFECTS, DUP_DEFECTS, DefectRates
from tierclip.curate.synth.draw import encode_jpeg, encode_png
from tierclip.curate.synth.languages import OTHER_LANGUAGES
from tierclip.curate.synth.scene import COLOR_NAMES, SHAPES, Scene, sample_scene

CLEAN = "clean"
TINY_SIDES = (6, 12)  # inclusive range of a tiny image's width and height
MAX_TRIES = 40
HTML_PAGE = b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n"


@dataclass
class Row:
    """One sample while its shard is being made (mutable on purpose: defects edit it in place)."""

    position: int
    scene: Scene
    picture: Image.Image
    image: bytes | None
    caption: str
    image_ext: str = "png"
    width: int | None = None
    height: int | None = None
    lang: str | None = "en"
    defect: str = CLEAN
    status: str = OK
    error: str | None = None
    dup_of: int | None = None  # position of the original in the shard


@dataclass
class Draft:
    rows: list[Row]
    rng: np.random.Generator
    max_objects: int
    clean_positions: list[int] = field(default_factory=list)
    lent: set[int] = field(default_factory=set)  # clean rows whose caption a misaligned row took

    def pick(self, items):
        return items[int(self.rng.integers(len(items)))]


def assign_labels(n: int, rates: DefectRates, rng: np.random.Generator) -> list[str]:
    """Exactly round(rate * n) rows per defect (largest remainders), shuffled; the rest clean."""
    wanted = {name: getattr(rates, name) * n for name in DEFECTS}
    counts = {name: int(np.floor(value)) for name, value in wanted.items()}
    spare = min(n - sum(counts.values()), round(sum(wanted.values())) - sum(counts.values()))
    for name in sorted(DEFECTS, key=lambda d: counts[d] - wanted[d])[:max(spare, 0)]:
        counts[name] += 1
    labels = [name for name in DEFECTS for _ in range(counts[name])]
    labels += [CLEAN] * (n - len(labels))
    return [labels[i] for i in rng.permutation(n)]


def place_originals(labels: list[str], shard_size: int) -> list[str]:
    """Keep duplicates off each shard's first row (it has no earlier row to copy) by swapping labels."""
    labels = list(labels)
    for start in range(0, len(labels), shard_size):
        if labels[start] not in DUP_DEFECTS:
            continue
        later_first = itertools.chain(range(start + 1, len(labels)), range(start))
        swap = next((i for i in later_first if i % shard_size and labels[i] not in DUP_DEFECTS), None)
        if swap is None:
            raise UserError(f"--shard-size {shard_size}: too small to hold each duplicate after its original")
        labels[start], labels[swap] = labels[swap], labels[start]
    return labels


def inject(draft: Draft, labels: list[str]) -> None:
    draft.clean_positions = [i for i, label in enumerate(labels) if label == CLEAN]
    for row, label in zip(draft.rows, labels, strict=True):
        if label != CLEAN:
            row.defect = label
            INJECTORS[label](draft, row)


# -- the defects ----------------------------------------------------------------------
def misaligned(draft: Draft, row: Row) -> None:
    """The caption of another, unrelated row: a clean row not lent before when there is one.

    Lending each clean caption at most once keeps a misaligned caption to one
    copy beside its donor (text dedup then sees pairs, not large groups).
    """
    for donor in _donors(draft, row):
        if donor.position != row.position and _unrelated(donor.scene, row.scene):
            draft.lent.add(donor.position)
            row.caption = donor.caption if donor.defect == CLEAN else describe(donor.scene, "en", draft.rng)
            return
    row.caption = describe(_unrelated_scene(draft, row.scene), "en", draft.rng)


def _donors(draft: Draft, row: Row):
    unlent = [i for i in draft.clean_positions if i not in draft.lent]
    yield from (draft.rows[unlent[i]] for i in draft.rng.permutation(len(unlent)))
    candidates = draft.clean_positions or [r.position for r in draft.rows]
    yield from (draft.rows[draft.pick(candidates)] for _ in range(MAX_TRIES))


def _unrelated(other: Scene, scene: Scene) -> bool:
    return not set(other.pairs) & set(scene.pairs) and not _same_counts(other, scene)


def _same_counts(a: Scene, b: Scene) -> bool:
    return sorted(o.shape for o in a.objects) == sorted(o.shape for o in b.objects) and \
        sorted(o.color for o in a.objects) == sorted(o.color for o in b.objects)


def _unrelated_scene(draft: Draft, scene: Scene) -> Scene:
    while True:
        other = sample_scene(draft.rng, draft.max_objects)
        if _unrelated(other, scene):
            return other


def attribute_swap(draft: Draft, row: Row) -> None:
    """A caption of the same scene with one object's colour or shape changed to another value."""
    index = int(draft.rng.integers(len(row.scene.objects)))
    obj = row.scene.objects[index]
    attribute = draft.pick(("color", "shape"))
    values = COLOR_NAMES if attribute == "color" else SHAPES
    pairs = set(row.scene.pairs)
    options = [v for v in values if v != getattr(obj, attribute)
               and ((obj.shape, v) if attribute == "color" else (v, obj.color)) not in pairs]
    wrong = row.scene.with_object(index, **{attribute: draft.pick(options)})
    for _ in range(MAX_TRIES):  # a template that hides nothing: the swap must show in the words
        row.caption = describe(wrong, "en", draft.rng)
        if not describes(row.caption, row.scene):
            return


def boilerplate_caption(draft: Draft, row: Row) -> None:
    row.caption = boilerplate(draft.rng)
    row.lang = None


def non_english(draft: Draft, row: Row) -> None:
    row.lang = draft.pick(OTHER_LANGUAGES)
    row.caption = describe(row.scene, row.lang, draft.rng)


def _original(draft: Draft, row: Row) -> Row:
    """An earlier clean row of the shard, else any earlier row that is not a duplicate itself."""
    earlier = [i for i in draft.clean_positions if i < row.position]
    if not earlier:
        earlier = [r.position for r in draft.rows[:row.position] if r.defect not in DUP_DEFECTS]
    return draft.rows[draft.pick(earlier)]


def _copy_content(row: Row, original: Row) -> None:
    row.scene, row.picture, row.lang, row.dup_of = original.scene, original.picture, original.lang, original.position
    row.width, row.height, row.status, row.error = original.width, original.height, original.status, original.error


def exact_dup(draft: Draft, row: Row) -> None:
    original = _original(draft, row)
    _copy_content(row, original)
    row.image, row.image_ext, row.caption = original.image, original.image_ext, original.caption


def near_dup(draft: Draft, row: Row) -> None:
    """The original's image shifted by 1-2 px or re-encoded as JPEG, its caption lightly edited."""
    original = _original(draft, row)
    _copy_content(row, original)
    row.caption = light_edit(original.caption, draft.rng)
    if draft.rng.random() < 0.5:
        row.image, row.image_ext = encode_jpeg(original.picture, quality=int(draft.rng.integers(70, 93))), "jpg"
    else:
        row.picture = _shifted(original.picture, draft.rng)
        row.image, row.image_ext = encode_png(row.picture), "png"


def _shifted(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
    dx, dy = 0, 0
    while dx == 0 and dy == 0:
        dx, dy = (int(v) for v in rng.integers(-2, 3, size=2))
    pixels = np.asarray(picture)
    pad = np.pad(pixels, ((2, 2), (2, 2), (0, 0)), mode="edge")
    h, w = pixels.shape[:2]
    return Image.fromarray(pad[2 + dy:2 + dy + h, 2 + dx:2 + dx + w])


def tiny(draft: Draft, row: Row) -> None:
    width, height = (int(v) for v in draft.rng.integers(TINY_SIDES[0], TINY_SIDES[1] + 1, size=2))
    row.picture = row.picture.resize((width, height), Image.Resampling.BOX)
    row.image, row.width, row.height = encode_png(row.picture), width, height


def corrupt(draft: Draft, row: Row) -> None:
    """Truncated PNG, garbled header, or an HTML error page saved as the image."""
    kind = draft.pick(tuple(CORRUPTIONS))
    row.image = CORRUPTIONS[kind](row.image, draft.rng)
    row.width = row.height = None
    row.status, row.error = "corrupt_image", f"image bytes do not decode ({kind})"


CORRUPTIONS: dict[str, Callable[[bytes, np.random.Generator], bytes]] = {
    "truncated": lambda data, rng: data[:int(len(data) * rng.uniform(0.2, 0.6))],
    "garbled": lambda data, rng: rng.integers(0, 256, size=24, dtype=np.uint8).tobytes() + data[24:],
    "html": lambda data, rng: HTML_PAGE,
}


def empty_caption(draft: Draft, row: Row) -> None:
    row.caption = draft.pick(("", "", " ", "\n"))
    row.lang = None
    row.status, row.error = "empty_caption", "caption is empty"


INJECTORS: dict[str, Callable[[Draft, Row], None]] = {
    "misaligned": misaligned,
    "attribute_swap": attribute_swap,
    "boilerplate": boilerplate_caption,
    "non_english": non_english,
    "exact_dup": exact_dup,
    "near_dup": near_dup,
    "tiny": tiny,
    "corrupt": corrupt,
    "empty_caption": empty_caption,
}
