"""`tocsin reports import-feed`: an outage-map snapshot for one utility."""

from pathlib import Path
from typing import Annotated

import typer

from tocsin import cli_common as common

reports_app = typer.Typer(help="Utility outage reports: feed imports.", no_args_is_help=True)

_settings = common.settings
_sessionmaker = common.sessionmaker
_fail = common.fail


def register(app: typer.Typer) -> None:
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
    with common.transaction_or_fail(_sessionmaker(settings)) as session, \
            progress(len(parsed.items), "outages", "outage") as advance:
        caller = feed_import.feed_caller(session, utility_name=utility)
        result = feed_import.import_feed(session, caller=caller, feed=fmt, parsed=parsed,
                                         rules=load_rules(settings.rules_file), jurisdiction_bbox=jurisdiction,
                                         now=datetime.now(UTC), source=path.name,
                                         max_vertices=settings.max_vertices, max_area_km2=settings.max_area_km2,
                                         progress=advance)
    for r in sorted(result.rejected, key=lambda r: r.index):
        typer.secho(f"rejected index {r.index} ({r.external_id or 'no id'}): {r.reason}", fg=typer.colors.YELLOW,
                    err=True)
    for ext, reason in result.restore_failures:
        typer.secho(f"could not mark {ext} restored: {reason}", fg=typer.colors.YELLOW, err=True)
    if not result.restore_checked:
        typer.secho("snapshot is at the feed's page cap: vanished outages were not marked restored", err=True)
    typer.echo(", ".join(f"{k} {v}" for k, v in result.counts().items()))
