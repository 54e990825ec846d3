"""Where a utility report is: its drawn footprint (parsed, repaired, within limits), else its ZIP's polygon,
else the ZIP in its address; and whether that lies in the jurisdiction and the utility's territory."""

import re
from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from accounts.keys import Caller
from db import raw as db_raw
from geo.geojson import area_km2, check_limits, check_vertices, parse_geometry, repair
from geo.jurisdiction import Jurisdiction
from ingest.errors import OutsideJurisdiction, OutsideTerritory, UnknownLocation
from ingest.reports.schemas import ReportCreate, parsed_shape

POINT_UNCERTAINTY_M = 25.0
ZIP_LAYER = "zcta"
# The last 5-digit group (optionally ZIP+4) in an address is its ZIP; house numbers come first.
_ZIP_IN_ADDRESS = re.compile(r"\b(\d{5})(?:-\d{4})?\b")


@dataclass(frozen=True)
class Located:
    geom: BaseGeometry
    method: str  # geometry | zip | address
    repaired: str | None = None


def check_jurisdiction(geom: BaseGeometry, jurisdiction: Jurisdiction | tuple[float, float, float, float]) -> None:
    """OutsideJurisdiction unless the geometry lies in the jurisdiction: its box, and the active place's
    boundary when one is set up (geo.places)."""
    j = Jurisdiction.of(jurisdiction)
    if j.covers(geom):
        return
    c = geom.representative_point()
    hint = ""
    swapped = shapely.Point(c.y, c.x)
    if j.covers(swapped):
        hint = "; the coordinates look swapped: GeoJSON wants [longitude, latitude]"
    raise OutsideJurisdiction(
        f"location (lon {c.x:.5f}, lat {c.y:.5f}) is outside {j.describe()}{hint}",
        value=[c.x, c.y], field="geometry",
    )


def _outside(utility_id: str, geom: str) -> str:
    """An SQL condition: the utility `utility_id` has a territory and `geom` does not touch it (both SQL
    expressions). Tested on the territory's pieces (`utility_territory_pieces`, migration 0026: a GiST probe,
    then parts of at most 128 vertices, rather than the whole outline); a utility has pieces exactly when it
    has a territory."""
    pieces = f"SELECT 1 FROM utility_territory_pieces terr WHERE terr.utility_id = {utility_id}"
    return f"(NOT EXISTS ({pieces} AND ST_Intersects(terr.geom, {geom})) AND EXISTS ({pieces}))"


def territory_sql(has_territory: str, utility_id: str, geom: str) -> str:
    """An SQL condition: the utility `utility_id` has no territory (`has_territory`, the caller's flag), or
    `geom` touches it (all three SQL expressions). A report's insert runs it, so that the check costs no
    statement of its own; one outside stores nothing, and `check_territory` then names the problem."""
    return f"(NOT {has_territory} OR NOT {_outside(utility_id, geom)})"


_OUTSIDE = (  # run through db.raw: a batch of a utility with a territory sends it every time
    "SELECT t.i FROM unnest(CAST(:i AS int[]), CAST(:u AS bigint[]), CAST(:wkt AS text[])) AS t(i, u, wkt) "
    "WHERE " + _outside("t.u", "ST_GeomFromText(t.wkt, 4326)"))


def outside_territories(session: Session, reports: list[tuple[int, Caller, BaseGeometry]]
                        ) -> dict[int, OutsideTerritory]:
    """The error of each report (numbered by the caller) lying outside its utility's service territory, in
    one statement for them all (none for utilities without one). Touching the territory is enough."""
    reports = [r for r in reports if r[1].has_territory]
    if not reports:
        return {}
    outside = {row.i for row in db_raw.execute(session, _OUTSIDE, {
        "i": [i for i, _, _ in reports], "u": [c.utility_id for _, c, _ in reports],
        "wkt": [g.wkt for _, _, g in reports]}).fetchall()}
    errors = {}
    for i, caller, geom in reports:
        if i in outside:
            c = geom.representative_point()
            errors[i] = OutsideTerritory(
                f"location (lon {c.x:.5f}, lat {c.y:.5f}) is outside the service territory of utility "
                f"{caller.utility_name!r}", value=[c.x, c.y], field="geometry")
    return errors


def check_territory(session: Session, *, caller: Caller, geom: BaseGeometry) -> None:
    """A utility with a service territory may only report inside it (touching it is enough)."""
    if error := outside_territories(session, [(0, caller, geom)]).get(0):
        raise error


def uncertainty_m(geom: BaseGeometry) -> float:
    """Points get a fixed radius; areas the radius of the circle with the same area."""
    if geom.geom_type == "Point":
        return POINT_UNCERTAINTY_M
    return (area_km2(geom) * 1e6 / 3.141592653589793) ** 0.5


def zip_polygon(session: Session, *, zip_code: str, field_name: str) -> BaseGeometry:
    """The ZIP's polygon from the `zcta` zone layer."""
    wkb = session.execute(
        text("SELECT ST_AsBinary(z.geom) FROM zones z JOIN zone_layers l ON l.id = z.layer_id "
             "WHERE l.name = :layer AND z.code = :code"),
        {"layer": ZIP_LAYER, "code": zip_code[:5]},
    ).scalar()
    if wkb is None:
        raise UnknownLocation(f"ZIP {zip_code!r} is not a known ZIP code area (zone layer {ZIP_LAYER!r})",
                              value=zip_code, field=field_name)
    return shapely.from_wkb(bytes(wkb))


def footprint(geometry: dict, *, max_vertices: int, max_area_km2: float) -> tuple[BaseGeometry, str | None]:
    """A drawn footprint (a new report's, or a PATCH's) as a shapely geometry, repaired when it can be, and
    within the limits; with a note of what was repaired, or None. The schema's validation parsed it already
    (schemas.parsed_shape): only a geometry that never went through validation is parsed here."""
    geom = parsed_shape(geometry)
    if geom is None:
        geom = parse_geometry(geometry, max_vertices=max_vertices)
    else:
        # parse_geometry's own check at the configured limit (the schema's limit is structural only): it
        # counts the vertices as sent, before a repair could change their number.
        check_vertices(geom, max_vertices=max_vertices)
    geom, repaired = repair(geom)
    check_limits(geom, max_vertices=max_vertices, max_area_km2=max_area_km2)
    return geom, repaired


def drawn(body: ReportCreate, *, max_vertices: int, max_area_km2: float) -> Located:
    """The footprint the utility drew (`footprint`)."""
    geom, repaired = footprint(body.geometry, max_vertices=max_vertices, max_area_km2=max_area_km2)
    return Located(geom, "geometry", repaired)


def locate(session: Session, *, body: ReportCreate, max_vertices: int, max_area_km2: float) -> Located:
    """The report's footprint: its geometry, else its ZIP's polygon, else the ZIP inside its address."""
    props = body.properties
    if body.geometry is not None:
        return drawn(body, max_vertices=max_vertices, max_area_km2=max_area_km2)
    if props.zip:
        return Located(zip_polygon(session, zip_code=props.zip, field_name="properties.zip"), "zip")
    assert props.address is not None  # the schema requires geometry, zip or address
    found = _ZIP_IN_ADDRESS.findall(props.address)
    if not found:
        raise UnknownLocation(
            f"address {props.address!r} contains no 5-digit ZIP code; street addresses are not geocoded yet, "
            "so send geometry or properties.zip", value=props.address, field="properties.address",
        )
    return Located(zip_polygon(session, zip_code=found[-1], field_name="properties.address"), "address")
