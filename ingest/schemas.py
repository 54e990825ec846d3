"""API schemas for utility reports (GeoJSON Features); tables live in models.py."""

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from geo.errors import InvalidGeometry
from geo.geojson import parse_geometry

REPORT_CATEGORIES = ("power_outage", "gas_leak", "water_main", "other")
REPORT_STATUSES = ("reported", "investigating", "restoring", "restored", "cancelled")


class ReportProperties(BaseModel):
    model_config = ConfigDict(extra="allow")

    external_id: str = Field(min_length=1, max_length=200, description="Unique per utility; retries reuse it.")
    category: Literal["power_outage", "gas_leak", "water_main", "other"]
    status: Literal["reported", "investigating", "restoring", "restored", "cancelled"] = "reported"
    customers_affected: int | None = Field(default=None, ge=0, le=10_000_000)
    cause: str | None = Field(default=None, max_length=500)
    started_at: AwareDatetime | None = None
    estimated_restore_at: AwareDatetime | None = None
    description: str | None = Field(default=None, max_length=5000)


class ReportCreate(BaseModel):
    """A GeoJSON Feature (RFC 7946: longitude first) describing one outage or hazard."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [-73.9196, 40.7644]},
                    "properties": {
                        "external_id": "CONED-2026-000123",
                        "category": "gas_leak",
                        "status": "reported",
                        "customers_affected": 40,
                        "description": "Gas odor reported at street level",
                    },
                }
            ]
        }
    )

    type: Literal["Feature"]
    geometry: dict[str, Any]
    properties: ReportProperties

    @field_validator("geometry")
    @classmethod
    def _geometry(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            parse_geometry(v)
        except InvalidGeometry as exc:
            raise ValueError(exc.reason) from None
        return v


class ZoneRef(BaseModel):
    code: str
    name: str
    weight: float


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
    alerts_changed: list[int] = Field(default_factory=list)
