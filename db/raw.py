"""Hot-path statements straight on the session's psycopg connection, inside its transaction.

SQLAlchemy's execution layer (compiled cache, result metadata, row processing) costs about 0.2-0.3
ms of CPU per statement, more than the database needs for most of ours. The few statements every
report or post batch runs go through here instead; everything else uses `session.execute`.

SQL is written as everywhere else, with `:name` parameters; they become psycopg's `%(name)s` once
per statement text. A list parameter (the statement casts it to its array type) goes one of two
ways. Up to LITERAL_MAX elements, as an array literal written here (`pg_array`): psycopg's per-list
set-up (finding the element type and its dumper) is most of the cost of a short list, and a report's
rule evaluation sends about thirty one-element lists. Longer lists go as `%(name)b`, packed in
binary by psycopg: its text format escapes element by element in Python (120 ms for 60,000 ints,
three times the binary), and a post batch's statements carry lists that long. Rows come back as
named tuples (`row.column`), like SQLAlchemy rows. Errors are psycopg's own (`psycopg.errors.*`),
not SQLAlchemy's wrappers: hot-path statements resolve their conflicts in SQL (ON CONFLICT) rather
than by catching errors.
"""

import contextlib
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
from psycopg.rows import namedtuple_row, no_result, tuple_row
from sqlalchemy.orm import Session

from db import pg_binary

# `:name` but not a `::type` cast.
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


# A dollar-quoted body, an E'' string or a block comment (they nest): compact() leaves such a statement as it is.
_UNSCANNED = re.compile(r"\$\w*\$|(?<!\w)[Ee]'|/\*")


def compact(sql: str) -> str:
    """The statement without its `--` comments and the indentation of its lines, outside quotes.

    psycopg keeps the parsed form of a statement in a cache only while its text is at most 4,096
    bytes (psycopg._queries.MAX_CACHED_STATEMENT_LENGTH); a longer one is split into parts again
    at every run. The batch insert of reports (ingest.reports.queries.INSERT_REPORTS) was 4,472."""
    if _UNSCANNED.search(sql):
        return sql
    out: list[str] = []
    i, n, quote = 0, len(sql), ""
    while i < n:
        c = sql[i]
        if quote:  # inside '...' or "...": as it is ('' and "" reopen at once)
            out.append(c)
            quote = "" if c == quote else quote
            i += 1
        elif c in "'\"":
            quote = c
            out.append(c)
            i += 1
        elif sql.startswith("--", i):
            i = n if (end := sql.find("\n", i)) < 0 else end
        elif c == "\n":
            out.append(c)
            i += 1
            while i < n and sql[i] in " \t":
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


@functools.cache
def to_psycopg(sql: str, binary: frozenset[str] = frozenset()) -> str:
    """`:name` parameters as psycopg's `%(name)s`, or `%(name)b` for those in `binary` (and a literal %
    doubled), in the statement's compact form (`compact`)."""
    return _PARAM.sub(lambda m: f"%({m[1]})b" if m[1] in binary else f"%({m[1]})s",
                      compact(sql).replace("%", "%%"))


_CACHED = "tocsin.raw.connection"  # session.info key: (the session's transaction, its driver connection)


def connection(session: Session) -> psycopg.Connection:
    """The session's own driver connection: statements on it share the session's transaction.

    Kept in `session.info` for as long as the session's innermost transaction is the same object: a
    report's eight statements asked SQLAlchemy for it eight times, about 9% of the writer's CPU. A new
    transaction (after a commit or a rollback) may run on another pooled connection, and asks again; so
    does a SAVEPOINT (`session.begin_nested()`), which SQLAlchemy only emits when asked for the connection."""
    cached = session.info.get(_CACHED)
    if cached is not None and (transaction := _innermost(session)) is cached[0] and transaction is not None \
            and transaction.is_active:
        return cached[1]
    conn = session.connection().connection.driver_connection  # begins the transaction (or SAVEPOINT) if due
    session.info[_CACHED] = (_innermost(session), conn)
    return conn


def _innermost(session: Session) -> Any:
    return session.get_nested_transaction() or session.get_transaction()


@contextlib.contextmanager
def pipeline(session: Session) -> Iterator[None]:
    """psycopg's pipeline mode on the session's connection: `execute` sends and returns at once, and the
    server starts on it while the caller prepares the next; results are read after the block (which
    syncs), from the cursors `execute` returned. Only db.raw statements belong inside: one that reads
    its result at once (any session.execute) waits for everything before it.

    For big statements only (ingest.posts.pipeline's chunks of thousands of posts, where PostgreSQL writes
    one while Python prepares the next). psycopg runs pipeline mode in Python generators, not in its C
    code: for a report's handful of small statements it cost more CPU than the round trips it saved (the
    report writer and the relay used it until 2026-12-04; without it, writer CPU per lone report fell 7%
    and the relay's per event 12%, in alternating blocks, and wall time did not rise).

    A block that fails outside a SAVEPOINT rolls the transaction back before the error goes on: it can do
    nothing else. When the failure comes with a `session.commit()` inside the block (the statements sent
    with it only run then), SQLAlchemy takes the transaction for ended and its pool hands the connection on
    without the rollback it usually sends at check-in: the next session's first statement then failed with
    "current transaction is aborted". Inside a SAVEPOINT (`session.begin_nested()`) the caller's own
    ROLLBACK TO SAVEPOINT recovers, and the transaction goes on."""
    conn = connection(session)
    try:
        with conn.pipeline():
            yield
    except BaseException:
        if (conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.INERROR
                and not session.in_nested_transaction()):
            with contextlib.suppress(psycopg.Error):  # a lost connection: the pool's check-out finds it broken
                conn.rollback()
        raise


