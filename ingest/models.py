"""Tables for what comes in: observations, utilities, their keys and reports."""

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class Observation(Base):
    """One piece of evidence: a public post or a utility report version."""

    __tablename__ = "observations"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_observations_source_external_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))  # post | utility_report
    external_id: Mapped[str]
    author_hash: Mapped[str | None]
    text: Mapped[str | None]
    category: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float]
    observed_at: Mapped[datetime]
    received_at: Mapped[datetime]
    geom: Mapped[Any] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False))
    uncertainty_m: Mapped[float | None]  # NULL for a post that could not be located
    geotag_method: Mapped[str] = mapped_column(String(16))
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Hash of (author key, normalised text) for posts: finds reposts within the dedup window (migration 0003).
    text_fingerprint: Mapped[str | None] = mapped_column(String(32))
    # A counted post's zone weights in every layer, packed (ingest.posts.zones.WEIGHTS; migration 0012).
    zone_weights: Mapped[bytes | None]


class ObservationZone(Base):
    """A located observation's zone and weight. No foreign keys (migration 0010): a batch writes tens of
    thousands of these, and triggers delete them with their observation or zone."""

    __tablename__ = "observation_zones"

    observation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    zone_id: Mapped[int] = mapped_column(primary_key=True)
    weight: Mapped[float]


class UtilityReport(Base):
    __tablename__ = "utility_reports"
    __table_args__ = (UniqueConstraint("utility_id", "external_id", name="uq_utility_reports_utility_external"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    observation_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("observations.id"), unique=True)
    utility_id: Mapped[int] = mapped_column(ForeignKey("utilities.id"))
    external_id: Mapped[str]
    category: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    customers_affected: Mapped[int | None]
    cause: Mapped[str | None]
    description: Mapped[str | None]
    started_at: Mapped[datetime | None]
    estimated_restore_at: Mapped[datetime | None]
    footprint: Mapped[Any] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False))
    body_hash: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class UtilityReportHistory(Base):
    """One version of a report: what changed and the observation the rules saw for it."""

    __tablename__ = "utility_report_history"
    __table_args__ = (UniqueConstraint("report_id", "version", name="uq_utility_report_history_report_version"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    report_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("utility_reports.id", ondelete="CASCADE"))
    version: Mapped[int]
    observation_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("observations.id"))
    status: Mapped[str] = mapped_column(String(16))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    key_id: Mapped[int | None]
    at: Mapped[datetime]


class FeedImport(Base):
    """One import of an outage-feed snapshot: the outage ids it saw, and what it did."""

    __tablename__ = "feed_imports"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    utility_id: Mapped[int] = mapped_column(ForeignKey("utilities.id", ondelete="CASCADE"))
    feed: Mapped[str] = mapped_column(String(32))  # pge | az
    source: Mapped[str] = mapped_column(default="")
    imported_at: Mapped[datetime]
    external_ids: Mapped[list[str]] = mapped_column(ARRAY(String))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class ConnectorCursor(Base):
    """Where a live connector resumes: Jetstream's `time_us` of the last event it committed (migration 0008)."""

    __tablename__ = "connector_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ObservationFeedback(Base):
    """An operator's mark on a piece of evidence (migration 0019; ingest.posts.feedback): not an incident, wrong
    category (with the right one) or wrong place."""

    __tablename__ = "observation_feedback"
    __table_args__ = (Index("ix_observation_feedback_observation", "observation_id"),
                      Index("ix_observation_feedback_created_at", "created_at"))

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    observation_id: Mapped[int] = mapped_column(ForeignKey("observations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # ingest.posts.feedback.FeedbackKind
    category: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None]
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
