"""The one image decoder every reader uses: bytes -> an 8-bit RGB PIL image, or a one-line reason.

Ingest's checks, the `basic` and `clip` stages, `curate inspect`'s thumbnails and training all call
`decode_image`, so they all see the same pixels:

- **Pixel limit** first, from the header alone (before any pixel is decoded): an image of more than
  `max_pixels` pixels is refused with a reason naming the limit and `--max-pixels` (Pillow's own
  decompression-bomb guard is replaced by this check, so a large image is never reported as corrupt).
- **EXIF orientation** applied (`ImageOps.exif_transpose`), so a phone photo stands upright.
- **16-bit modes** (`I;16`, `I;16B`, `I;16L`, `I`) scaled from 0..65535 to 0..255; Pillow's plain
  `convert("RGB")` clips them at 255 instead, turning most pixels white.
- **Alpha** (RGBA, LA, PA, palette or RGB/L with a transparency key) composited onto a background,
  white by default as img2dataset's resizer does ("alpha matting with white background"); dropping
  alpha instead turns transparent line art into black on black.
- **Reduced-size JPEG decoding, only when asked** (`draft_to`): a JPEG at least twice `draft_to` on both sides
  is decoded by libjpeg at 1/2, 1/4 or 1/8 scale (Pillow's `draft`, DCT-domain scaling) so that both sides stay
  >= `draft_to`. Several times faster for large JPEGs, but the pixels differ from a full decode resized
  afterwards, so readers use it only where the user chose it (the clip stage's `--clip-jpeg-draft`, recorded with
  its options). The pixel limit applies to the stored size, before any reduction.
- **Deterministic reasons**: Pillow's "cannot identify image file <_io.BytesIO object at 0x7f...>"
  carries a memory address, so two ingests of the same bytes would differ; reasons never do.

`resize_image` implements img2dataset's resize modes with Pillow for `curate ingest --image-size`.
(img2dataset's own `Resizer` decodes with OpenCV, which ignores EXIF orientation and assumes 8-bit
alpha, so it cannot share this decoder.)
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

# Pillow's own refusal point (2 x Image.MAX_IMAGE_PIXELS): 178,956,970 pixels, ~537 MB as 8-bit RGB.
DEFAULT_MAX_PIXELS = 178_956_970
WHITE = (255, 255, 255)
RESIZE_MODES = ("no", "border", "keep_ratio", "keep_ratio_largest", "center_crop")
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")

# The statuses a decode failure becomes in meta (docs/formats.md, "Status vocabulary").
CORRUPT, TOO_LARGE = "corrupt_image", "too_large"


def parse_background(text: str) -> tuple[int, int, int]:
    """`--background R,G,B` (0-255 each) or a name Pillow knows (white, black, ...)."""
    from PIL import ImageColor
    from tierclip.curate.errors import UserError

    try:
        parts = [int(p) for p in text.split(",")] if "," in text else list(ImageColor.getrgb(text))[:3]
    except ValueError:
        raise UserError(f"--background {text!r}: expected R,G,B (0-255 each) or a colour name such as white") from None
    if len(parts) != 3 or not all(0 <= p <= 255 for p in parts):
        raise UserError(f"--background {text!r}: expected three numbers 0-255, e.g. 255,255,255")
    return tuple(parts)


class ImageDecodeError(ValueError):
    """An image that cannot be used: `status` is its meta status, the message a deterministic one-line reason."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class DecodeOptions:
    max_pixels: int = DEFAULT_MAX_PIXELS   # 0 = no limit
    background: tuple[int, int, int] = WHITE

    def __post_init__(self):
        if self.max_pixels < 0:
            from tierclip.curate.errors import UserError

            raise UserError(f"--max-pixels {self.max_pixels}: must be 0 (no limit) or positive")


def decode_image(data: bytes | None, options: DecodeOptions = DecodeOptions(), draft_to: int = 0):
    """Decode `data` to an 8-bit RGB PIL image (see the module docstring); raises ImageDecodeError.

    `draft_to` > 0: a JPEG at least twice that size on both sides is decoded at a reduced scale that keeps both
    sides >= `draft_to` (other images, and smaller JPEGs, are decoded in full)."""
    image = load_upright(data, options.max_pixels, draft_to)
    try:
        return to_rgb(image, options.background)
    except Exception as exc:  # an exotic mode Pillow cannot convert
        raise ImageDecodeError(CORRUPT, f"image does not convert to RGB: {reason_of(exc)}") from None


