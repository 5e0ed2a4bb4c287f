"""Per-sample checks: decode the image, decode the caption, name the first problem.

Status vocabulary (see docs/architecture.md, "Ingest"): `success` or a reason string.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from curate.pool import IMAGE_EXTS

PIL_FORMAT_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


@dataclass(frozen=True)
class ImageCheck:
    width: int | None
    height: int | None
    ext: str | None          # the extension to store the bytes under
    data: bytes | None       # bytes to store (re-encoded to PNG when PIL reads a format the pool does not hold)
    problem: str | None      # human message when the image does not decode


@dataclass(frozen=True)
class CaptionCheck:
    text: str | None         # for meta: invalid bytes replaced by U+FFFD
    raw: str | None          # for the tar: invalid bytes kept (surrogateescape), so the shard holds the source bytes
    status: str | None
    problem: str | None


def check_image(data: bytes, source_ext: str | None) -> ImageCheck:
    """Fully decode with PIL (a truncated JPEG only fails on `load`) and pick the stored extension."""
    from PIL import Image

    fallback_ext = source_ext if source_ext in IMAGE_EXTS else "jpg"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height, fmt = image.width, image.height, image.format
            if fmt in PIL_FORMAT_EXT:
                return ImageCheck(width, height, PIL_FORMAT_EXT[fmt], data, None)
            return ImageCheck(width, height, "png", _to_png(image), None)
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        return ImageCheck(None, None, fallback_ext, data, f"image does not decode: {type(exc).__name__}: {exc}")


def _to_png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
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
