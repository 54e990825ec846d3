"""The `tocsin` command: the database, live connectors, the server and worker processes; each other group of
commands lives in a cli_* module of its own and registers itself here."""

import sys
from typing import Annotated

import typer

# Light at import: heavy imports are inside the commands.
from tocsin import (
    cli_accounts, cli_agencies, cli_classifier, cli_place, cli_posts, cli_purge, cli_reports, cli_responders, cli_rules,
    cli_sms, cli_zones,
)
from tocsin import cli_common as common

app = typer.Typer(help="Tocsin: location-aware incident alerting for first responders.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


_settings = common.settings
_sessionmaker = common.sessionmaker
_fail = common.fail


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Create or migrate the schema to the latest revision."""
    from db import migrate

    migrate.upgrade(_settings().database_url, revision)
    typer.echo(f"database at revision {revision}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision."""
    from db import migrate

    migrate.current(_settings().database_url)


connect_app = typer.Typer(help="Live connectors that feed public posts into the pipeline.", no_args_is_help=True)
app.add_typer(connect_app, name="connect")


def _csv_option(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


@connect_app.command("jetstream")
def connect_jetstream(
    url: Annotated[str | None, typer.Option(help="Jetstream subscribe URL (default: Bluesky's jetstream2 us-east)")] = None,
    keywords: Annotated[str | None, typer.Option(
        help="Comma-separated word stems a post must contain, e.g. 'fire,flood,gas leak' (default: incident words)")] = None,
    langs: Annotated[str | None, typer.Option(
        help="Comma-separated languages to keep; '' keeps every language (default: the active place's, else en)")
    ] = None,
    name: Annotated[str, typer.Option(help="Cursor name in the database (one per connector)")] = "jetstream",
) -> None:
    """Follow Bluesky posts live from Jetstream; resumes from the stored cursor, with a 5 s overlap."""
    import signal

    from alerts.errors import RuleError
    from alerts.rules import load_rules
    from ingest.posts import jetstream, pipeline
    from ingest.posts.classify import load_lexicon
    from ingest.posts.state import PostState

    settings = _settings()
    if keywords is not None and not _csv_option(keywords):
        _fail(f"--keywords {keywords!r} names no keyword")
    if langs is None:
        from geo import places

        with _sessionmaker(settings)() as session:
            place = places.active_place(session)
        langs = ",".join(place.languages) if place is not None else "en"
    config = jetstream.JetstreamConfig(url=url or jetstream.DEFAULT_URL, name=name, langs=_csv_option(langs) or (),
                                       keywords=_csv_option(keywords) or jetstream.DEFAULT_KEYWORDS)
    try:
        jetstream.subscribe_url(config.url, cursor=None)
        rules = load_rules(settings.rules_file)
    except ValueError as exc:
        _fail(str(exc))
    except RuleError as exc:
        _fail(exc.message)
    state = PostState()
    sink = jetstream.pipeline_ingest(lexicon=load_lexicon(), rules=rules,
                                     config=pipeline.PipelineConfig.from_settings(settings), state=state)
    connector = jetstream.JetstreamConnector(config=config, session_factory=_sessionmaker(settings), ingest=sink)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: connector.stop())
    typer.echo(f"following {config.url} (cursor {name!r}); Ctrl-C stops", err=True)
    try:
        connector.run()
    finally:
        state.close()


@app.command()
def serve(
    host: str | None = None,
    port: int | None = None,
    workers: Annotated[int, typer.Option(min=1, help="API processes sharing the port (uvicorn workers). "
                                         "Requests are CPU-bound Python: one per core is about right.")] = 1,
) -> None:
    """Run the HTTP API."""
    import uvicorn

    settings = _settings()
    host, port = host or settings.api_host, port or settings.api_port
    log_level = settings.log_level.lower()
    if workers > 1:  # each process builds its own app (engine, rules, live listener) from the environment
        uvicorn.run("tocsin.app:app_from_environment", factory=True, workers=workers, host=host, port=port,
                    log_level=log_level)
        return
    from tocsin.app import create_app

    uvicorn.run(create_app(settings, warm=True), host=host, port=port, log_level=log_level)


@app.command()
def worker(
    roles: Annotated[str, typer.Option(help="Comma-separated roles for this process: relay (outbox to MQTT), sms "
                                       "(fan-out to responders), sweeper (expiry, hysteresis, repeats, "
                                       "escalation), purge (retention, daily). Give the relay its own process "
                                       "when latency matters.")]
    = "relay,sms,sweeper,purge",
) -> None:
    """Run the dispatcher: outbox relay to MQTT, the SMS fan-out (Twilio, or the console without credentials),
    the alert sweeper and the retention purge."""
    from tocsin import worker as worker_mod

    chosen = tuple(r.strip() for r in roles.split(",") if r.strip())
    if set(chosen) - set(worker_mod.ROLES) or not chosen:
        _fail(f"--roles takes {', '.join(worker_mod.ROLES)} (comma-separated); got {roles!r}")
    try:
        worker_mod.run(_settings(), roles=chosen)
    except ValueError as exc:  # bad configuration (an MQTT URL that is not mqtt:// or mqtts://): no traceback
        _fail(str(exc))


cli_zones.register(app)
cli_responders.register(app)
cli_rules.register(app)
cli_reports.register(app)
cli_posts.register(app)
cli_accounts.register(app)
cli_agencies.register(app)
cli_sms.register(app)
cli_place.register(app)
cli_classifier.register(app)
cli_purge.register(app)


def main() -> None:
    try:
        app()
    except Exception as exc:
        from db.outage import is_unavailable

        if not is_unavailable(exc):
            raise
        typer.secho(f"error: {_unreachable(exc)}", fg=typer.colors.RED, err=True)
        sys.exit(3)


def _unreachable(exc: Exception) -> str:
    """One line naming the database the command could not reach, why, and the fix."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(common.settings().database_url).render_as_string(hide_password=True)
    except Exception:  # the settings themselves are what is wrong
        url = "TOCSIN_DATABASE_URL"
    inner = getattr(exc, "orig", None) or exc
    reason = (str(inner).strip().splitlines() or [type(inner).__name__])[0]
    return (f"cannot reach the database at {url} ({reason[:160]}); start it with `make services`, then "
            "`source var/services.env` (or set TOCSIN_DATABASE_URL)")


if __name__ == "__main__":
    main()
