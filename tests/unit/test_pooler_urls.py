"""A database URL's `?pooler=transaction` (a transaction pooler in front): read by db.session, never sent to
the server, and refused by the settings without a direct URL for LISTEN."""

import pytest

from db.session import libpq_dsn, split_pooler

POOLED = "postgresql+psycopg://tocsin:p%40ss@127.0.0.1:16439/tocsin?pooler=transaction&sslmode=disable"
DIRECT = "postgresql+psycopg://tocsin:p%40ss@127.0.0.1:55439/tocsin"


@pytest.mark.parametrize("url, pooled, rest", [
    (POOLED, True, "postgresql+psycopg://tocsin:p%40ss@127.0.0.1:16439/tocsin?sslmode=disable"),
    (DIRECT, False, DIRECT),
    ("postgresql+psycopg://h/db?sslmode=require", False, "postgresql+psycopg://h/db?sslmode=require"),
])
def test_split_pooler(url, pooled, rest):
    u, is_pooled = split_pooler(url)
    assert is_pooled is pooled
    assert u.render_as_string(hide_password=False) == rest


def test_an_unknown_pooler_mode_is_refused_naming_it():
    with pytest.raises(ValueError, match="pooler='statement'"):
        split_pooler("postgresql+psycopg://h/db?pooler=statement")


def test_libpq_dsn_drops_the_driver_and_the_pooler_parameter():
    assert libpq_dsn(POOLED) == "postgresql://tocsin:p%40ss@127.0.0.1:16439/tocsin?sslmode=disable"
    assert libpq_dsn(DIRECT) == "postgresql://tocsin:p%40ss@127.0.0.1:55439/tocsin"


def test_settings_want_a_direct_listen_url_behind_a_transaction_pooler():
    from pydantic import ValidationError

    from tocsin.settings import Settings

    with pytest.raises(ValidationError, match="TOCSIN_DATABASE_LISTEN_URL"):
        Settings(database_url=POOLED)
    with pytest.raises(ValidationError, match="TOCSIN_DATABASE_LISTEN_URL"):
        Settings(database_url=POOLED, database_listen_url=POOLED)
    assert Settings(database_url=POOLED, database_listen_url=DIRECT).listen_url == DIRECT
    assert Settings(database_url=DIRECT).listen_url == DIRECT
