"""128-bit sample ids written as 32 hex characters (DataComp's convention).

A uid is kept from the source when it has one. Otherwise it is derived from
the source key and the bytes of image and caption, so re-ingesting the same
data gives the same uids. The key is part of the hash so that an exact
duplicate pair (same image, same caption, another key) still gets its own
uid: a pool never holds two rows with one uid.
"""

from __future__ import annotations

import hashlib
import re

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def derive_uid(key: str, image: bytes | None, caption: str | bytes | None) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for part in (key.encode("utf-8"), image or b"", _as_bytes(caption)):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def _as_bytes(caption: str | bytes | None) -> bytes:
    if caption is None:
        return b""
    if isinstance(caption, bytes):
        return caption
    return caption.encode("utf-8", errors="surrogateescape")


def is_uid(text: object) -> bool:
    return isinstance(text, str) and bool(_HEX32.match(text))


def normalize_uid(value: object) -> str | None:
    """A source uid as 32 lowercase hex characters, or None if it is not one."""
    if value is None:
        return None
    text = str(value).strip().lower()
    return text if _HEX32.match(text) else None


def uid_to_u8_pair(uid: str) -> tuple[int, int]:
    """DataComp stores uids as two unsigned 64-bit ints (high, low)."""
    return int(uid[:16], 16), int(uid[16:], 16)


def u8_pair_to_uid(high: int, low: int) -> str:
    return f"{int(high):016x}{int(low):016x}"
