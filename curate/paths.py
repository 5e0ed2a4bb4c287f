"""Paths and names read from input files stay inside their folder.

A captions table's image path, a tier set's `tiers.json` entries: text from a file a user was given,
not typed on the command line. `outside_reason` says why such a path would leave its folder (an
absolute path, a `..` that climbs out, a symbolic link that leads out); `check_name` refuses a name
that is not one plain folder name (a name becomes a folder: `/`, `..` or a leading dot would put
it elsewhere or hide it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tierclip.curate.errors import UserError

PLAIN_NAME = re.compile(r"[^./\x00-\x1f][^/\x00-\x1f]{0,199}")


def outside_reason(root: Path, rel: str, follow_links: bool = False) -> str | None:
    """None when `root / rel` stays inside `root`; else why not. Symbolic links that lead out are refused
    unless `follow_links` (the lexical checks hold either way)."""
    if Path(rel).is_absolute():
        return "is an absolute path (paths are relative to the folder)"
    lexical = os.path.normpath(rel)
    if lexical == ".." or lexical.startswith(".." + os.sep):
        return "climbs out of the folder (..)"
    if not follow_links:
        real, real_root = (root / rel).resolve(), root.resolve()
        if real != real_root and real_root not in real.parents:
            return "is a symbolic link leading outside the folder"
    return None


def inside(root: Path, rel: str, what: str) -> Path:
    """`root / rel`, refused in one line (naming `what`: the file that gave the path) when it leaves `root`."""
    reason = outside_reason(root, rel)
    if reason is not None:
        raise UserError(f"{what}: path {rel!r} {reason}; it must name something inside {root}")
    return root / rel


def check_name(name: object, what: str) -> str:
    """`name` when it is one plain folder name: text, at most 200 characters, no `/`, no control character, no
    leading dot (so neither `.`, `..` nor a hidden folder)."""
    if not isinstance(name, str) or PLAIN_NAME.fullmatch(name) is None:
        raise UserError(f"{what}: name {name!r} is not a plain folder name (no /, no leading dot, no control "
                        "characters, at most 200 characters)")
    return name
