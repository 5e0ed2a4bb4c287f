"""Image views for the training loader: `make_view_transform(view, image_size, mean, std, cfg)`.

Views (the keys methods list in `Method.views`):
- `image`: open_clip's own eval preprocess (resize, center crop, RGB, normalise); what CLIP, SLIP and FLIP
  train on and what evaluation uses.
- `image_crop`: SLIP's CLIP-branch train transform (facebookresearch/SLIP main.py): a random resized crop
  keeping 50-100% of the image, nothing else.
- `image_aug`: the strong augmentation of CLIP+Aug (Li, Xie, Cubuk 2024, "Scaling (Down) CLIP"):
  random resized crop, colour jitter, grayscale, Gaussian blur.
- `image_ssl1`, `image_ssl2`: SimCLR's views as SLIP uses them (random resized crop down to 8% of the
  image, colour jitter, grayscale, Gaussian blur, horizontal flip); two independent draws per sample.
- `image_moco1`, `image_moco2`: MoCo v2's views as DeCLIP uses them (the same pipeline with crops down to
  20% of the image); two independent draws per sample.
- `text_eda`, `text_mlm`: caption views (EDA, BERT masking) from train/text_views.py; they take the caption
  and need a `TextContext` (the tokenizer and the model's vocabulary size).

Every knob lives in `AugmentConfig`, a field each with its bounds; a run sets them with `--aug KEY=VALUE`.

Gaussian blur on tiny images: SimCLR blurs with a kernel of ~10% of the image side (23 px at 224 px)
and sigma drawn from [0.1, 2.0]. We keep the 10% rule (odd, at least 3): 3 px at 32 px, 7 px at 64 px.
The kernel bounds the blur, so sigma up to 2.0 on a 3-px kernel is at most a 3x3 near-box blur,
the same share of the image SimCLR's blur covers, and never wipes out a shape in a 32-px image.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from tierclip.curate.errors import UserError
from tierclip.curate.fields import Checked, option

RANGES = ("crop_scale", "slip_crop_scale", "ssl_crop_scale", "moco_crop_scale", "blur_sigma")  # (low, high) fields


@dataclass(frozen=True)
class AugmentConfig(Checked):
    """The image views' knobs; `train run --aug KEY=VALUE` sets any of them (checked against these bounds)."""

    crop_scale: tuple[float, float] = option((0.5, 1.0), "image_aug (CLIP+Aug) random-crop area range: keep at least half "
                                             "the image so the caption still describes the crop.", gt=0, le=1)
    slip_crop_scale: tuple[float, float] = option((0.5, 1.0), "image_crop (SLIP's CLIP branch) random-crop area range "
                                                  "(facebookresearch/SLIP: 0.5-1).", gt=0, le=1)
    ssl_crop_scale: tuple[float, float] = option((0.08, 1.0), "image_ssl1/2 (SimCLR, SLIP) crop area range.", gt=0, le=1)
    moco_crop_scale: tuple[float, float] = option((0.2, 1.0), "image_moco1/2 (MoCo v2, DeCLIP) crop area range.", gt=0, le=1)
    jitter: float = option(0.4, "colour jitter strength s: brightness, contrast, saturation s, hue s/4 (SimCLR/SLIP: 0.4).", ge=0)
    jitter_p: float = option(0.8, "probability of the colour jitter.", ge=0, le=1)
    grayscale_p: float = option(0.2, "probability of grayscale.", ge=0, le=1)
    blur_p: float = option(0.5, "probability of the Gaussian blur.", ge=0, le=1)
    blur_sigma: tuple[float, float] = option((0.1, 2.0), "Gaussian blur sigma range.", gt=0)
    flip_p: float = option(0.5, "horizontal flip probability, SimCLR/MoCo views only (captions may say left/right).", ge=0, le=1)

    def __post_init__(self):
        for name in RANGES:
            object.__setattr__(self, name, _pair(name, getattr(self, name)))
        super().__post_init__()
        for name in RANGES:
            low, high = getattr(self, name)
            if low > high:
                raise UserError(f"aug: {name} must be a range (low <= high), got {(low, high)}")

    @classmethod
    def option_name(cls, field_name: str) -> str:
        return f"--aug {field_name}"

    def changed(self) -> dict:
        """The fields set away from their defaults, JSON-ready (config.json's `run.aug`: empty = the method's own recipe)."""
        default = type(self)()
        return {f.name: list(value) if isinstance(value, tuple) else value
                for f in fields(self) if (value := getattr(self, f.name)) != getattr(default, f.name)}

    @classmethod
    def from_options(cls, options: dict | None) -> AugmentConfig:
        """From `--aug` KEY=VALUE pairs: unknown keys are a user error naming the known ones."""
        options = dict(options or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UserError(f"aug: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**options)


@dataclass(frozen=True)
class ViewConfig:
    """What the loader's views need: the image augmentation, and the caption mask rate of `text_mlm` (the method's)."""

    aug: AugmentConfig | None = None
    mask_rate: float | None = None

    @property
    def augment(self) -> AugmentConfig:
        return self.aug if self.aug is not None else AugmentConfig()


# Every random image augmentation switched off (`--aug` KEY=VALUE pairs, or a sweep's [options] aug): crops keep
# the whole image (RandomResizedCrop at scale 1 falls back to the full square), no jitter, grayscale, blur or flip.
# A method run with it trains on its views without their augmentation; its text views (EDA, MLM) are unchanged.
# Derived from AugmentConfig: every `*crop_scale` range at (1, 1), every `*_p` probability at 0.
AUGMENTATION_OFF = {**{name: (1.0, 1.0) for name in RANGES if name.endswith("crop_scale")},
                    **{f.name: 0.0 for f in fields(AugmentConfig) if f.name.endswith("_p")}}


def aug_items(aug: dict) -> tuple[str, ...]:
    """An augmentation table ({"crop_scale": (0.2, 1.0), "flip_p": 0.0}) as `train run --aug` KEY=VALUE items, a
    range as LOW,HIGH: how a sweep file's [options.aug] and AUGMENTATION_OFF reach the command line."""
    return tuple(f"{key}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for key, v in aug.items())


def augmented_views(views) -> tuple[str, ...]:
    """The views among `views` that carry random image augmentation (all image views but the plain `image`)."""
    return tuple(view for view in views if view in VIEWS and view != "image")


def _pair(name: str, value) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise UserError(f"aug: {name} must be two numbers (low, high), got {value!r}") from None
    return low, high


def blur_kernel_size(image_size) -> int:
    """SimCLR's 10% of the (shorter) image side, odd, at least 3 (3 at 32 px, 7 at 64 px, 23 at 224 px)."""
    side = min(image_size) if isinstance(image_size, tuple) else image_size
    return max(3, int(0.1 * side) | 1)


def _config(cfg) -> AugmentConfig:
    if isinstance(cfg, AugmentConfig):
        return cfg
    return cfg.augment if cfg is not None else AugmentConfig()


def _strong(image_size: int, mean, std, aug: AugmentConfig, crop_scale, flip_p: float):
    """Crop, (flip), colour jitter, grayscale, blur, then to a normalised float tensor (torchvision v2)."""
    import torch
    from torchvision.transforms import InterpolationMode, v2

    s = aug.jitter
    steps = [
        v2.RGB(),
        v2.RandomResizedCrop(image_size, scale=crop_scale, interpolation=InterpolationMode.BICUBIC, antialias=True),
    ]
    if flip_p > 0:
        steps.append(v2.RandomHorizontalFlip(p=flip_p))
    steps += [
        v2.RandomApply([v2.ColorJitter(s, s, s, min(s / 4, 0.5))], p=aug.jitter_p),
        v2.RandomGrayscale(p=aug.grayscale_p),
        v2.RandomApply([v2.GaussianBlur(blur_kernel_size(image_size), sigma=aug.blur_sigma)], p=aug.blur_p),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(mean), std=list(std)),
    ]
    return v2.Compose(steps)


def plain_view(image_size, mean, std, aug: AugmentConfig):
    from open_clip import image_transform

    return image_transform(image_size, is_train=False, mean=tuple(mean), std=tuple(std))


def slip_crop_view(image_size, mean, std, aug: AugmentConfig):
    """SLIP's CLIP-branch transform: RandomResizedCrop(scale) with torchvision's default (bilinear) resize, as SLIP's."""
    import torch
    from torchvision.transforms import InterpolationMode, v2

    return v2.Compose([v2.RGB(), v2.RandomResizedCrop(image_size, scale=aug.slip_crop_scale, interpolation=InterpolationMode.BILINEAR,
                                                      antialias=True),
                       v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))])


