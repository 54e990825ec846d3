"""Silences: operators mute notifications for matching alerts for a while; the alerts are still tracked."""

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.errors import UnknownSilence
from alerts.models import Silence
from alerts.notify import MATCHER_KEYS, SilenceView
from db.errors import InvalidInput

log = logging.getLogger(__name__)

MAX_MATCHER_LEN = 64


def validate_matchers(matchers: Mapping[str, object]) -> dict[str, str]:
    """Matchers as {key: value} over layer, zone, category and rule; at least one, all non-empty strings."""
    if not isinstance(matchers, Mapping) or not matchers:
        raise InvalidInput(f"silence matchers {matchers!r} must name at least one of {', '.join(MATCHER_KEYS)}",
                           field="matchers")
    out: dict[str, str] = {}
    for key, value in matchers.items():
        if key not in MATCHER_KEYS:
            raise InvalidInput(f"silence matcher {key!r} is not one of {', '.join(MATCHER_KEYS)}", field="matchers")
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_MATCHER_LEN:
            raise InvalidInput(f"silence matcher {key}={value!r} must be a non-empty string of at most "
                               f"{MAX_MATCHER_LEN} characters", field="matchers")
        out[key] = value.strip()
    return out


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{name} {value.isoformat()} has no time zone; send UTC, e.g. 2026-11-25T22:00:00Z",
                           field=name)


def view(silence: Silence) -> SilenceView:
    return SilenceView(matchers=dict(silence.matchers), starts_at=silence.starts_at, ends_at=silence.ends_at)


def create_silence(session: Session, *, matchers: Mapping[str, object], starts_at: datetime, ends_at: datetime,
                   created_by: str, comment: str | None, now: datetime) -> Silence:
    """Store a silence; it mutes matching alerts from starts_at until ends_at."""
    clean = validate_matchers(matchers)
    _require_aware("starts_at", starts_at)
    _require_aware("ends_at", ends_at)
    if ends_at <= starts_at:
        raise InvalidInput(f"ends_at {ends_at.isoformat()} must be after starts_at {starts_at.isoformat()}",
                           field="ends_at")
    if ends_at <= now:
        raise InvalidInput(f"ends_at {ends_at.isoformat()} is already in the past", field="ends_at")
    silence = Silence(matchers=clean, starts_at=starts_at, ends_at=ends_at, created_by=created_by,
                      comment=comment or "", created_at=now)
    session.add(silence)
    session.flush()
    log.info("silence %s created by %s matchers=%s", silence.id, created_by, sorted(clean))
    return silence


def list_silences(session: Session, *, now: datetime, include_expired: bool = False) -> list[Silence]:
    """Current and future silences (and past ones when asked), soonest ending first."""
    query = select(Silence).order_by(Silence.ends_at, Silence.id)
    if not include_expired:
        query = query.where(Silence.ends_at > now)
    return list(session.scalars(query))


def expire_silence(session: Session, *, silence_id: int, actor: str, now: datetime) -> Silence:
    """End a silence now; expiring one that already ended changes nothing."""
    silence = session.get(Silence, silence_id, with_for_update=True)
    if silence is None:
        raise UnknownSilence(f"no silence with id {silence_id}", silence_id=silence_id)
    if silence.ends_at > now:
        # A future silence cancelled before it began keeps ends_at > starts_at by starting a tick earlier.
        silence.starts_at = min(silence.starts_at, now - timedelta(microseconds=1))
        silence.ends_at = now
        silence.expired_at = now
        silence.expired_by = actor
        log.info("silence %s expired by %s", silence.id, actor)
    return silence


def active_silences(session: Session, *, now: datetime) -> list[SilenceView]:
    """Silences in force at `now`, as pure views for notify.decide."""
    rows = session.scalars(select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now))
    return [view(s) for s in rows]
