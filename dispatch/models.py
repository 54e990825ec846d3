"""Tables for responders, their coverage, SMS deliveries and dispatch counters (migration 0006)."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base


class Responder(Base):
    __tablename__ = "responders"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    phone: Mapped[str] = mapped_column(String(16), unique=True)  # E.164
    opted_out: Mapped[bool] = mapped_column(default=False)
    opted_out_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    coverage: Mapped[list["CoverageRow"]] = relationship(
        back_populates="responder", cascade="all, delete-orphan", order_by="CoverageRow.id"
    )


class CoverageRow(Base):
    """A responder covers one zone of a layer (zone_id set) or the whole layer (zone_id NULL) at a tier."""

    __tablename__ = "coverage"

    id: Mapped[int] = mapped_column(primary_key=True)
    responder_id: Mapped[int] = mapped_column(ForeignKey("responders.id", ondelete="CASCADE"), index=True)
    layer: Mapped[str] = mapped_column(String(64), index=True)
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"))
    tier: Mapped[int] = mapped_column(default=1)
    on_call: Mapped[str | None]  # WeeklySchedule spec, e.g. "mon-fri 08:00-18:00"; NULL = always
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")

    responder: Mapped[Responder] = relationship(back_populates="coverage")


class ResponderAgency(Base):
    """A responder belongs to an agency (migration 0022): they are paged only for alerts one of their agencies
    covers (accounts.agencies), on top of their zone coverage."""

    __tablename__ = "responder_agencies"

    responder_id: Mapped[int] = mapped_column(ForeignKey("responders.id", ondelete="CASCADE"), primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)


class Delivery(Base):
    """One message to one responder on one channel for one outbox event."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "responder_id", "channel", name="uq_deliveries_event_responder_channel"),
        Index("ix_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_deliveries_sending", "claimed_at", postgresql_where=text("status = 'sending'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    responder_id: Mapped[int | None] = mapped_column(ForeignKey("responders.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16), default="sms")
    tier: Mapped[int] = mapped_column(default=1)
    body: Mapped[str]
    # pending -> sending (claimed, attempt counted) -> sent (accepted by the provider) -> delivered |
    # undelivered; or back to pending (retry), failed, cancelled, or unknown (a claim never recorded).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    provider_sid: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None]
    claimed_at: Mapped[datetime | None]  # when the latest attempt was claimed (migration 0014)
    interrupted_at: Mapped[datetime | None]  # the first claim never recorded: retries ask the provider first
    next_attempt_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DispatchCounter(Base):
    """A monotonic counter shared by every dispatcher process; /metrics reads it."""

    __tablename__ = "dispatch_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
