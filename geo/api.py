"""HTTP routes for zones (read-only; zones are loaded with the CLI)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from db.api import SessionDep
from db.input_guard import SafeStr
from db.openapi import error_responses
from geo import zone_store as zone_service

router = APIRouter(prefix="/v1", tags=["zones"], responses=error_responses(503))


@router.get("/zones/layers")
def list_layers(session: SessionDep) -> list[dict[str, Any]]:
    """The loaded zone layers with their zone counts."""
    return zone_service.list_layers(session)


@router.get(
    "/zones",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}, "description": "GeoJSON FeatureCollection"},
               **error_responses(404, 422, _404="Layer not loaded")},
)
def list_zones(
    session: SessionDep,
    layer: Annotated[SafeStr, Query(max_length=64, description="Zone layer name, e.g. nta")],
    simplify_m: Annotated[float, Query(ge=0, le=1000, description="Display simplification tolerance in metres")] = 0,
) -> Response:
    """One layer's zones as a GeoJSON FeatureCollection (lon/lat)."""
    body = zone_service.zones_geojson(session, layer=layer, simplify_m=simplify_m)
    return Response(content=body, media_type="application/geo+json")
