"""What every `tocsin` command module shares: settings, a session factory, and failing with a message."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # pydantic-settings costs 0.15 s to import: `tocsin --help` should not pay it
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
