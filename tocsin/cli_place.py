"""`tocsin place ...`: set up the city this Tocsin serves from the files it already has (geo.places).

Registered on the main app by tocsin.cli; heavy imports stay inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tocsin import cli_common as common

place_app = typer.Typer(help="The place (city, county) this Tocsin serves: boundary, layers, names, time zone.",
                        no_args_is_help=True)
NYC_DEMO_PLACE = "new-york"


def register(app: typer.Typer) -> None:
    app.add_typer(place_app, name="place")


def _levels(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        layer, sep, level = v.partition("=")
        if not sep or not layer.strip() or not level.strip():
            common.fail(f"--level {v!r} is not LAYER=LEVEL")
        out[layer.strip()] = level.strip()
    return out


@place_app.command("init")
def place_init(
    name: Annotated[str, typer.Argument(help="Place name: lower case, digits, '-' or '_' (e.g. london)")],
    boundary: Annotated[Path, typer.Option(help="Jurisdiction boundary: a polygon file (GeoJSON, GPKG, Shapefile; "
                                                "any CRS); its features' union is the jurisdiction")],
    timezone: Annotated[str, typer.Option(help="IANA time zone of on-call schedules, e.g. Europe/London")],
    layer: Annotated[list[str] | None, typer.Option(help="Zone layer NAME=FILE[:CODE_FIELD[:NAME_FIELD]] (any format `zones "
                                                         "load` reads); repeatable")] = None,
    level: Annotated[list[str] | None, typer.Option(help="LAYER=LEVEL: the context level a layer plays for the "
                                                         "geotagger (borough, district, county, neighbourhood, "
                                                         "ward); default: the layer's name when it is one")] = None,
    names: Annotated[list[Path] | None, typer.Option(help="Place names: a GeoNames dump (.txt) or CSV/GeoJSON with "
                                                          "name and alternates; repeatable")] = None,
    streets: Annotated[list[Path] | None, typer.Option(help="Street centerlines (as `gazetteer import-streets`); "
                                                            "repeatable")] = None,
    landmarks: Annotated[list[Path] | None, typer.Option(help="Landmarks (as `gazetteer import-landmarks`); "
                                                              "repeatable")] = None,
    languages: Annotated[str, typer.Option(help="Comma-separated languages posts are written in")] = "en",
    region: Annotated[str | None, typer.Option(help="Region code its names carry, e.g. GB-LND or US-NY")] = None,
    assume_crs: Annotated[str | None, typer.Option(help="CRS of files that declare none")] = None,
    rules_out: Annotated[Path | None, typer.Option(help="Write a starting rules file for the layers loaded")] = None,
    force: Annotated[bool, typer.Option("--force", help="Load even when a check fails")] = False,
) -> None:
    """Set up a place: load its layers, names, streets and landmarks with progress, check them (layers cover
    the boundary, codes unique, names not empty), make it the active place, and write starting rules."""
    from geo.place_checks import starting_rules
    from geo.place_setup import LayerSpec, read_boundary, read_setup, write_setup
    from geo.places import Place
    from geo.zones import ZoneFileError
    from tocsin.progress import progress

    settings = common.settings()
    try:
        outline = read_boundary(boundary, assume_crs=assume_crs)
        levels = _levels(level or [])
        specs = [LayerSpec.parse(v, levels) for v in layer or []]
        unknown = set(levels) - {s.name for s in specs}
        if unknown:
            common.fail(f"--level names layers {sorted(unknown)} that no --layer loads")
        place = Place(name=name, boundary=outline, timezone=timezone, region=region,
                      languages=tuple(x.strip() for x in languages.split(",") if x.strip()),
                      context={s.name: s.level for s in specs if s.level})
        setup = read_setup(place, layers=specs, names=names or [], streets=streets or [], landmarks=landmarks or [],
                           assume_crs=assume_crs, progress=progress)
    except ZoneFileError as exc:
        common.fail(exc.message)
    except ValueError as exc:
        common.fail(str(exc))
    for note in setup.notes:
        typer.echo(note, err=True)
    for p in setup.problems:
        typer.secho(("error: " if p.fatal else "warning: ") + p.render(), err=True,
                    fg=typer.colors.RED if p.fatal else typer.colors.YELLOW)
    if setup.fatal and not force:
        common.fail(f"{len(setup.fatal)} check(s) failed; nothing loaded (fix the files, or pass --force)")
    with common.transaction_or_fail(common.sessionmaker(settings)) as session:
        write_setup(session, setup=setup, progress=progress)
    if rules_out is not None:
        rules_out.write_text(starting_rules([s.name for s, _ in setup.layers], place=name), encoding="utf-8")
        typer.echo(f"rules: wrote {rules_out}", err=True)
    typer.echo(f"place {name}: active; {len(setup.layers)} layers, {len(setup.entries)} gazetteer entries, "
               f"time zone {timezone}")


@place_app.command("list")
def place_list() -> None:
    """The places set up, the active one marked with *."""
    from db.session import transaction
    from geo import places

    with transaction(common.sessionmaker(common.settings())) as session:
        for name, tz, active in places.list_places(session):
            typer.echo(f"{'*' if active else ' '} {name:<24} {tz}")


@place_app.command("use")
def place_use(name: str) -> None:
    """Make a place the active one: its boundary is the jurisdiction and the geotagger reads its names."""
    from db.session import transaction
    from geo import places

    with transaction(common.sessionmaker(common.settings())) as session:
        if not places.activate(session, name=name):
            common.fail(f"place {name!r} is not set up (tocsin place list)")
    typer.echo(f"place {name}: active")


def ensure_nyc_demo_place(settings) -> None:
    """The New York demo as a place (`tocsin zones demo`): its box is the jurisdiction, as before places; it
    becomes active unless another place already is."""
    from shapely.geometry import box

    from db.session import transaction
    from geo import places

    with transaction(common.sessionmaker(settings)) as session:
        other = places.active_place(session)
        places.save_place(session, place=places.Place(
            name=NYC_DEMO_PLACE, boundary=box(*settings.jurisdiction_bbox), timezone="America/New_York",
            languages=("en", "es"), region="US-NY", context={"borough": "borough", "nta": "neighbourhood"}),
            activate=other is None or other.name == NYC_DEMO_PLACE)


def active_place_name(settings) -> str | None:
    from geo import places

    with common.sessionmaker(settings)() as session:
        return next((name for name, _, active in places.list_places(session) if active), None)


def active_timezone(settings, default: str) -> str:
    from geo import places

    with common.sessionmaker(settings)() as session:
        return places.active_timezone(session, default=default)
