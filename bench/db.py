"""The benchmarks' own databases, beside the configured one on the same server."""

from __future__ import annotations


def admin_url(base_url: str) -> str:
    """A psycopg URL for the configured database (SQLAlchemy's driver prefix removed)."""
    return base_url.replace("postgresql+psycopg://", "postgresql://", 1)


def bench_database(base_url: str, name: str, *, fresh: bool = False, migrate: bool = True) -> str:
    """The SQLAlchemy URL of database `name` on base_url's server: created if missing (dropped and
    created again when `fresh`) and, unless `migrate` is False, migrated to the current schema."""
    import psycopg

    from db import migrate as migrations

    with psycopg.connect(admin_url(base_url), autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = base_url.rsplit("/", 1)[0] + f"/{name}"
    if migrate:
        migrations.upgrade(url)
    return url


def drop_database(base_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url(base_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_or_skip(base_url: str, name: str, *, migrate: bool = False) -> str | None:
    """`bench_database(base_url, name, fresh=True)`; None, once it has said why, when PostgreSQL is not
    reachable: the benchmark then skips politely (exit 0)."""
    import psycopg

    try:
        return bench_database(base_url, name, fresh=True, migrate=migrate)
    except psycopg.OperationalError as exc:
        print(f"skipped: PostgreSQL at {base_url.split('@')[-1]} is not reachable ({exc})")
        return None
