"""HTTP routes for the Open311 GeoReport v2 facade (JSON, and XML as the spec's default format).

Errors here use the spec's format, a list of {code, description}, not the app-wide JSON: the
route class below turns domain errors into it (403 bad api_key, 404 unknown, 400 otherwise).
"""

import json
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Depends, Path, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import APIKeyQuery
from pydantic import BaseModel, Field

from db.api import SessionDep
from db import input_guard
from db.errors import DomainError, Forbidden, InvalidInput, NotFound, Unauthorized
from db.openapi import error_responses
from ingest.reports import api as report_api, open311
from accounts.api import utility_bearer, within_rate_limit
from accounts.errors import RateLimited

log = logging.getLogger(__name__)

FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
# XML element names for each list, per the spec's samples (JSON is their Spark-convention mapping).
_XML_NAMES = {"services": "service", "service_requests": "request", "errors": "error"}


def _status_for(exc: DomainError) -> int:
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, (Unauthorized, Forbidden)):
        return 403  # the spec: "403 for errors because of wrong or missing api_key"
    if isinstance(exc, NotFound):
        return 404
    return 400


def _format_of(request: Request) -> str:
    return "xml" if request.url.path.endswith(".xml") else "json"


def _xml(root: str, items: list[dict[str, Any]]) -> bytes:
    top = ET.Element(root)
    for item in items:
        el = ET.SubElement(top, _XML_NAMES.get(root, "item"))
        for key, value in item.items():
            child = ET.SubElement(el, key)
            if isinstance(value, list):
                for v in value:
                    ET.SubElement(child, "value").text = str(v)
            elif isinstance(value, bool):
                child.text = "true" if value else "false"
            elif value is not None:
                child.text = value.isoformat() if isinstance(value, datetime) else str(value)
    return ET.tostring(top, encoding="utf-8", xml_declaration=True)


def render(fmt: str, root: str, items: list[BaseModel] | list[dict[str, Any]], status_code: int = 200) -> Response:
    dicts = [i.model_dump(mode="json") if isinstance(i, BaseModel) else i for i in items]
    body = _xml(root, dicts) if fmt == "xml" else json.dumps(dicts).encode()
    return Response(content=body, status_code=status_code, media_type=FORMATS[fmt])


def error_response(fmt: str, status_code: int, messages: list[str]) -> Response:
    return render(fmt, "errors", [{"code": status_code, "description": m} for m in messages], status_code)


class Open311Route(APIRoute):
    """Answer errors in the spec's format instead of the app-wide JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def open311_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except DomainError as exc:
                code = _status_for(exc)
                messages = exc.details.get("errors") or [exc.message]
                response = error_response(_format_of(request), code, [str(m) for m in messages])
                if "retry_after_s" in exc.details:
                    response.headers["Retry-After"] = str(exc.details["retry_after_s"])
                return response
            except RequestValidationError as exc:
                messages = [f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()]
                return error_response(_format_of(request), 400, messages or ["invalid request"])

        return open311_handler


def _check_params(items: list[tuple[str, Any]]) -> None:
    """NUL or a lone surrogate in any parameter is a 400 naming it (PostgreSQL text cannot hold them)."""
    for name, value in items:
        for text in (name, value):
            problem = input_guard.text_problem(text) if isinstance(text, str) else None
            if problem:  # the name is echoed too: escape what UTF-8 (and so the XML answer) cannot carry
                shown = name.encode("utf-8", "backslashreplace").decode("utf-8")
                raise InvalidInput(f"{shown}: {problem}", field=shown)


async def storable_params(request: Request) -> None:
    _check_params([*request.path_params.items(), *request.query_params.multi_items()])


PREFIX = "/open311/v2"
router = APIRouter(prefix=PREFIX, tags=["open311"], route_class=Open311Route,
                   dependencies=[Depends(storable_params)])
# Documentation of the two ways to send the utility key; the routes read both themselves (spec-format errors).
_api_key_query = APIKeyQuery(name="api_key", scheme_name="open311ApiKey", auto_error=False,
                             description="A utility API key as the spec's api_key parameter")

_ERROR_EXAMPLE = [{"code": 400, "description": "service_code 'volcano' is not one of power_outage, gas_leak, "
                                               "water_main, other"}]
_XML_STRING = {"schema": {"type": "string"}}


def _errors_doc(description: str) -> dict[str, Any]:
    """An error answer in the GeoReport v2 format, as JSON or XML (the path's .json or .xml)."""
    return {"description": description, "content": {
        "application/json": {"schema": {"type": "array", "items": open311.Open311Error.model_json_schema()},
                             "example": _ERROR_EXAMPLE},
        "text/xml": {**_XML_STRING, "example": _xml("errors", _ERROR_EXAMPLE).decode()}}}


ERRORS_DOC = _errors_doc("A list of errors in the GeoReport v2 format")
# What every route can answer besides its own: the body limits and a lost database use the app-wide JSON shape.
_COMMON = {400: _errors_doc("Invalid parameters (NUL or a lone surrogate in one, a bad date, ...) or an "
                            "unparseable body; each error names the parameter"),
           **error_responses(503)}
_BODY_LIMIT = error_responses(413)
FormatParam = Annotated[str, Path(description="`json` or `xml`", json_schema_extra={"enum": list(FORMATS)})]
_REQUEST_EXAMPLE = {
    "service_request_id": "CONED-2026-000123", "status": "open", "status_notes": "utility status: reported",
    "service_name": "Gas leak", "service_code": "gas_leak", "description": "Gas odor at street level",
    "agency_responsible": "Con Edison", "service_notice": None, "requested_datetime": "2026-11-25T21:00:00Z",
    "updated_datetime": "2026-11-25T21:00:00Z", "expected_datetime": None,
    "address": "31st St and Ditmars Blvd, Astoria, NY 11105", "address_id": None, "zipcode": "11105",
    "lat": 40.7644, "long": -73.9196, "media_url": None,
}


ApiKeyParam = Annotated[str | None, Security(_api_key_query)]


def _example(value: Any, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"example": value}, "text/xml": _XML_STRING}}


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise NotFound(f"format {fmt!r} is not supported; use .json or .xml")
    return fmt