def clip_aug_view(image_size, mean, std, aug: AugmentConfig):
    return _strong(image_size, mean, std, aug, aug.crop_scale, flip_p=0.0)


def simclr_view(image_size, mean, std, aug: AugmentConfig):
    return _strong(image_size, mean, std, aug, aug.ssl_crop_scale, flip_p=aug.flip_p)


def moco_view(image_size, mean, std, aug: AugmentConfig):
    return _strong(image_size, mean, std, aug, aug.moco_crop_scale, flip_p=aug.flip_p)


VIEWS = {"image": plain_view, "image_crop": slip_crop_view, "image_aug": clip_aug_view,
         "image_ssl1": simclr_view, "image_ssl2": simclr_view,
         "image_moco1": moco_view, "image_moco2": moco_view}


_STRONG = ("jitter", "jitter_p", "grayscale_p", "blur_p", "blur_sigma")
# Each view's recipe: its name (and where it comes from) and the AugmentConfig fields it reads (`--aug` sets them).
VIEW_RECIPES = {
    "image": ("open_clip eval preprocess (resize, center crop)", ()),
    "image_crop": ("SLIP CLIP branch (facebookresearch/SLIP train_transform)", ("slip_crop_scale",)),
    "image_aug": ("CLIP+Aug strong augmentation", ("crop_scale", *_STRONG)),
    "image_ssl1": ("SimCLR (SLIP's SSL views)", ("ssl_crop_scale", "flip_p", *_STRONG)),
    "image_ssl2": ("SimCLR (SLIP's SSL views)", ("ssl_crop_scale", "flip_p", *_STRONG)),
    "image_moco1": ("MoCo v2 (Sense-GVT/DeCLIP MOCOV2)", ("moco_crop_scale", "flip_p", *_STRONG)),
    "image_moco2": ("MoCo v2 (Sense-GVT/DeCLIP MOCOV2)", ("moco_crop_scale", "flip_p", *_STRONG)),
    "text": ("caption tokens", ()),
    "text_eda": ("EDA caption (one of synonym, swap, deletion)", ()),
    "text_mlm": ("BERT-masked caption", ()),
}


