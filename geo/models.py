"""Zone layers and zones: the service-area polygons alerts are counted in."""

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import ARRAY, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base


class ZoneLayer(Base):
    __tablename__ = "zone_layers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    zones: Mapped[list["Zone"]] = relationship(back_populates="layer")


class Zone(Base):
    __tablename__ = "zones"
    __table_args__ = (UniqueConstraint("layer_id", "code", name="uq_zones_layer_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    layer_id: Mapped[int] = mapped_column(ForeignKey("zone_layers.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str]
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False))
    area_m2: Mapped[float]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    layer: Mapped[ZoneLayer] = relationship(back_populates="zones")


class GazetteerEntryRow(Base):
    """A named place for text geotagging (migration 0003); geo.gazetteer.GazetteerEntry is its pure twin."""

    __tablename__ = "gazetteer_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    normalised_name: Mapped[str] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16))
    alternates: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    geom: Mapped[Any] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False))
    priority: Mapped[float] = mapped_column(default=0.0)
    source: Mapped[str] = mapped_column(index=True)
    code: Mapped[str | None]
    region: Mapped[str | None] = mapped_column(String(16))
    radius_m: Mapped[float | None]
    place: Mapped[str | None] = mapped_column(String(64), index=True)  # None: every place's (migration 0023)
    loaded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Place(Base):
    """The city this Tocsin serves (migration 0023; geo.places): its boundary is the jurisdiction."""

    __tablename__ = "places"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    boundary: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False))
    timezone: Mapped[str] = mapped_column(String(64))
    languages: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    region: Mapped[str | None] = mapped_column(String(16))
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)  # zone layer -> context level
    active: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
