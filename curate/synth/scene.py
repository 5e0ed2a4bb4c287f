"""What a synthetic image shows: one to three coloured shapes on a background.

A `Scene` is pure data (frozen dataclasses): the sampler draws it from a
numpy Generator, `curate.synth.draw` renders it, `curate.synth.captions`
describes it. Every continuous quantity (position, radius, angle, colour,
background shade) is jittered, so no two clean images are identical.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

SHAPES = ("circle", "square", "triangle", "star", "ring", "cross", "diamond", "hexagon")

# Named colours (RGB centres; each object is jittered around its centre).
COLORS = {
    "red": (214, 32, 32),
    "orange": (242, 133, 18),
    "yellow": (236, 206, 22),
    "green": (38, 160, 56),
    "blue": (34, 78, 214),
    "purple": (128, 48, 176),
    "pink": (240, 118, 182),
    "brown": (116, 70, 32),
}
COLOR_NAMES = tuple(COLORS)

# Object radius as a fraction of the image side.
SIZES = {"small": (0.12, 0.15), "large": (0.21, 0.27)}

# Named positions: centres of a 3x3 grid (x, y as fractions of the side).
POSITIONS = {
    "top left": (1 / 6, 1 / 6),
    "top": (1 / 2, 1 / 6),
    "top right": (5 / 6, 1 / 6),
    "left": (1 / 6, 1 / 2),
    "center": (1 / 2, 1 / 2),
    "right": (5 / 6, 1 / 2),
    "bottom left": (1 / 6, 5 / 6),
    "bottom": (1 / 2, 5 / 6),
    "bottom right": (5 / 6, 5 / 6),
}
POSITION_NAMES = tuple(POSITIONS)

# Backgrounds are light and unsaturated so every named colour stays visible.
BACKGROUNDS = ("plain", "gradient", "noise")
POSITION_JITTER = 0.03
COLOR_JITTER = 14
MAX_ANGLE = 15.0  # degrees; more would turn a square into a diamond
OBJECT_COUNT_WEIGHTS = (0.5, 0.3, 0.2)  # one, two, three objects


@dataclass(frozen=True)
class Obj:
    shape: str
    color: str
    size: str
    position: str
    cx: float  # centre, fraction of the side
    cy: float
    radius: float  # fraction of the side
    angle: float  # degrees
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class Background:
    kind: str  # one of BACKGROUNDS
    rgb_a: tuple[int, int, int]
    rgb_b: tuple[int, int, int]  # gradient end colour (equal to rgb_a otherwise)
    direction: int  # gradient: 0 horizontal, 1 vertical, 2 diagonal, 3 anti-diagonal
    noise_seed: int  # noise: seeds the pixel noise so a scene re-renders identically
    noise_sigma: float


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    background: Background

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(shape, colour) of each object, in drawing order."""
        return tuple((o.shape, o.color) for o in self.objects)

    def with_object(self, index: int, **changes) -> Scene:
        objects = list(self.objects)
        objects[index] = replace(objects[index], **changes)
        return replace(self, objects=tuple(objects))


def sample_scene(rng: np.random.Generator, max_objects: int = 3, n_objects: int | None = None) -> Scene:
    count = n_objects or _object_count(rng, max_objects)
    return Scene(objects=_sample_objects(rng, count), background=sample_background(rng))


def _object_count(rng: np.random.Generator, max_objects: int) -> int:
    weights = OBJECT_COUNT_WEIGHTS[:max_objects]
    draw = rng.random() * sum(weights)
    return next((k + 1 for k, edge in enumerate(np.cumsum(weights)) if draw < edge), max_objects)


def _sample_objects(rng: np.random.Generator, count: int) -> tuple[Obj, ...]:
    for _attempt in range(20):
        positions = rng.choice(len(POSITION_NAMES), size=count, replace=False)
        objects = []
        for position in positions:
            obj = sample_object(rng, POSITION_NAMES[position])
            if any(_overlap(obj, other) for other in objects):
                obj = sample_object(rng, POSITION_NAMES[position], size="small")
            objects.append(obj)
        if not any(_overlap(a, b) for n, a in enumerate(objects) for b in objects[n + 1:]):
            return tuple(objects)
    return tuple(sample_object(rng, POSITION_NAMES[p], size="small") for p in rng.choice(9, size=count, replace=False))


def sample_object(rng: np.random.Generator, position: str, size: str | None = None,
                  shape: str | None = None, color: str | None = None) -> Obj:
    # One vector draw per object: scalar Generator calls dominate the sampling time otherwise.
    u = rng.random(10)
    shape = shape or SHAPES[int(u[0] * len(SHAPES))]
    color = color or COLOR_NAMES[int(u[1] * len(COLOR_NAMES))]
    size = size or ("small", "large")[int(u[2] * 2)]
    low, high = SIZES[size]
    radius = low + (high - low) * float(u[3])
    gx, gy = POSITIONS[position]
    margin = radius + 0.02
    cx = _clip(gx + POSITION_JITTER * (2 * float(u[4]) - 1), margin, 1 - margin)
    cy = _clip(gy + POSITION_JITTER * (2 * float(u[5]) - 1), margin, 1 - margin)
    rgb = tuple(int(_clip(c + round(COLOR_JITTER * (2 * float(j) - 1)), 0, 255)) for c, j in zip(COLORS[color], u[6:9], strict=True))
    angle = MAX_ANGLE * (2 * float(u[9]) - 1)
    return Obj(shape, color, size, position, cx, cy, radius, angle, rgb)


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _overlap(a: Obj, b: Obj) -> bool:
    return float(np.hypot(a.cx - b.cx, a.cy - b.cy)) < 0.95 * (a.radius + b.radius)


def sample_background(rng: np.random.Generator) -> Background:
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    rgb_a = _light_shade(rng)
    rgb_b = _light_shade(rng) if kind == "gradient" else rgb_a
    return Background(
        kind=kind,
        rgb_a=rgb_a,
        rgb_b=rgb_b,
        direction=int(rng.integers(4)),
        noise_seed=int(rng.integers(2**31)),
        noise_sigma=float(rng.uniform(3.0, 9.0)) if kind == "noise" else 0.0,
    )


def _light_shade(rng: np.random.Generator) -> tuple[int, int, int]:
    grey, *tint = rng.integers(-8, 9, size=4)
    grey = 175 + (int(grey) + 8) * 75 // 16  # 175..250
    return tuple(int(_clip(grey + int(t), 0, 255)) for t in tint)


def background_word(background: Background) -> str:
    """A plain English name for the background (used by a few caption templates)."""
    if background.kind == "gradient":
        return "gradient"
    if background.kind == "noise":
        return "textured"
    return "white" if min(background.rgb_a) >= 228 else "grey"
