"""Word tables and templates for captions, one `Language` per code.

English has synonyms and the most templates (it is the training language);
French, German, Spanish, Italian and Portuguese describe the same scenes
with the same kind of templates (the `non_english` defect). Every template
mentions the colour and the shape of every object, so a caption's mentions
can be checked against the scene.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tierclip.curate.synth.scene import Obj

# English synonyms: the canonical word first and most often.
EN_SHAPES = {
    "circle": ("circle", "disc"),
    "square": ("square",),
    "triangle": ("triangle",),
    "star": ("star",),
    "ring": ("ring", "donut"),
    "cross": ("cross", "plus sign"),
    "diamond": ("diamond", "rhombus"),
    "hexagon": ("hexagon",),
}
EN_COLORS = {
    "red": ("red",), "orange": ("orange",), "yellow": ("yellow",), "green": ("green",),
    "blue": ("blue",), "purple": ("purple", "violet"), "pink": ("pink",), "brown": ("brown",),
}
EN_SIZES = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
SYNONYM_PROB = 0.15  # chance of a synonym instead of the canonical word


@dataclass(frozen=True)
class Language:
    code: str
    phrase: Callable[[Obj, bool, Callable[[tuple[str, ...]], str]], str]  # (obj, with_size, pick) -> noun phrase
    positions: dict[str, str]
    single: tuple[str, ...]  # fields: np, pos, Pos, bg, color, shape
    multi: tuple[str, ...]  # fields: list, count, bg
    counts: dict[int, str]
    conjunction: str


def article_en(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def english_phrase(obj: Obj, with_size: bool, pick) -> str:
    words = ([pick(EN_SIZES[obj.size])] if with_size else []) + [pick(EN_COLORS[obj.color]), pick(EN_SHAPES[obj.shape])]
    return f"{article_en(words[0])} {' '.join(words)}"


@dataclass(frozen=True)
class Romance:
    """Article + noun + adjectives agreeing in gender (French puts the size word first)."""

    articles: dict[str, str]
    shapes: dict[str, tuple[str, str]]  # shape -> (noun, gender)
    colors: dict[str, tuple[str, str]]  # colour -> (masculine, feminine)
    sizes: dict[str, tuple[str, str]]
    size_first: bool

    def __call__(self, obj: Obj, with_size: bool, pick) -> str:
        noun, gender = self.shapes[obj.shape]
        form = 0 if gender == "m" else 1
        color = self.colors[obj.color][form]
        size = self.sizes[obj.size][form]
        if not with_size:
            return f"{self.articles[gender]} {noun} {color}"
        if self.size_first:
            return f"{self.articles[gender]} {size} {noun} {color}"
        return f"{self.articles[gender]} {noun} {color} {size}"


@dataclass(frozen=True)
class German:
    """ein/eine + adjective with the nominative ending of the noun's gender + noun."""

    shapes: dict[str, tuple[str, str]]
    colors: dict[str, str]  # stem; invariant words (lila, rosa) take no ending
    invariant: frozenset[str]

    ENDINGS = {"m": "er", "f": "e", "n": "es"}
    ARTICLES = {"m": "ein", "f": "eine", "n": "ein"}

    def __call__(self, obj: Obj, with_size: bool, pick) -> str:
        noun, gender = self.shapes[obj.shape]
        stem = self.colors[obj.color]
        color = stem if stem in self.invariant else stem + self.ENDINGS[gender]
        size = {"small": "klein", "large": "groß"}[obj.size] + self.ENDINGS[gender]
        words = [self.ARTICLES[gender]] + ([size] if with_size else []) + [color, noun]
        return " ".join(words)


