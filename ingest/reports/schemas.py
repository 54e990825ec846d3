"""API schemas for utility reports (GeoJSON Features); tables live in models.py."""

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from shapely.geometry.base import BaseGeometry

from db.openapi import Problem  # noqa: F401  (re-exported: the one error schema every API shares)
from geo.errors import InvalidGeometry
from geo.geojson import parse_geometry

REPORT_CATEGORIES = ("power_outage", "gas_leak", "water_main", "other")
REPORT_STATUSES = ("reported", "investigating", "restoring", "restored", "cancelled")
Category = Literal["power_outage", "gas_leak", "water_main", "other"]
# What an immediate rule's conditions can test on a report's signal (ingest.reports.service: its attributes, and the
# customers apportioned to each zone).
REPORT_ATTRIBUTES = ("customers_affected", "status", "zone_customers_affected")
Status = Literal["reported", "investigating", "restoring", "restored", "cancelled"]
# The schema checks structure only; the service applies the configured TOCSIN_MAX_VERTICES.
_STRUCTURE_MAX_VERTICES = 1_000_000

POINT_EXAMPLE = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [-73.9196, 40.7644]},
    "properties": {
        "external_id": "CONED-2026-000123", "category": "gas_leak", "status": "reported",
        "customers_affected": 40, "description": "Gas odor reported at street level",
    },
}
ZIP_EXAMPLE = {
    "type": "Feature",
    "geometry": None,
    "properties": {"external_id": "CONED-2026-000124", "category": "power_outage", "zip": "11103",
                   "customers_affected": 1200, "cause": "underground cable fault"},
}


def check_json_values(value: Any, where: str = "body") -> None:
    """Refuse what PostgreSQL's jsonb and text cannot store: NUL characters, NaN and infinities."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where}: NUL characters are not allowed, got {value[:40]!r}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: {value[:40]!r} is not valid Unicode (lone surrogate)") from None
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value} is not a finite number")
    elif isinstance(value, dict):
        for k, v in value.items():
            check_json_values(k, where)
            check_json_values(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_json_values(v, f"{where}[{i}]")


class ParsedGeometry(dict):
    """A body's GeoJSON geometry as sent (a plain dict to pydantic, JSON and ==), holding the shapely geometry
    its validation built (`shape`): ingest.reports.locate uses that rather than parse the GeoJSON again."""

    __slots__ = ("shape",)
    shape: BaseGeometry


def parsed_shape(geometry: dict[str, Any] | None) -> BaseGeometry | None:
    """The shapely geometry the schema built for `geometry`; None for a body that was not validated."""
    return geometry.shape if isinstance(geometry, ParsedGeometry) else None


def _geometry_or_error(v: dict[str, Any] | None) -> dict[str, Any] | None:
    if v is None:
        return v
    try:
        shape = parse_geometry(v, max_vertices=_STRUCTURE_MAX_VERTICES)
    except InvalidGeometry as exc:
        raise ValueError(exc.reason) from None
    parsed = ParsedGeometry(v)
    parsed.shape = shape
    return parsed


class ReportProperties(BaseModel):
    model_config = ConfigDict(extra="allow")

    external_id: str = Field(min_length=1, max_length=200, description="Unique per utility; retries reuse it.")
    category: Category
    status: Status = "reported"
    customers_affected: int | None = Field(default=None, ge=0, le=10_000_000)
    cause: str | None = Field(default=None, max_length=500)
    started_at: AwareDatetime | None = None
    estimated_restore_at: AwareDatetime | None = None
    description: str | None = Field(default=None, max_length=5000)
    zip: str | None = Field(default=None, pattern=r"^\d{5}(-\d{4})?$",
                            description="Used when geometry is null: the ZIP's ZCTA polygon becomes the footprint.")
    address: str | None = Field(default=None, max_length=500,
                                description="Used when geometry and zip are null; it must contain a 5-digit ZIP.")


class _FeatureBody(BaseModel):
    """Shared checks for bodies that carry a GeoJSON geometry: storable JSON, usable geometry."""

    geometry: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        check_json_values(data)
        return data

    @field_validator("geometry")
    @classmethod
    def _geometry(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return _geometry_or_error(v)


class ReportCreate(_FeatureBody):
    """A GeoJSON Feature (RFC 7946: longitude first) describing one outage or hazard."""

    model_config = ConfigDict(json_schema_extra={"examples": [POINT_EXAMPLE, ZIP_EXAMPLE]})

    type: Literal["Feature"]
    geometry: dict[str, Any] | None = Field(
        default=None, description="Point, Polygon or MultiPolygon; null when properties.zip or address is given.")
    properties: ReportProperties

    @model_validator(mode="after")
    def _somewhere(self) -> "ReportCreate":
        if self.geometry is None and not self.properties.zip and not self.properties.address:
            raise ValueError("geometry is null and neither properties.zip nor properties.address is given: "
                             "send a Point, Polygon or MultiPolygon, or a ZIP or an address")
        return self


class ReportPatchProperties(BaseModel):
    """Properties to change (JSON merge: a null clears a field, an absent key leaves it)."""

    model_config = ConfigDict(extra="allow")

    status: Status | None = None
    category: Category | None = None
    customers_affected: int | None = Field(default=None, ge=0, le=10_000_000)
    cause: str | None = Field(default=None, max_length=500)
    started_at: AwareDatetime | None = None
    estimated_restore_at: AwareDatetime | None = None
    description: str | None = Field(default=None, max_length=5000)

    @model_validator(mode="after")
    def _not_nullable(self) -> "ReportPatchProperties":
        for name in ("status", "category"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"properties.{name} cannot be null")
        extra = self.model_extra or {}
        for name in ("external_id", "zip", "address"):
            if name in extra:
                raise ValueError(f"properties.{name} cannot be changed by PATCH (got {extra[name]!r})")
        return self


class ReportUpdate(_FeatureBody):
    """A partial GeoJSON Feature: the properties to merge and, optionally, a new footprint. Unknown top-level
    keys are refused (422 naming the key): `{"status": "restoring"}` without `properties` used to change
    nothing and answer 200."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"properties": {"status": "restoring", "customers_affected": 300,
                        "estimated_restore_at": "2026-11-25T23:00:00Z"}},
        {"properties": {"status": "restored", "customers_affected": 0}},
    ]})

    type: Literal["Feature"] | None = None
    geometry: dict[str, Any] | None = Field(default=None, description="A new footprint; re-matches zones.")
    properties: ReportPatchProperties = Field(default_factory=ReportPatchProperties)
    # Members RFC 7946 allows on a Feature; accepted and ignored.
    id: str | int | None = None
    bbox: list[float] | None = None

    @model_validator(mode="after")
    def _geometry_not_null(self) -> "ReportUpdate":
        if "geometry" in self.model_fields_set and self.geometry is None:
            raise ValueError("geometry cannot be null: a report keeps a footprint")
        return self


