"""Intake errors."""

from db.errors import Conflict, DomainError, InvalidInput, NotFound


class UnknownReport(NotFound):
    """No such report for this utility (also when it belongs to another one: no existence leak)."""


class IdempotencyConflict(Conflict):
    """The same external_id or Idempotency-Key arrived with a different body."""


class InvalidTransition(Conflict):
    """A status change the report lifecycle does not allow, e.g. restored -> investigating."""


class OutsideJurisdiction(InvalidInput):
    """A location outside the configured jurisdiction bounds."""


class OutsideTerritory(InvalidInput):
    """A location outside the utility's service territory."""


class UnknownLocation(InvalidInput):
    """A ZIP or address that does not resolve to a place."""


class PreconditionFailed(DomainError):
    """If-Match named a version that is no longer current (optimistic concurrency)."""
