"""An item's image as bytes: PNG files as they are, SVG files rendered to PNG with resvg.

resvg comes as a self-contained wheel (`resvg-py`: the Rust renderer built in, no system library such as
cairo or librsvg), so rendering needs nothing the set-up does not install. System fonts are skipped, so
the same SVG gives the same pixels on every machine (OpenMoji and Tux Paint draw no text).
"""

from __future__ import annotations

from pathlib import Path

from tierclip.curate.images import CORRUPT, ImageDecodeError

SVG_SIZE = 64   # the longer side of a rendered SVG when the pool keeps source sizes (--image-size 0)


def load_image(path: Path, image_size: int) -> tuple[bytes, str]:
    """(bytes, extension); an SVG is rendered to fit image_size x image_size (SVG_SIZE when 0), aspect kept."""
    if path.suffix.lower() == ".svg":
        return render_svg(path, image_size or SVG_SIZE), "png"
    return path.read_bytes(), path.suffix.lower().lstrip(".")


def render_svg(path: Path, size: int) -> bytes:
    import resvg_py

    try:
        return resvg_py.svg_to_bytes(svg_path=str(path), width=size, height=size, skip_system_fonts=True)
    except ValueError as exc:
        raise ImageDecodeError(CORRUPT, f"SVG does not render: {str(exc).splitlines()[0] if str(exc) else 'resvg refused it'}") from None
