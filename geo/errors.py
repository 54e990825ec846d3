"""Geometry and zone errors; each message quotes the offending value."""

from db.errors import DomainError, InvalidInput, NotFound


class InvalidGeometry(InvalidInput):
    """A geometry that cannot be used: bad JSON shape, out of range, unclosed, empty."""

    def __init__(self, reason: str, value: object = None, *, field: str = "geometry") -> None:
        super().__init__(reason, value=value, field=field)
        self.reason = reason
        self.value = value
        self.field = field


class ZoneFileError(DomainError):
    """A zone file that cannot be read as a whole (no CRS, unknown layer, missing field)."""


class UnknownZone(NotFound):
    """A zone or layer code that is not loaded."""