ENGLISH = Language(
    code="en",
    phrase=english_phrase,
    positions={
        "top left": "at the top left", "top": "at the top", "top right": "at the top right",
        "left": "on the left", "center": "in the center", "right": "on the right",
        "bottom left": "at the bottom left", "bottom": "at the bottom", "bottom right": "at the bottom right",
    },
    single=(
        "{np} {pos}", "{np}", "a photo of {np}", "a photo of {np} {pos}", "an image of {np} {pos}",
        "a picture of {np} on a {bg} background", "{Pos}, {np}", "a {shape} shape in {color} {pos}",
        "a {color} shape: a {shape} {pos}", "a simple drawing of {np}", "there is {np} {pos}",
        "{np} on a {bg} background",
    ),
    multi=("{count} shapes: {list}", "{list}", "a photo of {list}", "an image with {list}",
           "{list} on a {bg} background", "{count} objects: {list}"),
    counts={2: "two", 3: "three"},
    conjunction="and",
)

FRENCH = Language(
    code="fr",
    phrase=Romance(
        articles={"m": "un", "f": "une"},
        shapes={"circle": ("cercle", "m"), "square": ("carré", "m"), "triangle": ("triangle", "m"), "star": ("étoile", "f"),
                "ring": ("anneau", "m"), "cross": ("croix", "f"), "diamond": ("losange", "m"), "hexagon": ("hexagone", "m")},
        colors={"red": ("rouge", "rouge"), "orange": ("orange", "orange"), "yellow": ("jaune", "jaune"),
                "green": ("vert", "verte"), "blue": ("bleu", "bleue"), "purple": ("violet", "violette"),
                "pink": ("rose", "rose"), "brown": ("marron", "marron")},
        sizes={"small": ("petit", "petite"), "large": ("grand", "grande")},
        size_first=True,
    ),
    positions={
        "top left": "en haut à gauche", "top": "en haut", "top right": "en haut à droite",
        "left": "à gauche", "center": "au centre", "right": "à droite",
        "bottom left": "en bas à gauche", "bottom": "en bas", "bottom right": "en bas à droite",
    },
    single=("{np} {pos}", "{np}", "une image avec {np}", "il y a {np} {pos}", "dessin simple : {np} {pos}"),
    multi=("{count} formes : {list}", "{list}", "une image avec {list}"),
    counts={2: "deux", 3: "trois"},
    conjunction="et",
)

GERMAN = Language(
    code="de",
    phrase=German(
        shapes={"circle": ("Kreis", "m"), "square": ("Quadrat", "n"), "triangle": ("Dreieck", "n"), "star": ("Stern", "m"),
                "ring": ("Ring", "m"), "cross": ("Kreuz", "n"), "diamond": ("Raute", "f"), "hexagon": ("Sechseck", "n")},
        colors={"red": "rot", "orange": "orangefarben", "yellow": "gelb", "green": "grün", "blue": "blau",
                "purple": "lila", "pink": "rosa", "brown": "braun"},
        invariant=frozenset({"lila", "rosa"}),
    ),
    positions={
        "top left": "oben links", "top": "oben", "top right": "oben rechts",
        "left": "links", "center": "in der Mitte", "right": "rechts",
        "bottom left": "unten links", "bottom": "unten", "bottom right": "unten rechts",
    },
    single=("{np} {pos}", "{np}", "hier ist {np} {pos}", "Bild: {np}", "eine einfache Zeichnung: {np} {pos}"),
    multi=("{count} Formen: {list}", "{list}", "Bild: {list}"),
    counts={2: "zwei", 3: "drei"},
    conjunction="und",
)

SPANISH = Language(
    code="es",
    phrase=Romance(
        articles={"m": "un", "f": "una"},
        shapes={"circle": ("círculo", "m"), "square": ("cuadrado", "m"), "triangle": ("triángulo", "m"), "star": ("estrella", "f"),
                "ring": ("anillo", "m"), "cross": ("cruz", "f"), "diamond": ("rombo", "m"), "hexagon": ("hexágono", "m")},
        colors={"red": ("rojo", "roja"), "orange": ("naranja", "naranja"), "yellow": ("amarillo", "amarilla"),
                "green": ("verde", "verde"), "blue": ("azul", "azul"), "purple": ("morado", "morada"),
                "pink": ("rosa", "rosa"), "brown": ("marrón", "marrón")},
        sizes={"small": ("pequeño", "pequeña"), "large": ("grande", "grande")},
        size_first=False,
    ),
    positions={
        "top left": "arriba a la izquierda", "top": "arriba", "top right": "arriba a la derecha",
        "left": "a la izquierda", "center": "en el centro", "right": "a la derecha",
        "bottom left": "abajo a la izquierda", "bottom": "abajo", "bottom right": "abajo a la derecha",
    },
    single=("{np} {pos}", "{np}", "una foto de {np}", "hay {np} {pos}", "un dibujo sencillo: {np} {pos}"),
    multi=("{count} formas: {list}", "{list}", "una foto de {list}"),
    counts={2: "dos", 3: "tres"},
    conjunction="y",
)

