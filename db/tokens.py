"""Bearer tokens for people and machines: random in clear once, stored only as a digest."""

import hashlib
import secrets


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough; no password-style stretching needed.
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> str:
    """A fresh token: `prefix` (says what it is for, e.g. "to_") then 43 URL-safe characters."""
    return prefix + secrets.token_urlsafe(32)
