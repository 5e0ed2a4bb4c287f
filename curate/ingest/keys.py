"""Sample keys that are safe tar member names: `[A-Za-z0-9_-]`, at most 64 characters.

A key becomes the member names `KEY.jpg`, `KEY.txt`, `KEY.json` of a pool shard. A key from a source
(img2dataset's `key` column, a folder's image path) may hold `/`, `..`, dots, or be hundreds of
characters long: as a member name it would point outside the folder of anyone who extracts the
shard, break the WebDataset rule (the key ends at the first dot), or not fit a tar header. Such a
key is mapped to a safe one (unsafe characters replaced by `_`, a hash of the original appended
when it had to change or was cut), and the writer keeps the original in the sample's json as
`source_key`.
"""

from __future__ import annotations

import hashlib
import re

MAX_KEY_CHARS = 64
SAFE_KEY = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_KEY_CHARS}}}")


def is_safe_key(key: str) -> bool:
    return SAFE_KEY.fullmatch(key) is not None


def shortened_key(text: str, original: str, always_hash: bool = False) -> str:
    """`text` with characters outside [A-Za-z0-9_-] replaced by `_`; when longer than 64 characters (or
    `always_hash`), cut and ended with `_` + 16 hex characters of blake2b(`original`)."""
    key = re.sub(r"[^A-Za-z0-9_-]", "_", text) or "_"
    if len(key) > MAX_KEY_CHARS or always_hash:
        digest = hashlib.blake2b(original.encode("utf-8", errors="surrogateescape"), digest_size=8).hexdigest()
        key = f"{key[: MAX_KEY_CHARS - 17]}_{digest}"
    return key


def safe_key(key: str) -> str:
    """`key` itself when it is a safe member name, else a safe key that no other source key maps to (it ends in a hash)."""
    return key if is_safe_key(key) else shortened_key(key, key, always_hash=True)
