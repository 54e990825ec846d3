"""What every `tocsin` command module shares: settings, a session factory, a transaction whose domain errors
end the command, and failing with a message."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # pydantic-settings costs 0.15 s to import: `tocsin --help` should not pay it
    from sqlalchemy.orm import Session

    from db.errors import DomainError
    from tocsin.settings import Settings


def settings() -> Settings:
    from tocsin.settings import Settings

    s = Settings()
    logging.basicConfig(level=s.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request is noise at a command line
    return s


def sessionmaker(s: Settings):
    from db.session import make_engine, make_sessionmaker
    from tocsin import models_registry

    models_registry.load()
    return make_sessionmaker(make_engine(s.database_url, pool_size=1))


def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def transaction_or_fail(factory: Callable[[], Session], errors: type[DomainError] | None = None) -> Iterator[Session]:
    """One transaction (db.session.transaction): commit on success, roll back on any error; a domain error
    (`errors`: a DomainError subclass, default any) then ends the command with its message and exit code 2.

    Open it before a progress bar (`with transaction_or_fail(f) as session, progress(...) as advance:`): the bar
    then closes before the message is written, which a terminal's redrawn bar would otherwise overwrite."""
    from db.errors import DomainError
    from db.session import transaction

    caught = errors or DomainError
    try:
        with transaction(factory) as session:
            yield session
    except caught as exc:
        fail(exc.message)
