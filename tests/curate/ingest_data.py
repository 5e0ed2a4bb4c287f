"""Inputs for the ingest tests: image files, captions tables, img2dataset-shaped shards, DataComp metadata."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import polars as pl

from tests.tiny import png_bytes


def jpeg_bytes(color=(0, 128, 255), size=(20, 12)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_images(root: Path, n: int) -> list[str]:
    """n small PNGs under root (some in a subfolder); returns their relative paths."""
    paths = []
    for i in range(n):
        rel = f"sub/img{i}.png" if i % 3 == 0 else f"img{i}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(png_bytes((i * 37 % 256, i * 91 % 256, 200), (16 + i % 5, 12)))
        paths.append(rel)
    return paths


def write_captions(path: Path, rows: list[dict]) -> Path:
    """rows of {path, caption}; caption may be bytes (written raw, e.g. invalid UTF-8) in CSV/JSONL."""
    suffix = path.suffix
    if suffix == ".parquet":
        pl.DataFrame(rows).write_parquet(path)
    elif suffix == ".jsonl":
        with open(path, "wb") as handle:
            for row in rows:
                handle.write(_jsonl_line(row) + b"\n")
    elif suffix == ".csv":
        columns = list(rows[0])
        lines = [",".join(columns).encode()]
        lines += [b",".join(_csv_cell(row[c]) for c in columns) for row in rows]
        path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _jsonl_line(row: dict) -> bytes:
    parts = []
    for key, value in row.items():
        raw = value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=False).encode()[1:-1]
        parts.append(b'"' + key.encode() + b'": "' + raw + b'"')
    return b"{" + b", ".join(parts) + b"}"


def _csv_cell(value) -> bytes:
    raw = value if isinstance(value, bytes) else str(value).encode()
    return b'"' + raw.replace(b'"', b'""') + b'"'


def write_img2dataset_shard(root: Path, shard: int, rows: list[dict], tar: bool = True) -> None:
    """A shard as img2dataset writes it (webdataset format): tar of successes + parquet of all rows.

    rows: {key, status, image (bytes|None), caption (str|bytes), uid?}. The parquet gets the
    caption as text; the tar gets it as raw bytes (so invalid UTF-8 can be tested).
    """
    root.mkdir(parents=True, exist_ok=True)
    name = f"{shard:05d}"
    meta = [dict(url=f"http://example.invalid/{r['key']}.jpg", caption=_text(r["caption"]), key=r["key"], status=r["status"],
                 error_message=None if r["status"] == "success" else "HTTP Error 404: Not Found",
                 width=32 if r.get("image") else None, height=24 if r.get("image") else None,
                 original_width=640 if r.get("image") else None, original_height=480 if r.get("image") else None,
                 **({"uid": r["uid"]} if "uid" in r else {})) for r in rows]
    pl.DataFrame(meta).write_parquet(root / f"{name}.parquet")
    if tar:
        with tarfile.open(root / f"{name}.tar", "w") as out:
            for row, row_meta in zip(rows, meta, strict=True):
                if row["status"] == "success" and row.get("image") is not None:
                    caption = row["caption"] if isinstance(row["caption"], bytes) else row["caption"].encode()
                    for ext, data in (("jpg", row["image"]), ("txt", caption), ("json", json.dumps(row_meta).encode())):
                        info = tarfile.TarInfo(f"{row['key']}.{ext}")
                        info.size = len(data)
                        out.addfile(info, io.BytesIO(data))


def _text(caption) -> str:
    return caption.decode("utf-8", errors="replace") if isinstance(caption, bytes) else caption


def good_rows(n: int, start: int = 0) -> list[dict]:
    return [dict(key=f"{i:09d}", status="success", image=jpeg_bytes((i * 20 % 256, 10, 10)), caption=f"a photo {i}")
            for i in range(start, start + n)]


def write_datacomp(path: Path, n: int, seed: int = 0) -> pl.DataFrame:
    import numpy as np

    rng = np.random.default_rng(seed)
    frame = pl.DataFrame({
        "uid": [f"{a:016x}{b:016x}" for a, b in rng.integers(0, 2**63, size=(n, 2))],
        "url": [f"http://example.invalid/{seed}/{i}.jpg" for i in range(n)],
        "text": [f"caption {seed} {i}" for i in range(n)],
        "original_width": rng.integers(50, 1000, n).astype("int64"),
        "original_height": rng.integers(50, 1000, n).astype("int64"),
        "clip_b32_similarity_score": rng.random(n),
        "clip_l14_similarity_score": rng.random(n),
        "face_bboxes": [[] for _ in range(n)],
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return frame


# -- a local web server for img2dataset ------------------------------------------------------------
def web_files() -> dict[str, tuple[bytes, str]]:
    """12 good images (PNG and JPEG; one JPEG whose EXIF says rotate, one 16-px PNG), an HTML page and garbage
    bytes served as JPEG."""
    from tests.curate.robust_util import exif_rotated_jpeg

    files = {f"/good{i}.png": (png_bytes((i * 40, 0, 90), (32, 24)), "image/png") for i in range(6)}
    files.update({f"/photo{i}.jpg": (jpeg_bytes((0, i * 50, 90), (40, 30)), "image/jpeg") for i in range(4)})
    files["/rotated.jpg"] = (exif_rotated_jpeg(64, 40), "image/jpeg")  # stored landscape, upright it is portrait
    files["/tiny.png"] = (png_bytes((10, 200, 10), (16, 16)), "image/png")
    files["/page.html"] = (b"<html><body>not an image</body></html>", "text/html")
    files["/garbage.jpg"] = (bytes(range(256)) * 3, "image/jpeg")
    return files


def serve(files: dict[str, tuple[bytes, str]]):
    """Start a threaded HTTP server on 127.0.0.1 (unknown paths are 404); returns the server (call .shutdown())."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path not in files:
                self.send_error(404)
                return
            body, ctype = files[self.path]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def write_url_list(path: Path, port: int, files: dict, n_missing: int = 3) -> pl.DataFrame:
    urls = [f"http://127.0.0.1:{port}{p}" for p in files] + [f"http://127.0.0.1:{port}/missing{i}.png" for i in range(n_missing)]
    frame = pl.DataFrame({"url": urls, "caption": [f"caption {i}" for i in range(len(urls))],
                          "uid": [f"{i + 1:032x}" for i in range(len(urls))]})
    frame.write_parquet(path)
    return frame
