"""db.raw's parameter rewriting: `:name` to psycopg placeholders, lists in binary, casts untouched."""

from db.raw import to_psycopg


def test_named_parameters_become_psycopg_placeholders():
    sql = "SELECT :a, CAST(:b AS int)::bigint, x::text FROM t WHERE y LIKE '5%' AND z = ANY(:ids)"
    assert to_psycopg(sql) == ("SELECT %(a)s, CAST(%(b)s AS int)::bigint, x::text FROM t WHERE y LIKE '5%%' "
                               "AND z = ANY(%(ids)s)")


def test_listed_parameters_go_in_binary():
    sql = "SELECT :a FROM t WHERE z = ANY(:ids) AND w = ANY(:ids)"
    assert to_psycopg(sql, frozenset({"ids"})) == "SELECT %(a)s FROM t WHERE z = ANY(%(ids)b) AND w = ANY(%(ids)b)"
