"""HTTP routes for zones (read-only; zones are loaded with the CLI)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from db.api import SessionDep
from geo import service as zone_service

router = APIRouter(prefix="/v1", tags=["zones"])


@router.get("/zones/layers")
def list_layers(session: SessionDep) -> list[dict[str, Any]]:
    """The loaded zone layers with their zone counts."""
    return zone_service.list_layers(session)


@router.get("/zones")
def list_zones(
    session: SessionDep,
    layer: Annotated[str, Query(description="Zone layer name, e.g. nta")],
    simplify_m: Annotated[float, Query(ge=0, le=1000, description="Display simplification tolerance in metres")] = 0,
) -> dict[str, Any]:
    """One layer's zones as a GeoJSON FeatureCollection (lon/lat)."""
    return zone_service.zones_geojson(session, layer=layer, simplify_m=simplify_m)
