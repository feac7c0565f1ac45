"""API keys: generated once, shown once, stored only as a hash.

A key looks like `mt5_<id>_<secret>`: the id (public, 8 hex) finds the row, the secret
(32 random bytes) is what proves possession. Keys are high-entropy random strings, so a
plain SHA-256 is the right hash (slow password hashes only matter for guessable secrets).
Shared by the API (verify), `mt5db keys create` and the operator (first key per stack).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "mt5"
SCOPES = frozenset({"ingest", "read", "signals", "admin"})


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret_key: str  # the whole key, shown to the user exactly once
    key_hash: str


def hash_key(secret_key: str) -> str:
    return hashlib.sha256(secret_key.encode()).hexdigest()


def generate_key() -> NewKey:
    key_id = secrets.token_hex(4)
    secret_key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key_id=key_id, secret_key=secret_key, key_hash=hash_key(secret_key))


def key_id_of(presented: str) -> str | None:
    """The id part of a presented key, or None when it is not shaped like one of ours."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 8:
        return None
    return parts[1]


def matches(presented: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key against a stored hash."""
    return hmac.compare_digest(hash_key(presented), stored_hash)


def parse_scopes(text: str) -> frozenset[str]:
    """'ingest,read' -> {'ingest','read'}; unknown scopes are an error, not ignored."""
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = scopes - SCOPES
    if unknown or not scopes:
        raise ValueError(f"unknown or empty scopes {sorted(unknown)}; choose from {sorted(SCOPES)}")
    return scopes
