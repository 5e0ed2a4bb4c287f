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

import random
from pathlib import Path

import numpy as np
from tierclip.curate import atomic


def save(path: str | Path, obj: dict) -> None:
    import torch

    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
        # Through a Python file: a full disk is then OSError(ENOSPC), named by atomic_path; given a path,
        # torch's C++ writer reports it as "[enforce fail at inline_container.cc] unexpected pos".
        torch.save(obj, handle)


def load(path: str | Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


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