def describe_views(views, cfg: ViewConfig | None = None) -> list[str]:
    """One line per distinct recipe among `views`: the views, the recipe's name and its settings (what `train run`
    prints before training)."""
    cfg = cfg or ViewConfig()
    grouped: dict[str, list[str]] = {}
    for view in views:
        grouped.setdefault(view if view not in VIEW_RECIPES else VIEW_RECIPES[view][0], []).append(view)
    lines = []
    for name, members in grouped.items():
        knobs = VIEW_RECIPES.get(members[0], (name, ()))[1]
        settings = [f"{knob}={_shown(getattr(cfg.augment, knob))}" for knob in knobs]
        if members[0] == "text_mlm" and cfg.mask_rate is not None:
            settings.append(f"mask_rate={cfg.mask_rate:g}")
        lines.append(f"{', '.join(members)}: {name}" + (f" [{' '.join(settings)}]" if settings else ""))
    return lines


def _shown(value) -> str:
    return ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else f"{value:g}"


def make_view_transform(view: str, image_size: int, mean, std, cfg=None, text=None):
    """A callable for one loader view: PIL image -> normalised float tensor (3, image_size, image_size); for a
    text view (`TEXT_VIEWS` of train/text_views.py) caption -> token ids, which needs `text` (a TextContext).

    `cfg` is a ViewConfig (the augmentation and the text views' options, `Method.view_config`), an AugmentConfig,
    or None for the defaults.
    """
    from tierclip.train.text_views import TEXT_VIEWS

    if view in TEXT_VIEWS:
        if text is None:
            raise UserError(f"text view {view!r} needs the tokenizer and the model's vocabulary size (a TextContext)")
        return TEXT_VIEWS[view](cfg, text)
    builder = VIEWS.get(view)
    if builder is None:
        raise UserError(f"unknown image view {view!r}; known views: {', '.join(VIEWS)}, text views: {', '.join(TEXT_VIEWS)} "
                        "(text is tokenised, not transformed)")
    size = tuple(int(side) for side in image_size) if isinstance(image_size, (list, tuple)) else int(image_size)
    return builder(size, mean, std, _config(cfg))
