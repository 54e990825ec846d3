"""db.raw's parameter rewriting: `:name` to psycopg placeholders, lists in binary, casts untouched; and its
compact form: comments and indentation go, quoted text stays, and the hot statements fit psycopg's parse cache."""

import pytest
from psycopg import _queries

from alerts import observe_sql
from db import raw
from db.raw import to_psycopg
from ingest.reports import queries as report_queries


def test_named_parameters_become_psycopg_placeholders():
    sql = "SELECT :a, CAST(:b AS int)::bigint, x::text FROM t WHERE y LIKE '5%' AND z = ANY(:ids)"
    assert to_psycopg(sql) == ("SELECT %(a)s, CAST(%(b)s AS int)::bigint, x::text FROM t WHERE y LIKE '5%%' "
                               "AND z = ANY(%(ids)s)")


def test_listed_parameters_go_in_binary():
    sql = "SELECT :a FROM t WHERE z = ANY(:ids) AND w = ANY(:ids)"
    assert to_psycopg(sql, frozenset({"ids"})) == "SELECT %(a)s FROM t WHERE z = ANY(%(ids)b) AND w = ANY(%(ids)b)"


def test_indentation_and_comments_go():
    sql = "SELECT a,\n        b -- the second\n    FROM t WHERE x = 1"
    assert raw.compact(sql) == "SELECT a,\nb \nFROM t WHERE x = 1"


@pytest.mark.parametrize("literal", [
    "'two\n    lines'", "'-- not a comment'", "'it''s\n  here'", '"odd\n   ident"',
    "'a \" inside'", '"a \' inside"',
])
def test_quoted_text_is_kept_as_it_is(literal):
    sql = f"SELECT {literal} AS v\n    FROM t"
    assert raw.compact(sql) == f"SELECT {literal} AS v\nFROM t"


def test_a_quote_inside_a_comment_does_not_open_a_literal():
    assert raw.compact("SELECT 1 -- it's\n    , 2") == "SELECT 1 \n, 2"


@pytest.mark.parametrize("sql", [
    "CREATE FUNCTION f() RETURNS int AS $$\n    SELECT 1 -- one\n$$ LANGUAGE sql",
    "SELECT E'it\\'s\n    -- here'",
    "SELECT 1 /* a /* nested */ comment */\n    FROM t",
])
def test_statements_it_cannot_scan_are_left_alone(sql):
    assert raw.compact(sql) == sql


@pytest.mark.parametrize("name, sql", [
    ("INSERT_REPORTS", report_queries.INSERT_REPORTS), ("INSERT_REPORT", report_queries.INSERT_REPORT),
    ("READ", observe_sql.READ), ("WRITE", observe_sql.WRITE), ("EVIDENCE", observe_sql.EVIDENCE),
    ("OPEN_AND_WRITE", observe_sql.OPEN_AND_WRITE),
])
def test_the_hot_statements_fit_psycopgs_parse_cache(name, sql):
    assert len(raw.to_psycopg(sql).encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH, name
