"""Per-sample checks: decode the image, decode the caption, name the first problem.

Status vocabulary (see docs/architecture.md, "Ingest"): `success` or a reason string.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from tierclip.curate.errors import UserError
from tierclip.curate.images import DEFAULT_MAX_PIXELS, RESIZE_MODES, WHITE, ImageDecodeError
from tierclip.curate.pool import IMAGE_EXTS

PIL_FORMAT_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
ENCODE_FORMATS = tuple(PIL_FORMAT_EXT.values())
PNG_MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16", "I;16B")  # modes Pillow writes as PNG


@dataclass(frozen=True)
class ImageOptions:
    """How ingest treats images: the pixel limit, and an optional resize (img2dataset's modes) done once here."""

    max_pixels: int = DEFAULT_MAX_PIXELS   # 0 = no limit
    image_size: int = 0                    # 0 = store images at their source size
    resize_mode: str = "keep_ratio_largest"
    background: tuple[int, int, int] = WHITE
    encode_format: str | None = None       # jpg, png or webp: store every image in it (None = keep the source format)

    def __post_init__(self):
        if self.max_pixels < 0:
            raise UserError(f"--max-pixels {self.max_pixels}: must be 0 (no limit) or positive")
        if self.image_size < 0:
            raise UserError(f"--image-size {self.image_size}: must be 0 (keep the source size) or positive")
        if self.resize_mode not in RESIZE_MODES:
            raise UserError(f"--resize-mode '{self.resize_mode}': choose from {', '.join(RESIZE_MODES)}")
        if self.encode_format not in (None, *ENCODE_FORMATS):
            raise UserError(f"--encode-format '{self.encode_format}': choose from {', '.join(ENCODE_FORMATS)}")

    def to_json(self) -> dict:
        encode = {"encode_format": self.encode_format} if self.encode_format else {}  # only when set: older pools resume
        return {"max_pixels": self.max_pixels, "image_size": self.image_size, "resize_mode": self.resize_mode,
                "background": list(self.background), **encode}


@dataclass(frozen=True)
class ImageCheck:
    width: int | None        # the source image's size, upright (EXIF orientation applied)
    height: int | None
    ext: str | None          # the extension to store the bytes under
    data: bytes | None       # bytes to store (re-encoded to PNG when PIL reads a format the pool does not hold)
    problem: str | None      # human message when the image does not decode
    status: str | None = None            # corrupt_image or too_large with `problem`
    stored_size: tuple[int, int] | None = None  # (width, height) when resized at ingest


@dataclass(frozen=True)
class CaptionCheck:
    text: str | None         # for meta: invalid bytes replaced by U+FFFD
    raw: str | None          # for the tar: invalid bytes kept (surrogateescape), so the shard holds the source bytes
    status: str | None
    problem: str | None


def check_image(data: bytes, source_ext: str | None, options: ImageOptions = ImageOptions()) -> ImageCheck:
    """Fully decode with the shared decoder (curate.images), resize when asked, pick the stored extension."""
    from tierclip.curate.images import encode_image, load_upright, needs_resize, resize_image, to_rgb

    fallback_ext = source_ext if source_ext in IMAGE_EXTS else "jpg"
    try:
        image = load_upright(data, options.max_pixels)
        ext = PIL_FORMAT_EXT.get(image.format, "png")
        target = options.encode_format or ext
        if needs_resize(image.width, image.height, options.image_size, options.resize_mode):
            small = resize_image(to_rgb(image, options.background), options.image_size, options.resize_mode, options.background)
            return ImageCheck(image.width, image.height, target, encode_image(small, target), None, stored_size=small.size)
        if target != ext:  # --encode-format: the decoder's upright RGB, in that format
            return ImageCheck(image.width, image.height, target, encode_image(to_rgb(image, options.background), target), None)
        stored = data if image.format in PIL_FORMAT_EXT else _to_png(image, options.background)
        return ImageCheck(image.width, image.height, ext, stored, None)
    except ImageDecodeError as exc:
        return ImageCheck(None, None, fallback_ext, data, str(exc), exc.status)


def _to_png(image, background: tuple[int, int, int]) -> bytes:
    """A format the pool does not hold (TIFF, GIF, BMP) as PNG: in its own mode where PNG has it, else (CMYK, 32-bit
    float, YCbCr, LAB) as the RGB every reader decodes it to (curate.images.to_rgb)."""
    from tierclip.curate.images import CORRUPT, ImageDecodeError, reason_of, to_rgb

    buffer = io.BytesIO()
    try:
        (image if image.mode in PNG_MODES else to_rgb(image, background)).save(buffer, format="PNG")
    except Exception as exc:  # Pillow raises OSError/ValueError for a mode it cannot convert or write
        raise ImageDecodeError(CORRUPT, f"image decodes but cannot be stored as PNG: {reason_of(exc)}") from None
    return buffer.getvalue()


def check_caption(caption: bytes | str | None) -> CaptionCheck:
    if caption is None:
        return CaptionCheck(None, None, "empty_caption", "no caption")
    if isinstance(caption, bytes):
        try:
            text = caption.decode("utf-8")
        except UnicodeDecodeError as exc:
            return CaptionCheck(caption.decode("utf-8", errors="replace"), caption.decode("utf-8", errors="surrogateescape"),
                                "invalid_caption", f"caption is not valid UTF-8 ({exc.reason} at byte {exc.start})")
    else:
        text = caption
        if _has_surrogates(text):
            raw = text.encode("utf-8", errors="surrogateescape")
            return CaptionCheck(raw.decode("utf-8", errors="replace"), text, "invalid_caption", "caption is not valid UTF-8")
    if not text.strip():
        return CaptionCheck(text, text, "empty_caption", "caption is empty")
    return CaptionCheck(text, text, None, None)


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True
