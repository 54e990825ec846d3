"""Input PostgreSQL or the JSON parser cannot take: NUL, lone surrogates, too-deep or non-UTF-8 bodies.

Pure checks (no HTTP): the API layers turn their errors into 4xx answers. Column bounds live here
too, so every id, limit and offset is checked against the type of the column it is compared with.
"""

import re
from typing import Annotated

from pydantic import AfterValidator

from db.errors import DomainError

INT4_MAX = 2**31 - 1  # serial / integer columns
INT8_MAX = 2**63 - 1  # bigserial / bigint columns (and LIMIT/OFFSET)
MAX_JSON_DEPTH = 64

# A JSON string, unrolled so the regex engine stays in C: quote, runs of plain chars, escapes.
_JSON_STRING = re.compile(rb'"[^"\\\n]*(?:\\.[^"\\\n]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class MalformedBody(DomainError):
    """The body cannot be parsed at all (not UTF-8, not JSON, nested too deep): HTTP 400."""


def text_problem(value: str) -> str | None:
    """Why PostgreSQL text cannot store `value`, or None when it can."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which text cannot hold"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"contains a lone surrogate ({value[exc.start]!r} at index {exc.start}), which is not valid Unicode"
    return None


def check_text(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# Use for every text field and text parameter that reaches the database.
SafeStr = Annotated[str, AfterValidator(check_text)]


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH, *, per_line: bool = False) -> bool:
    """True when brackets outside strings nest deeper than `limit` (checked before parsing, without recursion).

    `per_line`: NDJSON, where each line is its own document."""
    if raw.count(b"[") + raw.count(b"{") <= limit:  # the common case: not even enough brackets
        return False
    if per_line:
        return any(json_depth_exceeds(line, limit) for line in raw.split(b"\n"))
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = 0
    for b in brackets:
        if b == 91 or b == 123:  # [ {
            depth += 1
            if depth > limit:
                return True
        elif depth:
            depth -= 1
    return False


def check_json_body(raw: bytes, *, per_line: bool = False, limit: int = MAX_JSON_DEPTH) -> str:
    """The body as text, or MalformedBody naming the problem: not UTF-8, or nested deeper than `limit`."""
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"request body is not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                            f"({exc.reason})", field="body") from None
    if json_depth_exceeds(raw, limit, per_line=per_line):
        raise MalformedBody(f"request body: JSON nested deeper than {limit} levels", field="body")
    return decoded
