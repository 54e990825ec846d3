"""db.raw sends list parameters as PostgreSQL array literals it writes itself: every element comes back
from the real server as it went in, whatever its characters, and kinds it does not write go in binary."""

import math
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest

from db import raw

pytestmark = pytest.mark.integration

TRICKY = ["plain", "", "with space", 'double "quote"', "back\\slash", "comma, here", "{braces}", "NULL", "null",
          "new\nline", "tab\there", "émoji 🔥", "'single'", "trailing\\", '"', "\\\"", " lead and trail "]


CASES = [
    (TRICKY, "text"),
    (TRICKY + [None], "text"),
    ([None, "after a null"], "text"),
    ([], "text"),
    ([None, None], "integer"),
    ([1, -2, 0, 2**31 - 1], "integer"),
    ([2**62, -(2**62)], "bigint"),
    ([0.1, -0.0, 1e-300, 1e300, 2.5, 1 / 3], "float8"),
    ([True, False, None], "boolean"),
    ([datetime(2026, 11, 25, 21, 0, 0, 123456, tzinfo=UTC),
      datetime(2026, 11, 25, 16, 0, tzinfo=timezone(timedelta(hours=-5)))], "timestamptz"),
    ([date(2026, 2, 28)], "date"),
    ([uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.uuid4()], "uuid"),
    ([b"\x00\x01\xff", b"", b"\\\""], "bytea"),
    (['{"a": "b \\"c\\""}', "[1, 2]"], "jsonb"),
]


@pytest.mark.parametrize("values, pg_type", CASES)
def test_lists_round_trip_through_the_server(session_factory, values, pg_type):
    assert raw.pg_array(values) is not None
    with session_factory() as s:
        [back] = raw.execute(s, f"SELECT CAST(:x AS {pg_type}[]) AS x", {"x": values}).fetchone()
    if pg_type == "jsonb":
        import json
        assert back == [json.loads(v) for v in values]
    elif pg_type == "bytea":
        assert [bytes(b) for b in back] == values
    else:
        assert back == values


@pytest.mark.parametrize("pg_type", sorted({t for _, t in CASES}))
def test_one_element_lists_round_trip_through_the_server(session_factory, pg_type):
    """Most lists a report sends hold one element, which pg_array writes without a join."""
    alone = [[v] for values, t in CASES if t == pg_type for v in values]
    assert all(raw.pg_array(v) is not None for v in alone)
    with session_factory() as s:
        back = [raw.execute(s, f"SELECT CAST(:x AS {pg_type}[]) AS x", {"x": v}).fetchone()[0] for v in alone]
    if pg_type == "jsonb":
        import json
        assert back == [[json.loads(v) for v in one] for one in alone]
    elif pg_type == "bytea":
        assert [[bytes(b) for b in one] for one in back] == alone
    else:
        assert back == alone


@pytest.mark.parametrize("n", [raw.LITERAL_MAX, raw.LITERAL_MAX + 1, 500])
def test_short_lists_as_literals_and_long_ones_in_binary_agree(session_factory, n):
    values = (TRICKY * (n // len(TRICKY) + 1))[:n]
    when = [datetime(2026, 11, 25, 21, 0, tzinfo=UTC) + timedelta(seconds=i) for i in range(n)]
    with session_factory() as s:
        back = raw.execute(s, "SELECT CAST(:t AS text[]) AS t, CAST(:w AS timestamptz[]) AS w",
                           {"t": values, "w": when}).fetchone()
    assert back.t == values and back.w == when


def test_special_floats_and_numpy_scalars_round_trip(session_factory):
    values = [float("nan"), float("inf"), float("-inf"), np.float64(0.1), np.int64(7), np.float32(0.5)]
    with session_factory() as s:
        [back] = raw.execute(s, "SELECT CAST(:x AS float8[]) AS x", {"x": values}).fetchone()
    assert math.isnan(back[0]) and back[1:] == [math.inf, -math.inf, 0.1, 7.0, 0.5]


def test_an_uncast_array_parameter_still_compares(session_factory):
    with session_factory() as s:
        rows = raw.execute(s, "SELECT g FROM generate_series(1, 5) g WHERE g = ANY(:ids) ORDER BY g",
                           {"ids": [2, 4, 9]}).fetchall()
    assert [r.g for r in rows] == [2, 4]


def test_elements_not_written_here_go_in_binary(session_factory):
    assert raw.pg_array([[1, 2], [3, 4]]) is None
    with session_factory() as s:
        [back] = raw.execute(s, "SELECT CAST(:x AS integer[]) AS x", {"x": [[1, 2], [3, 4]]}).fetchone()
    assert back == [[1, 2], [3, 4]]


def test_a_statements_row_class_is_found_once_and_its_rows_stay_right(session_factory, monkeypatch):
    # The names of a statement's columns are read at its first result only; every later result of it still
    # comes back under those names, with its own values, and another statement gets its own class.
    found = []
    real = raw.namedtuple_row

    def counting(cursor):
        found.append(cursor)
        return real(cursor)

    monkeypatch.setattr(raw, "namedtuple_row", counting)
    sql = "SELECT CAST(:n AS int) AS n, CAST(:n AS int) * 2 AS twice, 'row ' || CAST(:n AS text) AS label"
    with session_factory() as session:
        rows = [raw.execute(session, sql, {"n": n}).fetchone() for n in (1, 2, 3)]
        other = raw.execute(session, "SELECT 7 AS seven, CAST(:n AS int) AS n", {"n": 4}).fetchone()
        empty = raw.execute(session, sql + " WHERE false", {"n": 5}).fetchall()
        again = raw.execute(session, sql, {"n": 9}).fetchone()
    assert [(r.n, r.twice, r.label) for r in rows] == [(1, 2, "row 1"), (2, 4, "row 2"), (3, 6, "row 3")]
    assert (other.seven, other.n) == (7, 4) and other._fields == ("seven", "n")
    assert empty == [] and (again.n, again.label) == (9, "row 9")
    assert len(found) == 3  # the first statement, the second, the third (WHERE false): once each
