"""Intake errors."""

from db.errors import Conflict, InvalidInput, NotFound, Unauthorized


class BadApiKey(Unauthorized):
    """Missing, unknown or revoked API key."""


class UnknownReport(NotFound):
    """No such report for this utility (also when it belongs to another one: no existence leak)."""


class IdempotencyConflict(Conflict):
    """The same external_id or Idempotency-Key arrived with a different body."""


class OutsideJurisdiction(InvalidInput):
    """A location outside the configured jurisdiction bounds."""
