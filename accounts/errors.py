"""Errors of who is calling."""

from db.errors import DomainError, Unauthorized


class BadApiKey(Unauthorized):
    """Missing, unknown or revoked API key."""


class RateLimited(DomainError):
    """The key sent more requests than its per-minute allowance; details carry retry_after_s."""