# Lists up to this long go as literals, longer ones in binary. Measured per array (Python CPU, with a
# statement's own share): 1 element 64 µs binary, 32 µs literal; 10: 49 and 44; 100: 102 and 178.
LITERAL_MAX = 16


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _plain(values: list, write: Callable[[Any], str]) -> str:
    return "{" + ",".join("NULL" if v is None else write(v) for v in values) + "}"


def _bool(v: Any) -> str:
    return "t" if v else "f"


def _when(v: datetime | date) -> str:
    return _quoted(v.isoformat())


def _uuid(v: UUID) -> str:
    return _quoted(str(v))


def _bytes(v: bytes) -> str:
    return '"\\\\x' + v.hex() + '"'


# The element writer of each exact type; bool before int, as it is one.
_WRITERS: dict[type, Callable[[Any], str]] = {
    int: str, float: str, str: _quoted, bool: _bool, datetime: _when, date: _when, UUID: _uuid, bytes: _bytes}


def _writer(first: Any) -> Callable[[Any], str] | None:
    """How elements of `first`'s kind are written; None for a kind that is not."""
    write = _WRITERS.get(type(first))
    if write is not None:
        return write
    if isinstance(first, np.bool_):
        return _bool
    if isinstance(first, (int, float, np.integer, np.floating)):
        return str  # str(float) round-trips; nan and inf are PostgreSQL's spellings too
    if isinstance(first, (datetime, date)):
        return _when
    if isinstance(first, UUID):
        return _uuid
    if isinstance(first, bytes):
        return _bytes
    return None


def pg_array(values: list) -> str | None:
    """The list as a PostgreSQL array literal (`{1,2}`, `{"a","b \\"c\\""}`), for a statement that casts
    the parameter to its array type; None when its elements are of a kind not written here.

    psycopg packs a list element by element in Python, looking up each element's dumper: about 50
    µs for a one-element list, and a report's rule evaluation sends thirty of them. A literal is
    one str.join, and PostgreSQL's array input parses it. Most of those thirty hold one element,
    which skips the join."""
    if len(values) == 1:
        v = values[0]
        if v is None:
            return "{NULL}"
        write = _writer(v)
        return None if write is None else "{" + write(v) + "}"
    first = next((v for v in values if v is not None), None)
    if first is None:
        return _plain(values, str)  # empty, or all NULL
    write = _writer(first)
    return None if write is None else _plain(values, write)


def execute(session: Session, sql: str, params: Mapping[str, Any], *, tuples: bool = False) -> psycopg.Cursor:
    """Run one statement in the session's transaction; iterate or fetch the cursor for its rows (named
    tuples; plain ones with `tuples`, for thousands of rows). A parameter may also be a
    db.pg_binary.Packed array, sent as packed."""
    return execute_on(connection(session), sql, params, tuples=tuples)


def execute_on(conn: psycopg.Connection, sql: str, params: Mapping[str, Any], *,
               tuples: bool = False) -> psycopg.Cursor:
    """`execute` on a psycopg connection of the caller's own (dispatch.relay holds one), in whatever
    transaction it is in."""
    binary = []
    literal = {}
    packed = False
    for k, v in params.items():
        if isinstance(v, pg_binary.Packed):
            binary.append(k)
            packed = True
        elif isinstance(v, list):
            text_ = pg_array(v) if len(v) <= LITERAL_MAX else None
            if text_ is None:
                binary.append(k)
            else:
                literal[k] = text_
    if packed:
        pg_binary.register(conn)  # before the cursor, which takes a copy of the connection's adapters
    query = to_psycopg(sql, frozenset(binary))
    cursor = conn.cursor(row_factory=tuple_row if tuples else _named_rows(query))
    return cursor.execute(query, {**params, **literal} if literal else params)


class _NamedRows:
    """psycopg's namedtuple_row for one statement, whose columns never change: their names are read and their
    class found at its first result, not at every one. For a statement of thirty columns (the rules' read is
    one) that took the client's CPU per run from 29 to 24 µs (medians of ten alternating blocks)."""

    __slots__ = ("make",)

    def __init__(self) -> None:
        self.make: Any = None

    def __call__(self, cursor: Any) -> Any:
        make = self.make
        if make is None:
            make = namedtuple_row(cursor)
            if make is not no_result:  # a statement with no columns (an UPDATE) asks each time: nothing to read
                self.make = make
        return make


_ROW_MAKERS: dict[str, _NamedRows] = {}


def _named_rows(query: str) -> _NamedRows:
    maker = _ROW_MAKERS.get(query)
    if maker is None:
        maker = _ROW_MAKERS[query] = _NamedRows()
    return maker
