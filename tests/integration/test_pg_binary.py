"""db.pg_binary packs whole arrays in PostgreSQL's binary format: every element comes back from the real
server as it went in (NULLs, non-ASCII text, NaN and infinities, time zones, microseconds), and the same
as psycopg's own element-by-element packing gives."""

import math
import random
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from db import pg_binary, raw

pytestmark = pytest.mark.integration

TEXTS = ["plain", "", 'double "quote"', "back\\slash", "comma, {braces}", "NULL", "new\nline", "émoji 🔥", None]


def _back(session, pg_type, packed):
    [value] = raw.execute(session, f"SELECT CAST(:x AS {pg_type}[]) AS x", {"x": packed}).fetchone()
    return value


@pytest.mark.parametrize("pack, values, pg_type", [
    (pg_binary.text, TEXTS, "text"),
    (pg_binary.text, [t for t in TEXTS if t is not None], "text"),  # no NULL, non-ASCII: encoded one by one
    (pg_binary.text, ["ascii", "only", ""], "text"),  # the joined fast path
    (pg_binary.text, [], "text"),
    (pg_binary.text, [None, None], "text"),
    (pg_binary.int8, [1, -2, 0, 2**62, None], "bigint"),
    (pg_binary.int4, [1, -2, 2**31 - 1, -(2**31)], "integer"),
    (pg_binary.float8, [0.1, -0.0, 1e-300, 1e300, 1 / 3, math.inf, -math.inf, None], "float8"),
    (pg_binary.bytea, [b"\x00\x01\xff", b"", None, b"\\\""], "bytea"),
])
def test_lists_round_trip(session_factory, pack, values, pg_type):
    with session_factory() as s:
        assert _back(s, pg_type, pack(values)) == values
        # The same as psycopg's own packing of the list (binary, element by element).
        if values:
            assert _back(s, pg_type, pack(values)) == _back(s, pg_type, list(values))


def test_nan_and_numpy_arrays(session_factory):
    with session_factory() as s:
        assert math.isnan(_back(s, "float8", pg_binary.float8([math.nan]))[0])
        assert _back(s, "float8", pg_binary.float8(np.array([0.5, 2.25]))) == [0.5, 2.25]
        assert _back(s, "integer", pg_binary.int4(np.array([7, -7], dtype=np.int64))) == [7, -7]
        assert _back(s, "bigint", pg_binary.int8(np.array([], dtype=np.int64))) == []


def test_timestamps_keep_the_instant_to_the_microsecond(session_factory):
    rng = random.Random(5)
    start = datetime(1990, 1, 1, tzinfo=UTC)
    values = [start + timedelta(microseconds=rng.randrange(60 * 365 * 86_400 * 10**6)) for _ in range(2_000)]
    values += [datetime(2026, 11, 25, 16, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=-5))),
               datetime(2000, 1, 1, tzinfo=UTC), datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=UTC)]
    with session_factory() as s:
        assert _back(s, "timestamptz", pg_binary.timestamptz(values)) == values
        # A naive datetime is UTC (as PostgreSQL reads a timestamptz without a zone here); None is NULL.
        naive = datetime(2026, 11, 25, 21, 0, 0, 5)
        assert _back(s, "timestamptz", pg_binary.timestamptz([naive, None])) == [naive.replace(tzinfo=UTC), None]


def test_a_nul_character_is_refused_by_the_server(session_factory):
    import psycopg

    with session_factory() as s, pytest.raises(psycopg.DataError):
        _back(s, "text", pg_binary.text(["a\x00b"]))