class ZoneRef(BaseModel):
    code: str
    name: str
    weight: float


class HistoryEntry(BaseModel):
    version: int
    status: str
    at: datetime
    changes: dict[str, Any] = Field(description="Field -> [old, new] for this version; the first version lists "
                                                "what was submitted.")


class ReportRead(BaseModel):
    id: int
    utility: str
    external_id: str
    category: str
    status: str
    customers_affected: int | None
    cause: str | None
    description: str | None
    started_at: datetime | None
    estimated_restore_at: datetime | None
    geometry: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    zones: dict[str, list[ZoneRef]] = Field(description="Matched zones per layer.")
    repaired: str | None = Field(default=None, description="What was repaired in the geometry, if anything.")
    located_by: str = Field(default="geometry", description="geometry, zip or address")
    alerts_changed: list[int] = Field(default_factory=list)


class ReportDetail(ReportRead):
    history: list[HistoryEntry] = Field(default_factory=list, description="Every version, oldest first.")


class ReportPage(BaseModel):
    items: list[ReportRead]
    cursor: str | None = Field(description="Opaque cursor for the next page; null on the last page.")
    next: str | None = Field(description="Link to the next page; null on the last page.")


class BatchItemError(BaseModel):
    kind: str = Field(description="validation, invalid_geometry, invalid_input, conflict, not_found, ...")
    detail: str | list[dict[str, Any]]


class BatchItemResult(BaseModel):
    index: int
    status: Literal["created", "existing", "rejected"]
    id: int | None = None
    error: BatchItemError | None = None


class BatchResult(BaseModel):
    created: int
    existing: int
    rejected: int
    results: list[BatchItemResult]


class FeatureCollectionIn(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[Any] = Field(max_length=1000)


FeedbackKindName = Literal["not_incident", "wrong_category", "wrong_place"]


class FeedbackCreate(BaseModel):
    """An operator's mark on a piece of evidence; `category` (the right one) comes with wrong_category only."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"kind": "wrong_category", "category": "flood", "note": "water, not fire"}]})

    kind: FeedbackKindName
    category: str | None = Field(default=None, max_length=32, pattern=r"^[a-z_]+$",
                                 description="The right category, for kind wrong_category: fire, flood, ...")
    note: str | None = Field(default=None, max_length=500, pattern=r"^[^\x00]*$")


class FeedbackRead(BaseModel):
    id: int
    observation_id: int
    kind: FeedbackKindName
    category: str | None
    note: str | None
    actor: str = Field(description="Who marked it, e.g. operator:olive")
    created_at: datetime
