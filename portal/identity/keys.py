"""Keyed hashes: what the database keeps instead of tokens, codes, session ids and addresses."""

from __future__ import annotations

import hashlib
import hmac
from functools import cache


@cache
def _derived_key(secret_key: str, purpose: str) -> bytes:
    # One key per purpose, so a hash made for one use can never be replayed as another.
    return hmac.new(secret_key.encode(), f"portal:{purpose}".encode(), hashlib.sha256).digest()


def keyed_hash(secret_key: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 of `value` under a key derived from the server secret for `purpose` (hex)."""
    return hmac.new(_derived_key(secret_key, purpose), value.encode(), hashlib.sha256).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
