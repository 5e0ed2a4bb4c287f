"""Helpers of the robustness tests (docs/guarantees.md): run a console command in-process, make awkward images."""

from __future__ import annotations

import io
import re
import struct
import sys
import zlib
from pathlib import Path

TQDM = re.compile(r"\[\d+:\d+(<|,|\])")  # a progress bar's elapsed-time field


def run_main(main, args: list[str], monkeypatch, capsys, prog: str = "curate") -> tuple[int, str, str]:
    """Run a console entry point (curate.cli.main, train.cli.main) with argv; (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [prog, *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    """The stderr of a refused command must be exactly one `error: ...` line (progress bars aside)."""
    segments = re.split(r"[\r\n]", err)
    lines = [line for line in segments if line.strip() and not TQDM.search(line)]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def save(image, fmt: str = "PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def line_art_rgba(size: int = 64) -> bytes:
    """Black strokes on a fully transparent background whose hidden colour is black (as real clipart PNGs store it)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.line((0, 0, size, size), fill=(0, 0, 0, 255), width=2)
    return save(image)


def grey16_png(width: int = 32, height: int = 16, top: int = 3071) -> bytes:
    """A 16-bit greyscale PNG, values 0..top (a 12-bit sensor stored in 16 bits)."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, top, width * height).reshape(height, width).astype(np.uint16)
    return save(Image.fromarray(ramp))


def exif_rotated_jpeg(width: int = 40, height: int = 20, orientation: int = 6) -> bytes:
    """A landscape JPEG (left half red, right half blue) whose EXIF says: rotate to portrait."""
    from PIL import Image

    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 0, 255), (width // 2, 0, width, height))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(image, "JPEG", exif=exif.tobytes(), quality=95)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature + IHDR claiming width x height (8-bit RGB) + an empty IDAT: Pillow opens it from the header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def write_folder(root: Path, images: dict[str, bytes]) -> Path:
    """images under root/images and a captions.csv listing them; returns the captions path."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = ["path,caption"]
    for name, data in images.items():
        (root / "images" / name).write_bytes(data)
        lines.append(f"{name},a picture called {name}")
    (root / "captions.csv").write_text("\n".join(lines) + "\n")
    return root / "captions.csv"
