"""API key material: generation, hashing, constant-time verification.

A key reads ``di_<key id>_<secret>``. Only a SHA-256 of the secret is stored (the secret has
256 bits of entropy, so a slow hash adds nothing); the id locates the row, and the stored
hash is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "di_"


def new_key() -> tuple[str, str, str]:
    """Return (key id, full key shown once, hash to store)."""
    key_id = "key" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{KEY_PREFIX}{key_id}_{secret}", hash_secret(secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(presented: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    if not presented.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = presented[len(KEY_PREFIX) :].partition("_")
    if not sep or not key_id or not secret or len(key_id) > 40:
        return None
    return key_id, secret


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def display_prefix(key_id: str) -> str:
    return f"{KEY_PREFIX}{key_id}_…"