ITALIAN = Language(
    code="it",
    phrase=Romance(
        articles={"m": "un", "f": "una"},
        shapes={"circle": ("cerchio", "m"), "square": ("quadrato", "m"), "triangle": ("triangolo", "m"), "star": ("stella", "f"),
                "ring": ("anello", "m"), "cross": ("croce", "f"), "diamond": ("rombo", "m"), "hexagon": ("esagono", "m")},
        colors={"red": ("rosso", "rossa"), "orange": ("arancione", "arancione"), "yellow": ("giallo", "gialla"),
                "green": ("verde", "verde"), "blue": ("blu", "blu"), "purple": ("viola", "viola"),
                "pink": ("rosa", "rosa"), "brown": ("marrone", "marrone")},
        sizes={"small": ("piccolo", "piccola"), "large": ("grande", "grande")},
        size_first=False,
    ),
    positions={
        "top left": "in alto a sinistra", "top": "in alto", "top right": "in alto a destra",
        "left": "a sinistra", "center": "al centro", "right": "a destra",
        "bottom left": "in basso a sinistra", "bottom": "in basso", "bottom right": "in basso a destra",
    },
    single=("{np} {pos}", "{np}", "una foto di {np}", "c'è {np} {pos}", "un disegno semplice: {np} {pos}"),
    multi=("{count} forme: {list}", "{list}", "una foto di {list}"),
    counts={2: "due", 3: "tre"},
    conjunction="e",
)

PORTUGUESE = Language(
    code="pt",
    phrase=Romance(
        articles={"m": "um", "f": "uma"},
        shapes={"circle": ("círculo", "m"), "square": ("quadrado", "m"), "triangle": ("triângulo", "m"), "star": ("estrela", "f"),
                "ring": ("anel", "m"), "cross": ("cruz", "f"), "diamond": ("losango", "m"), "hexagon": ("hexágono", "m")},
        colors={"red": ("vermelho", "vermelha"), "orange": ("laranja", "laranja"), "yellow": ("amarelo", "amarela"),
                "green": ("verde", "verde"), "blue": ("azul", "azul"), "purple": ("roxo", "roxa"),
                "pink": ("rosa", "rosa"), "brown": ("marrom", "marrom")},
        sizes={"small": ("pequeno", "pequena"), "large": ("grande", "grande")},
        size_first=False,
    ),
    positions={
        "top left": "em cima à esquerda", "top": "em cima", "top right": "em cima à direita",
        "left": "à esquerda", "center": "no centro", "right": "à direita",
        "bottom left": "em baixo à esquerda", "bottom": "em baixo", "bottom right": "em baixo à direita",
    },
    single=("{np} {pos}", "{np}", "uma foto de {np}", "há {np} {pos}", "um desenho simples: {np} {pos}"),
    multi=("{count} formas: {list}", "{list}", "uma foto de {list}"),
    counts={2: "duas", 3: "três"},
    conjunction="e",
)

LANGUAGES = {lang.code: lang for lang in (ENGLISH, FRENCH, GERMAN, SPANISH, ITALIAN, PORTUGUESE)}
OTHER_LANGUAGES = tuple(code for code in LANGUAGES if code != "en")


def shape_nouns(code: str) -> set[str]:
    """The nouns a language uses for the shapes (for checks on generated captions)."""
    phrase = LANGUAGES[code].phrase
    if code == "en":
        return {word for words in EN_SHAPES.values() for word in words}
    return {noun for noun, _gender in phrase.shapes.values()}
