"""API schemas for the control room: alerts, their evidence and history, silences, sessions."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["viewer", "operator", "admin"]


def no_nul(value: str | None, field: str) -> str | None:
    # PostgreSQL text cannot hold NUL; refuse it here as a 422 rather than fail in the database.
    if value is not None and "\x00" in value:
        raise ValueError(f"{field} {value!r} contains a NUL character")
    return value


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{field} {value.isoformat()} has no timezone offset; send e.g. {value.isoformat()}Z")
    return value


class ZoneRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    layer: str
    code: str
    name: str


class RuleFiredRead(BaseModel):
    """A rule that fired for the alert (one incident, one alert: every rule that saw it is listed)."""

    model_config = ConfigDict(from_attributes=True)

    rule: str
    severity: str = Field(description="The severity it last raised")
    first_fired_at: datetime
    last_fired_at: datetime


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: int
    rule: str
    category: str
    severity: str
    state: str
    ack_code: str
    evidence_count: int
    distinct_authors: int
    opened_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    expires_at: datetime | None = None
    silenced: bool | None = Field(default=None, description="Whether a silence mutes its notifications now")
    zone: ZoneRef
    rules: list[RuleFiredRead] = Field(default_factory=list, description=(
        "Every rule that fired for this incident, in the order they did; `rule` is the one leading it"))
    links: dict[str, str] = Field(default_factory=dict, description="`self` (JSON) and `cap` (CAP 1.2 XML)")


class EvidenceRead(BaseModel):
    """One observation behind an alert; further fields from the engine pass through."""

    model_config = ConfigDict(from_attributes=True, extra="allow")

    observation_id: int
    source: str | None = None
    category: str | None = None
    observed_at: datetime | None = None
    weight: float | None = Field(default=None, description="Share of the observation's location in the zone")
    text: str | None = Field(default=None, description="Post text or utility report description")
    author: str | None = Field(default=None, description="Prefix of the author hash")


class HistoryRead(BaseModel):
    """One state or severity change: when, who (`rule:NAME` or `operator:NAME`) and why."""

    model_config = ConfigDict(from_attributes=True, extra="allow")

    at: datetime
    from_state: str | None = None
    to_state: str
    severity: str | None = None
    actor: str
    reason: str | None = None
    agency: str | None = Field(default=None, description="The acting operator's agencies, comma-separated "
                                                         "(null for rules, the sweeper and SMS replies)")


class NotificationRead(BaseModel):
    """One notification sent (or decided) for the alert, with its outbox event id."""

    model_config = ConfigDict(from_attributes=True, extra="allow")

    at: datetime
    reason: str
    kind: str
    state: str | None = None
    severity: str | None = None
    event_id: str | None = None


class AlertDetailRead(AlertRead):
    evidence: list[EvidenceRead] = Field(default_factory=list)
    evidence_by_source: dict[str, int] = Field(default_factory=dict)
    history: list[HistoryRead] = Field(default_factory=list)
    notifications: list[NotificationRead] = Field(default_factory=list)


class NoteIn(BaseModel):
    """Body of acknowledge and resolve."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=1000, description="Why; stored in the alert's history")

    @field_validator("note")
    @classmethod
    def _note_text(cls, v: str | None) -> str | None:
        return no_nul(v, "note")


class SilenceMatchers(BaseModel):
    """Which alerts a silence mutes; every given field must match (any subset, at least one)."""

    model_config = ConfigDict(extra="forbid")

    layer: str | None = Field(default=None, min_length=1, max_length=64)
    zone: str | None = Field(default=None, min_length=1, max_length=64, description="Zone code")
    category: str | None = Field(default=None, min_length=1, max_length=32)
    rule: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("layer", "zone", "category", "rule")
    @classmethod
    def _matcher_text(cls, v: str | None, info) -> str | None:
        return no_nul(v, info.field_name)

    @model_validator(mode="after")
    def _not_empty(self) -> "SilenceMatchers":
        if not self.as_dict():
            raise ValueError("matchers {} match every alert; give at least one of layer, zone, category, rule")
        return self

    def as_dict(self) -> dict[str, str]:
        return self.model_dump(exclude_none=True)


class SilenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: SilenceMatchers
    starts_at: datetime | None = Field(default=None, description="Default: now")
    ends_at: datetime
    comment: str = Field(min_length=1, max_length=1000, description="Why the silence exists")

    @field_validator("comment")
    @classmethod
    def _comment_text(cls, v: str) -> str:
        return no_nul(v, "comment")

    @field_validator("starts_at")
    @classmethod
    def _starts_aware(cls, v: datetime | None) -> datetime | None:
        return _aware(v, "starts_at")

    @field_validator("ends_at")
    @classmethod
    def _ends_aware(cls, v: datetime) -> datetime:
        return _aware(v, "ends_at")

    @model_validator(mode="after")
    def _ordered(self) -> "SilenceCreate":
        if self.starts_at is not None and self.ends_at <= self.starts_at:
            raise ValueError(f"ends_at {self.ends_at.isoformat()} is not after starts_at {self.starts_at.isoformat()}")
        return self


class SilenceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: int
    matchers: dict[str, Any]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime | None = None
    expired_at: datetime | None = None
    expired_by: str | None = None


class OperatorRead(BaseModel):
    name: str
    role: Role
    agencies: list[str] = Field(default_factory=list, description="The operator's agencies (none: sees all "
                                                                 "while the site defines none)")
