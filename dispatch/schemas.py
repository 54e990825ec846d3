"""API shapes for responders, their coverage, deliveries and the outbox (the tables are in models.py)."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from db.input_guard import SafeStr

# SafeStr: NUL or a lone surrogate is a 422 naming the field, not a DataError from PostgreSQL.
Name = Annotated[SafeStr, Field(min_length=1, max_length=200)]
Phone = Annotated[SafeStr, Field(min_length=3, max_length=32, description="Any dialable form; stored as E.164")]


class CoverageSpec(BaseModel):
    """What a responder covers: one zone (`zone` = its code) or a whole layer (`zone` omitted)."""

    model_config = ConfigDict(extra="forbid")

    layer: Annotated[SafeStr, Field(min_length=1, max_length=64)]
    zone: Annotated[SafeStr | None, Field(max_length=64)] = None
    tier: Annotated[int, Field(ge=1, le=99)] = 1
    on_call: Annotated[
        SafeStr | None, Field(max_length=500, description="Weekly schedule, e.g. 'mon-fri 08:00-18:00; "
                                                         "sat 22:00-06:00'; omitted = always on call")
    ] = None
    timezone: Annotated[SafeStr | None, Field(
        max_length=64, description="IANA time zone of `on_call`; omitted: the active place's (tocsin place init), "
                                   "America/New_York without one")] = None


class ResponderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    phone: Phone
    coverage: list[CoverageSpec] = Field(default_factory=list, max_length=500)


class ResponderUpdate(BaseModel):
    """Fields to change; `coverage`, when given, replaces the responder's coverage."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    phone: Phone | None = None
    opted_out: bool | None = None
    coverage: list[CoverageSpec] | None = Field(default=None, max_length=500)


class ResponderRead(BaseModel):
    id: int
    name: str
    phone: str
    opted_out: bool
    coverage: list[CoverageSpec]
    created_at: datetime
    updated_at: datetime


class OutboxEventRead(BaseModel):
    id: int
    event_id: str
    alert_id: int | None
    kind: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    published_at: datetime | None
    parked_at: datetime | None


class DeliveryRead(BaseModel):
    """One message to one responder for one of the alert's events."""

    id: int
    responder: str | None = Field(description="The responder's name; null once the responder was deleted")
    channel: str = Field(description="sms")
    tier: int = Field(description="Escalation tier the responder was reached at")
    status: str = Field(description="pending, sending, sent, delivered, undelivered, failed, cancelled or unknown")
    attempts: int
    last_error: str | None = None
    created_at: datetime = Field(description="When the delivery was queued")
    updated_at: datetime = Field(description="Its latest status change")
    event_kind: str | None = Field(default=None, description="The alert event it told of (opened, escalated, ...)")
    acknowledged: bool = Field(description="Whether this responder acknowledged the alert (SMS reply ACK <code>)")