def load_upright(data: bytes | None, max_pixels: int = DEFAULT_MAX_PIXELS, draft_to: int = 0):
    """The decoded image in its stored mode (`.format` kept), EXIF orientation applied; raises ImageDecodeError.
    Decoded in full unless `draft_to` asks for a reduced-scale JPEG decode (see `decode_image`)."""
    image = open_checked(data, max_pixels)
    try:
        if draft_to and image.format == "JPEG":
            image.draft(None, (draft_to, draft_to))  # a no-op unless both sides are >= 2 x draft_to
        image.load()
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, EOFError, ... for broken data
        raise ImageDecodeError(CORRUPT, f"image does not decode: {reason_of(exc)}") from None
    return _upright(image)


def open_checked(data: bytes | None, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Open (header only) and apply the pixel limit; the returned image is not loaded yet."""
    from PIL import Image

    if not data:
        raise ImageDecodeError(CORRUPT, "image does not decode: no image bytes")
    Image.MAX_IMAGE_PIXELS = None  # our limit below replaces Pillow's guard (which says neither limit nor option)
    try:
        image = Image.open(io.BytesIO(data))
    except Image.UnidentifiedImageError:
        raise ImageDecodeError(CORRUPT, "image does not decode: not an image format Pillow can identify") from None
    except Exception as exc:
        raise ImageDecodeError(CORRUPT, f"image does not decode: {reason_of(exc)}") from None
    pixels = image.width * image.height
    if max_pixels and pixels > max_pixels:
        raise ImageDecodeError(TOO_LARGE, f"image has {image.width}x{image.height} = {pixels:,} pixels, over the limit of "
                                          f"{max_pixels:,}; raise it with --max-pixels (0 = no limit) and add "
                                          f"--image-size N to store it smaller")
    return image


def reason_of(exc: BaseException) -> str:
    """`Type: message` without memory addresses, so the same bytes always give the same text."""
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", str(exc)).splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _upright(image):
    from PIL import ImageOps

    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:  # a broken EXIF block: the pixels are fine, keep them as stored
        pass
    return image


def to_rgb(image, background: tuple[int, int, int] = WHITE):
    """8-bit RGB: 16-bit modes scaled, alpha composited onto `background`, everything else converted."""
    from PIL import Image

    if image.mode in SIXTEEN_BIT_MODES:
        image = _sixteen_to_eight(image)
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _sixteen_to_eight(image):
    """0..65535 -> 0..255 (rounded), as an L image; `I` (32-bit) values are clipped to the 16-bit range first."""
    import numpy as np
    from PIL import Image

    values = np.asarray(image, dtype=np.float64)
    scaled = np.rint(np.clip(values, 0, 65535) * (255 / 65535)).astype(np.uint8)
    return Image.fromarray(scaled)  # uint8, 2-D: mode L


# -- resizing at ingest (img2dataset's modes, never upscaling: its resize_only_if_bigger) --------------
def needs_resize(width: int, height: int, size: int, mode: str) -> bool:
    if mode == "no" or not size:
        return False
    side = min(width, height) if mode in ("keep_ratio", "center_crop") else max(width, height)
    return side > size


def resize_image(image, size: int, mode: str, background: tuple[int, int, int] = WHITE):
    """img2dataset's modes: keep_ratio (shorter side = size), center_crop (that, then a centred size x size
    crop), keep_ratio_largest (longer side = size), border (that, padded to size x size with `background`)."""
    from PIL import Image, ImageOps

    if not needs_resize(image.width, image.height, size, mode):
        return image
    if mode == "keep_ratio_largest":
        return ImageOps.contain(image, (size, size), Image.Resampling.LANCZOS)
    if mode == "border":
        return ImageOps.pad(image, (size, size), Image.Resampling.LANCZOS, color=background)
    if mode == "center_crop":
        return ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS)
    scale = size / min(image.width, image.height)  # keep_ratio
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS)


def encode_image(image, ext: str) -> bytes:
    """Re-encode a (resized) image in its source format: PNG lossless, JPEG/WebP at quality 95."""
    buffer = io.BytesIO()
    fmt = {"jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}.get(ext, "PNG")
    image.save(buffer, format=fmt, **({"quality": 95} if fmt != "PNG" else {}))
    return buffer.getvalue()