def _api_key(request: Request, explicit: str | None) -> str | None:
    if explicit:
        return explicit
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class RequestParams(BaseModel):
    """POST requests parameters; send them form-encoded (as the spec says) or as a JSON object."""

    api_key: str = Field(description="A utility API key")
    service_code: str = Field(description="One of the codes from services.json", examples=["gas_leak"],
                              json_schema_extra={"enum": list(open311.SERVICE_BY_CODE)})
    lat: float | None = Field(default=None, ge=-90, le=90, description="WGS84 latitude", examples=[40.7644])
    long: float | None = Field(default=None, ge=-180, le=180, description="WGS84 longitude", examples=[-73.9196])
    address_string: str | None = Field(default=None, description="Used without lat/long: must hold a 5-digit ZIP",
                                       examples=["31st St and Ditmars Blvd, Astoria, NY 11105"])
    description: str | None = Field(default=None, max_length=4000, examples=["Gas odor at street level"])
    service_request_id: str | None = Field(default=None, description="Your id for this request (stored as the "
                                           "report's external_id); without one, a hash of the request is used")


_POST_EXAMPLE = {"api_key": "tk_...", "service_code": "gas_leak", "lat": 40.7644, "long": -73.9196,
                 "description": "Gas odor at street level", "service_request_id": "CONED-2026-000123"}
_POST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            ctype: {"schema": RequestParams.model_json_schema(), "example": _POST_EXAMPLE}
            for ctype in ("application/x-www-form-urlencoded", "application/json")
        },
    }
}


