"""The control-room map: the page at `/`, its static files, its configuration and GET /v1/observations."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from accounts.api import OperatorDep
from db.api import SessionDep
from db.errors import InvalidInput
from db.input_guard import INT8_MAX, SafeStr
from db.openapi import error_responses
from geo.geojson import parse_bbox
from ingest import observations as obs_service
from ingest.posts.classify import CATEGORIES

WEB_DIR = Path(__file__).resolve().parent / "web"

router = APIRouter(tags=["live map"])


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    """The live map page."""
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/v1/map/config")
def map_config(request: Request) -> dict[str, Any]:
    """What the page needs before sign-in: the basemap tile URL (null: land drawn from a zone layer over a water
    colour), and the categories evidence can be corrected to."""
    settings = request.app.state.settings
    return {
        "basemap_url": settings.basemap_url,
        "basemap_attribution": settings.basemap_attribution,
        "jurisdiction_bbox": list(settings.jurisdiction_bbox),
        "categories": list(CATEGORIES),  # the classifier's: what "wrong category" on evidence may name
    }


@router.get("/v1/observations", responses=error_responses(401, 403, 422, 503))
def list_observations(
    session: SessionDep,
    identity: OperatorDep,
    bbox: Annotated[SafeStr | None, Query(max_length=200, description="west,south,east,north in degrees (lon, lat)",
                                          examples=["-74.05,40.65,-73.85,40.85"])] = None,
    since: Annotated[datetime | None, Query(description="Observed at or after (ISO 8601 with offset)")] = None,
    ids: Annotated[str | None, Query(description="Comma-separated observation ids (an alert's evidence)",
                                     max_length=10_000, pattern=r"^[0-9,\s]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=obs_service.MAX_LIMIT)] = 2_000,
) -> Response:
    """Located observations as a GeoJSON FeatureCollection, newest first (viewer role or above): those the
    operator's agencies cover (category, and the zones they lie in)."""
    id_list = obs_service.parse_ids(ids) if ids else None
    too_big = next((i for i in id_list or () if i > INT8_MAX), None)
    if too_big is not None:  # observations.id is bigint
        raise InvalidInput(f"ids item {too_big} is out of range (at most {INT8_MAX})", field="ids")
    features = obs_service.observation_features_json(
        session, now=datetime.now(UTC), bbox=parse_bbox(bbox) if bbox else None, since=since,
        ids=id_list, limit=limit, coverage=identity.coverage,
    )
    # The features arrive serialised from PostgreSQL; only the envelope is built here.
    body = (f'{{"type":"FeatureCollection","count":{len(features)},'
            f'"truncated":{json.dumps(len(features) == limit)},"features":[{",".join(f for _, f in features)}]}}')
    return Response(body, media_type="application/json")


@router.get("/a/{alert_id}", include_in_schema=False)
def alert_link(alert_id: int) -> RedirectResponse:
    """The short link in SMS and MQTT payloads: open the map on that alert."""
    return RedirectResponse(f"/?alert={alert_id}", status_code=303)


_VENDOR = "/static/vendor"


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    # The API's documentation pages, with Swagger UI and ReDoc from tocsin/web/vendor rather than a CDN:
    # a control room's network may have no internet, and /docs was blank without it.
    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> Response:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                   swagger_js_url=f"{_VENDOR}/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url=f"{_VENDOR}/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url=f"{_VENDOR}/swagger-ui/favicon-32x32.png")

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> Response:
        return get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                              redoc_js_url=f"{_VENDOR}/redoc/redoc.standalone.js",
                              redoc_favicon_url=f"{_VENDOR}/swagger-ui/favicon-32x32.png", with_google_fonts=False)
