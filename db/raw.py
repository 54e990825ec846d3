"""Hot-path statements straight on the session's psycopg connection, inside its transaction.

SQLAlchemy's execution layer (compiled cache, result metadata, row processing) costs about 0.2-0.3
ms of CPU per statement, more than the database needs for most of ours. The few statements every
report or post batch runs go through here instead; everything else uses `session.execute`.

SQL is written as everywhere else, with `:name` parameters; they become psycopg's `%(name)s` once
per statement text, or `%(name)b` for a non-empty list: psycopg formats a list as a text array
element by element in Python (120 ms for 60,000 ints) but packs it in binary in a third of that,
and a post batch's evidence statement carries lists that long. (An empty list stays text: it has
no element to give its array a type.) Rows come back as named tuples (`row.column`), like SQLAlchemy rows. Errors are
psycopg's own (`psycopg.errors.*`), not SQLAlchemy's wrappers: hot-path statements resolve their
conflicts in SQL (ON CONFLICT) rather than by catching errors.
"""

import functools
import re
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy.orm import Session

# `:name` but not a `::type` cast.
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@functools.cache
def to_psycopg(sql: str, binary: frozenset[str] = frozenset()) -> str:
    """`:name` parameters as psycopg's `%(name)s`, or `%(name)b` for those in `binary` (and a literal %
    doubled)."""
    return _PARAM.sub(lambda m: f"%({m[1]})b" if m[1] in binary else f"%({m[1]})s", sql.replace("%", "%%"))


def connection(session: Session) -> psycopg.Connection:
    """The session's own driver connection: statements on it share the session's transaction."""
    return session.connection().connection.driver_connection


def execute(session: Session, sql: str, params: Mapping[str, Any]) -> psycopg.Cursor:
    """Run one statement in the session's transaction; iterate or fetch the cursor for its rows."""
    cursor = connection(session).cursor(row_factory=namedtuple_row)
    binary = frozenset(k for k, v in params.items() if isinstance(v, list) and v)
    return cursor.execute(to_psycopg(sql, binary), params)
