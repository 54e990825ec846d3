"""Domain errors carry meaning, never HTTP; tocsin.app maps them to status codes."""


class DomainError(Exception):
    """Base for errors a caller can act on; the message names the offending value."""

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know it exists."""


class Conflict(DomainError):
    """The request contradicts what is stored (idempotency, state)."""


class InvalidInput(DomainError):
    """The request is well-formed but its content is unusable."""


class Unauthorized(DomainError):
    """Missing or wrong credentials."""


class Forbidden(DomainError):
    """Known caller, not allowed."""
