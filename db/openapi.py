"""The error shape every JSON route answers with, and OpenAPI `responses=` entries for it.

One Problem model, so the generated document has one `Problem` schema; each router or route lists
the codes it really gives (FastAPI merges router-level and route-level `responses`).
"""

from typing import Any

from pydantic import BaseModel

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}

DESCRIPTIONS: dict[int, str] = {
    400: "The body cannot be parsed: not UTF-8, not JSON (the message names the position), "
         "or JSON nested deeper than 64 levels",
    401: "Missing, unknown or revoked credentials",
    403: "The credentials are valid but not for this operation; the message names what is needed",
    404: "No such resource (or not visible to this caller)",
    409: "Conflicts with what is stored",
    412: "If-Match does not name the current version",
    413: "Request body over the size limit (declared or chunked)",
    422: "Invalid input; `detail` lists each problem with its location, `field` names the first",
    429: "Too many requests for this key; see Retry-After",
    503: "The database is unavailable; retry after Retry-After seconds",
}
EXAMPLES: dict[int, str] = {
    400: "request body: JSON nested deeper than 64 levels",
    401: "invalid or revoked API key",
    403: "this endpoint needs a utility API key",
    404: "responder 42 does not exist",
    409: "a responder with phone '+12125550101' already exists",
    412: "If-Match 'W/\"2\"' does not match report 7's current ETag W/\"3\"",
    413: "request body of 2000000 bytes exceeds the limit of 1000000 bytes",
    429: "rate limit of 6000 requests per minute exceeded",
    503: "the database is unavailable",
}


class Problem(BaseModel):
    """An error: `detail` names the problem (a list of field errors for request validation), `field` the input."""

    detail: str | list[dict[str, Any]]
    field: str | None = None


def error_responses(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries with the Problem schema; `descriptions` overrides by code, e.g. `_404="No such alert"`."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"description": descriptions.get(f"_{code}", DESCRIPTIONS[code]), "model": Problem}
        if code in EXAMPLES:
            entry["content"] = {"application/json": {"example": {"detail": EXAMPLES[code]}}}
        if code in (429, 503):
            entry["headers"] = _RETRY_AFTER
        out[code] = entry
    return out
