"""Checkpoints of a run, written atomically and read with `torch.load(weights_only=True)`.

- `checkpoint.pt` = `{"state_dict": model.state_dict(), "step": ..., "model": NAME}`: what
  `open_clip.create_model_and_transforms(NAME, pretrained=PATH)` loads (it reads the
  `state_dict` key), and so what the curate `clip` stage scores with.
- `resume.pt` = the full training state: model and method state, optimizer, scheduler,
  step, samples seen, data position, wall time, corrupt count and the RNG states of
  every process (torch, CUDA, numpy, python). RNG states are stored as tensors and
  lists so that `weights_only=True` can read them back (no pickled objects).
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
from tierclip.curate import atomic
from tierclip.curate.errors import UserError

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6 is a zip archive


class _WriteErrors:
    """A file for torch.save that keeps the OSError of a failed write: torch's zip writer swallows it and then
    reports "[enforce fail at inline_container.cc] unexpected pos", which names neither the file nor a full disk."""

    def __init__(self, handle):
        self.handle, self.error = handle, None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.handle.flush()


def save(path: str | Path, obj: dict) -> None:
    """Write atomically; a failed write (a full disk) is an OSError that atomic_path names with `path`."""
    import torch

    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
        recorder = _WriteErrors(handle)
        try:
            torch.save(obj, recorder)
        except RuntimeError:
            if recorder.error is not None:
                raise recorder.error from None
            raise


def load(path: str | Path) -> dict:
    """`torch.load(weights_only=True)`; a cut or damaged file is one line naming it."""
    import torch

    check_readable(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise UserError(f"{path}: not a readable checkpoint ({_first_line(exc)})") from None


def check_readable(path: str | Path) -> None:
    """A checkpoint in torch's zip format must open and every record must pass its CRC check (torch itself does not
    check them): a file cut short or with damaged bytes is one line naming it, before torch is even imported.
    Other formats (an older pickle checkpoint, safetensors) are left to their loaders."""
    import zipfile

    path = Path(path)
    with open(path, "rb") as handle:
        if handle.read(4) != ZIP_MAGIC:
            return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise UserError(f"{path}: not a readable checkpoint (cut short or damaged: {exc}); "
                        "write it again or use another one") from None
    if bad is not None:
        raise UserError(f"{path}: damaged checkpoint (record {bad} fails its CRC check); write it again or use another one")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def model_checkpoint(model, name: str, step: int) -> dict:
    return {"state_dict": model.state_dict(), "step": step, "model": name}


def capture_rng() -> dict:
    """This process's RNG states as tensors, ints and lists."""
    import torch

    np_name, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_cached)},
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }


def restore_rng(state: dict) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["name"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss"]))
