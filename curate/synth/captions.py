"""Captions for scenes: varied templates, synonyms, other languages, web boilerplate.

`describe(scene, "en", rng)` draws a template and words at random; every
template names the colour and shape of every object, so
`english_mentions(caption)` recovers the (shape, colour) counts a caption
claims, which is how tests check aligned, swapped and misaligned captions.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
from tierclip.curate.synth.languages import EN_COLORS, EN_SHAPES, ENGLISH, LANGUAGES, SYNONYM_PROB, article_en
from tierclip.curate.synth.scene import Obj, Scene, background_word

SIZE_PROB = 0.5  # chance a noun phrase names the object's size
LIST_POSITION_PROB = 0.4  # chance an object in a list of several names its position
CAPITALIZE_PROB = 0.25
PERIOD_PROB = 0.2


def describe(scene: Scene, lang: str, rng: np.random.Generator) -> str:
    language = LANGUAGES[lang]

    def pick(words: tuple[str, ...]) -> str:
        if len(words) == 1 or rng.random() >= SYNONYM_PROB:
            return words[0]
        return words[1 + int(rng.integers(len(words) - 1))]

    def phrase(obj: Obj) -> str:
        return language.phrase(obj, bool(rng.random() < SIZE_PROB), pick)

    if len(scene.objects) == 1:
        text = _single(language, scene, phrase(scene.objects[0]), pick, rng)
    else:
        text = _multi(language, scene, phrase, rng)
    return _web_style(text, rng) if lang == "en" else text


def _single(language, scene: Scene, noun_phrase: str, pick, rng: np.random.Generator) -> str:
    obj = scene.objects[0]
    template = language.single[int(rng.integers(len(language.single)))]
    pos = language.positions[obj.position]
    fields = dict(np=noun_phrase, pos=pos, Pos=pos[:1].upper() + pos[1:], bg=background_word(scene.background))
    if language is ENGLISH:
        fields.update(color=pick(EN_COLORS[obj.color]), shape=pick(EN_SHAPES[obj.shape]))
    return template.format(**fields)


def _multi(language, scene: Scene, phrase, rng: np.random.Generator) -> str:
    items = []
    for obj in scene.objects:
        item = phrase(obj)
        if rng.random() < LIST_POSITION_PROB:
            item = f"{item} {language.positions[obj.position]}"
        items.append(item)
    listed = f"{', '.join(items[:-1])} {language.conjunction} {items[-1]}"
    template = language.multi[int(rng.integers(len(language.multi)))]
    return template.format(list=listed, count=language.counts[len(items)], bg=background_word(scene.background))


def _web_style(text: str, rng: np.random.Generator) -> str:
    if rng.random() < CAPITALIZE_PROB:
        text = text[:1].upper() + text[1:]
    if rng.random() < PERIOD_PROB:
        text += "."
    return text


def canonical_caption(obj: Obj) -> str:
    """One fixed English description of a single object (the eval set's retrieval captions)."""
    words = f"{obj.size} {obj.color} {obj.shape}"
    return f"{article_en(words)} {words} {ENGLISH.positions[obj.position]}"


# -- reading captions back ------------------------------------------------------------
_SHAPE_WORDS = {word: shape for shape, words in EN_SHAPES.items() for word in words}
_COLOR_WORDS = {word: color for color, words in EN_COLORS.items() for word in words}
_WORD = re.compile(r"[a-z]+(?: sign)?")


def english_mentions(caption: str) -> tuple[Counter, Counter]:
    """(shape counts, colour counts) an English caption names, synonyms mapped to class names."""
    words = _WORD.findall(caption.lower())
    shapes = Counter(_SHAPE_WORDS[w] for w in words if w in _SHAPE_WORDS)
    colors = Counter(_COLOR_WORDS[w] for w in words if w in _COLOR_WORDS)
    return shapes, colors


def describes(caption: str, scene: Scene) -> bool:
    """Whether an English caption names exactly the scene's shapes and colours."""
    shapes, colors = english_mentions(caption)
    return shapes == Counter(o.shape for o in scene.objects) and colors == Counter(o.color for o in scene.objects)


# -- web noise ----------------------------------------------------------------------
BOILERPLATE = (
    "IMG_{n4}.JPG", "DSC_{n4}.jpg", "DSC{n5}.JPG", "click to enlarge", "stock photo {n5}", "stock image {n6}",
    "untitled", "image", "no description available", "view larger image", "thumbnail", "photo_{n6}.png",
    "Copyright {year} all rights reserved", "screenshot {year}-0{d1}-1{d1}", "IMG-{year}0{d1}1{d1}-WA{n4}.jpg",
    "product image {n2}", "download now", "click here", "image {n1} of {n2}", "default_image.png",
)


def boilerplate(rng: np.random.Generator) -> str:
    template = BOILERPLATE[int(rng.integers(len(BOILERPLATE)))]
    digits = {f"n{k}": f"{int(rng.integers(10 ** k)):0{k}d}" for k in range(1, 7)}
    return template.format(year=int(rng.integers(2005, 2025)), d1=int(rng.integers(10)), **digits)


# Light edits that keep the meaning (near-duplicate captions): each returns the edited text.
_EDIT_SWAPS = (("large", "big"), ("big", "large"), ("small", "little"), ("little", "small"), ("a photo of", "photo of"),
               ("in the center", "in the middle"), ("shapes:", "shapes -"))


def light_edit(caption: str, rng: np.random.Generator) -> str:
    """A lightly edited copy: a word swapped for a synonym, case or punctuation changed."""
    swaps = [(old, new) for old, new in _EDIT_SWAPS if old in caption]
    edits = [lambda t: t.rstrip(".") + "!" if t.endswith(".") else t + ".", lambda t: t.swapcase()[:1] + t[1:]]
    if swaps:
        old, new = swaps[int(rng.integers(len(swaps)))]
        edits.append(lambda t: t.replace(old, new, 1))
    edited = edits[int(rng.integers(len(edits)))](caption)
    return edited if edited != caption else caption + " ."

