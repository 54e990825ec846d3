"""What every sender promises: a provider id on success, a DeliveryError that says whether to retry."""

from __future__ import annotations

from typing import Protocol


class DeliveryError(Exception):
    """A send failed. `retryable` tells the relay whether another attempt can succeed."""

    def __init__(self, message: str, *, retryable: bool, code: int | None = None, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.code = code  # provider error code, e.g. Twilio 21610
        self.status = status  # HTTP status when there was a response

    def __repr__(self) -> str:
        return f"DeliveryError({str(self)!r}, retryable={self.retryable}, code={self.code}, status={self.status})"


class Sender(Protocol):
    def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        """Send `body` to E.164 number `to`; return the provider's message id (sid)."""
        ...


def mask_phone(phone: str) -> str:
    """`+15551234567` -> `+*********67`: enough to tell two numbers apart in a log, no more."""
    digits = sum(c.isdigit() for c in phone)
    out, seen = [], 0
    for c in phone:
        if c.isdigit():
            seen += 1
            out.append(c if seen > digits - 2 else "*")
        else:
            out.append(c)
    return "".join(out)