async def request_params(request: Request) -> dict[str, Any]:
    """Query string and body (form-encoded or JSON) as one mapping; the body wins."""
    params: dict[str, Any] = dict(request.query_params)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        raw = await request.body()
        try:
            data = json.loads(input_guard.check_json_body(raw)) if raw else {}
        except input_guard.MalformedBody as exc:
            raise InvalidInput(exc.message, field="body") from None
        except ValueError as exc:
            raise InvalidInput(f"request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInput(f"a JSON request body must be an object of parameters, got {type(data).__name__}")
        params.update(data)
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    elif ctype:
        raise InvalidInput(f"Content-Type {ctype!r} is not supported; send application/x-www-form-urlencoded "
                           "or application/json")
    _check_params(list(params.items()))
    return params


@router.get("/services.{fmt}", response_model=list[open311.Service],
            responses={200: _example([open311.SERVICES[1].model_dump()]), 404: ERRORS_DOC, **_COMMON},
            summary="GET Service List")
def services(fmt: FormatParam) -> Response:
    """The report categories as Open311 services (no API key needed)."""
    return render(_format(fmt), "services", list(open311.SERVICES))


@router.get("/services/{service_code}.{fmt}", summary="GET Service Definition",
            responses={200: _example({"service_code": "gas_leak", "attributes": []}), 404: ERRORS_DOC, **_COMMON})
def service_definition(service_code: str, fmt: FormatParam) -> Response:
    """No service has extra attributes (metadata is false), so every definition is empty."""
    fmt = _format(fmt)
    if service_code not in open311.SERVICE_BY_CODE:
        raise NotFound(f"service_code {service_code!r} is not one of {', '.join(open311.SERVICE_BY_CODE)}")
    body = {"service_code": service_code, "attributes": []}
    if fmt == "xml":
        top = ET.Element("service_definition")
        ET.SubElement(top, "service_code").text = service_code
        ET.SubElement(top, "attributes")
        return Response(ET.tostring(top, encoding="utf-8", xml_declaration=True), media_type=FORMATS[fmt])
    return Response(json.dumps(body), media_type=FORMATS[fmt])


@router.post(
    "/requests.{fmt}", status_code=201, response_model=list[open311.CreatedRequest], openapi_extra=_POST_BODY,
    summary="POST Service Request",
    responses={201: _example([{"service_request_id": "CONED-2026-000123", "service_notice": "Recorded as Tocsin "
                                "report 7; matched nta QN0103, zcta 11105.", "account_id": None}], "Created"),
               200: {"description": "The same request was already stored (a retry)",
                     "model": list[open311.CreatedRequest]},
               **_COMMON, 403: ERRORS_DOC, 404: ERRORS_DOC, 429: ERRORS_DOC, **_BODY_LIMIT},
    dependencies=[Security(utility_bearer)],
)
def create_request(fmt: FormatParam, request: Request, session: SessionDep,
                   params: Annotated[dict[str, Any], Depends(request_params)]) -> Response:
    """Submit a utility report as an Open311 service request (lat/long, or an address_string with a ZIP)."""
    fmt = _format(fmt)
    api_key = params.pop("api_key", None)
    caller = open311.authenticate(session, api_key=_api_key(request, str(api_key) if api_key else None))
    # The same per-key allowance as /v1/reports (one bucket per key across both APIs); Open311Route answers
    # its RateLimited in the spec's error list, with Retry-After.
    within_rate_limit(request, caller)
    state, settings = request.app.state, request.app.state.settings
    created, is_new = open311.submit(session, caller=caller, params=params, rules=state.rules(),
                                     jurisdiction_bbox=report_api.jurisdiction(request, session), now=datetime.now(UTC),
                                     max_vertices=settings.max_vertices, max_area_km2=settings.max_area_km2)
    session.commit()
    log.info("open311 request %s for utility %s (%s)", created.service_request_id, caller.utility_id,
             "created" if is_new else "already stored")
    return render(fmt, "service_requests", [created], 201 if is_new else 200)


@router.get("/requests.{fmt}", response_model=list[open311.ServiceRequest], summary="GET Service Requests",
            responses={200: _example([_REQUEST_EXAMPLE]), **_COMMON, 403: ERRORS_DOC, 404: ERRORS_DOC},
            dependencies=[Security(utility_bearer)])
def list_requests(
    fmt: FormatParam, request: Request, session: SessionDep, api_key: ApiKeyParam = None,
    service_request_id: Annotated[str | None, Query(description="Comma-separated ids; overrides the rest")] = None,
    service_code: Annotated[str | None, Query(description="Comma-separated service codes")] = None,
    start_date: Annotated[str | None, Query(description="w3 date-time, e.g. 2026-11-01T00:00:00Z")] = None,
    end_date: Annotated[str | None, Query(description="w3 date-time; at most 90 days after start_date")] = None,
    status: Annotated[str | None, Query(description="open, closed, or both comma-separated")] = None,
) -> Response:
    """The calling utility's requests, newest first (default: the last 90 days; at most 1,000)."""
    fmt = _format(fmt)
    caller = open311.authenticate(session, api_key=_api_key(request, api_key))
    where = open311.parse_filter(request.query_params, now=datetime.now(UTC))
    return render(fmt, "service_requests", open311.list_requests(session, caller=caller, where=where))


@router.get("/requests/{service_request_id}.{fmt}", response_model=list[open311.ServiceRequest],
            summary="GET Service Request",
            responses={200: _example([_REQUEST_EXAMPLE]), **_COMMON, 403: ERRORS_DOC, 404: ERRORS_DOC},
            dependencies=[Security(utility_bearer)])
def get_request(service_request_id: str, fmt: FormatParam, request: Request, session: SessionDep,
                api_key: ApiKeyParam = None) -> Response:
    """One of the calling utility's requests, as a one-element list (the spec's shape)."""
    fmt = _format(fmt)
    caller = open311.authenticate(session, api_key=_api_key(request, api_key))
    found = open311.get_request(session, caller=caller, service_request_id=service_request_id)
    return render(fmt, "service_requests", [found])
