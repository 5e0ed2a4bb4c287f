"""Reading a user-supplied `.npy` file: a missing or non-numpy file is a one-line `UserError`, never a pickle."""

from __future__ import annotations

from pathlib import Path

from tierclip.curate.errors import UserError


def load_user_npy(path: str | Path, what: str):
    """`np.load(path, allow_pickle=False)`; `what` names the file in errors (e.g. "reference embeddings")."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such {what} file")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise UserError(f"{path}: not a numpy .npy file ({exc})") from None
