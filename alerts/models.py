"""Tables for signals, alerts, their evidence and history, and the outbox."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class Signal(Base):
    """An observation as the rules see it: one row per zone it matched, with a weight. No foreign keys
    (migration 0010): triggers delete signals with their observation or zone."""

    __tablename__ = "signals"
    __table_args__ = (Index("ix_signals_zone_category_time", "zone_id", "category", "observed_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    observation_id: Mapped[int] = mapped_column(BigInteger, index=True)
    zone_id: Mapped[int]
    source: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float]
    weight: Mapped[float]
    author_key: Mapped[str | None]
    observed_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


class SignalLayer(Base):
    """A zone layer whose zones public posts write signals in (migration 0012; ingest.posts.signal_layers)."""

    __tablename__ = "signal_layers"

    layer_id: Mapped[int] = mapped_column(ForeignKey("zone_layers.id", ondelete="CASCADE"), primary_key=True)
    added_at: Mapped[datetime]


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        # One incident, one alert: one unresolved alert per (zone, category), whichever rules fired (migration
        # 0017; it was per (rule, zone)). The database, not the code, guarantees it.
        Index("uq_alerts_open_zone_category", "zone_id", "category", unique=True,
              postgresql_where=text("state <> 'resolved'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rule: Mapped[str] = mapped_column(String(64))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"))
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    ack_code: Mapped[str] = mapped_column(String(8), unique=True)
    evidence_count: Mapped[int]
    distinct_authors: Mapped[int]
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_evidence_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None]
    resolved_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    # Lifecycle (migration 0004): hysteresis, cooldown, notification and escalation bookkeeping.
    quiet_since: Mapped[datetime | None]
    cooldown_until: Mapped[datetime | None]
    last_notified_at: Mapped[datetime | None]
    escalation_ticks: Mapped[int] = mapped_column(server_default=text("0"), default=0)
    resolved_by: Mapped[str | None]


class AlertRule(Base):
    """A rule that fired for an alert (migration 0017): `alerts.rule` is the one leading it (the most severe)."""

    __tablename__ = "alert_rules"

    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    zone_id: Mapped[int]
    severity: Mapped[str] = mapped_column(String(16))
    first_fired_at: Mapped[datetime]
    last_fired_at: Mapped[datetime]
    cooldown_s: Mapped[float] = mapped_column(server_default=text("0"), default=0.0)
    cooldown_until: Mapped[datetime | None]


class AlertEvidence(Base):
    __tablename__ = "alert_evidence"

    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    observation_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("observations.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[datetime]


class AlertHistory(Base):
    __tablename__ = "alert_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str]
    reason: Mapped[str]
    agency: Mapped[str | None] = mapped_column(String(256))  # the acting operator's agencies (migration 0022)
    # The writing transaction (migration 0004): an alert change and its outbox event share it.
    txid: Mapped[int] = mapped_column(BigInteger, server_default=text("txid_current()"))


class OutboxEvent(Base):
    """An event to publish; written in the same transaction as the change it reports."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_pending", "next_attempt_at", postgresql_where=text("published_at IS NULL AND parked_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True, default=uuid.uuid4)
    alert_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("alerts.id"))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    published_at: Mapped[datetime | None]
    parked_at: Mapped[datetime | None]
    last_error: Mapped[str | None]
    txid: Mapped[int] = mapped_column(BigInteger, server_default=text("txid_current()"))


class AlertNotification(Base):
    """One notification decided for an alert (the notify log); written with its outbox event."""

    __tablename__ = "alert_notifications"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    txid: Mapped[int] = mapped_column(BigInteger, server_default=text("txid_current()"))


class Silence(Base):
    """Mutes notifications for matching alerts between starts_at and ends_at; alerts are still tracked."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    matchers: Mapped[dict[str, str]] = mapped_column(JSONB)  # any of layer, zone, category, rule
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_by: Mapped[str]
    comment: Mapped[str] = mapped_column(default="")
    created_at: Mapped[datetime]
    expired_at: Mapped[datetime | None]
    expired_by: Mapped[str | None]


class ZoneBaseline(Base):
    """Exponentially weighted hourly signal rate per (zone, category), for spike rules."""

    __tablename__ = "zone_baselines"

    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    rate_per_h: Mapped[float]
    through_hour: Mapped[datetime]
