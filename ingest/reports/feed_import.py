"""Import an outage-feed snapshot for one utility: create new outages, update changed ones, and mark
restored those the previous import of the same feed saw and this one does not.

Every outage goes through the same service as the /v1/reports API (``reports.create_report`` and
``report_updates.update_report``). Outages run in chunks, each in a savepoint; a chunk in which one
outage is refused is rolled back and redone outage by outage, so one bad outage does not sink the rest.
The caller (the CLI) commits.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.rules import Rule
from db import locks
from db.errors import Conflict, DomainError, NotFound
from ingest.reports import updates as report_updates, service as reports
from ingest.reports.feeds import FeedItem, ParsedFeed, Rejection
from accounts.keys import Caller
from ingest.models import FeedImport, UtilityReport
from accounts.models import Utility
from ingest.reports.schemas import ReportCreate, ReportUpdate

log = logging.getLogger(__name__)

# Statuses only move forward on import: a feed that flips crew states back and forth must not
# walk a report backwards through its lifecycle.
STATUS_RANK = {"reported": 0, "investigating": 1, "restoring": 2, "restored": 3, "cancelled": 3}
TERMINAL = ("restored", "cancelled")
CHUNK = 100
_COMPARED = ("customers_affected", "cause", "started_at", "estimated_restore_at", "description")


@dataclass(frozen=True)
class Limits:
    """What the report service checks a location against, as the API applies it."""

    rules: Sequence[Rule]
    jurisdiction_bbox: tuple[float, float, float, float]
    max_vertices: int
    max_area_km2: float

    def kwargs(self) -> dict[str, Any]:
        return {"rules": self.rules, "jurisdiction_bbox": self.jurisdiction_bbox,
                "max_vertices": self.max_vertices, "max_area_km2": self.max_area_km2}


@dataclass
class ImportResult:
    created: int = 0
    unchanged: int = 0
    updated: int = 0
    restored: int = 0
    skipped: int = 0  # already restored in the feed and never seen before: no report is opened for it
    rejected: list[Rejection] = field(default_factory=list)
    restore_failures: list[tuple[str, str]] = field(default_factory=list)
    restore_checked: bool = True  # False when the snapshot may be cut off (PG&E's page cap)

    def counts(self) -> dict[str, int]:
        return {"created": self.created, "unchanged": self.unchanged, "updated": self.updated,
                "restored": self.restored, "skipped": self.skipped, "rejected": len(self.rejected)}


def feed_caller(session: Session, *, utility_name: str) -> Caller:
    """The utility the feed belongs to, acting without an API key (key_id 0 marks the importer)."""
    utility = session.scalar(select(Utility).where(Utility.name == utility_name))
    if utility is None:
        raise NotFound(f"utility {utility_name!r} does not exist; add it with `tocsin utilities add`",
                       field="utility")
    return Caller(key_id=0, role="utility", utility_id=utility.id, utility_name=utility.name,
                  has_territory=utility.territory is not None)


def _stored(session: Session, utility_id: int, external_ids: Sequence[str]) -> dict[str, tuple[UtilityReport, Any]]:
    rows = session.execute(
        select(UtilityReport, func.ST_AsGeoJSON(UtilityReport.footprint))
        .where(UtilityReport.utility_id == utility_id, UtilityReport.external_id.in_(list(external_ids)))
    ).all()
    return {r.external_id: (r, shapely.from_geojson(g)) for r, g in rows}


def changes(report: UtilityReport, footprint: Any, body: ReportCreate) -> dict[str, Any]:
    """A merge patch (ReportUpdate shape) with what the feed says differently; empty when nothing does."""
    props = body.properties
    patch: dict[str, Any] = {}
    for name in _COMPARED:
        new = getattr(props, name)
        if new != getattr(report, name):
            patch[name] = new
    if STATUS_RANK[props.status] > STATUS_RANK[report.status]:
        patch["status"] = props.status
    out: dict[str, Any] = {"properties": patch} if patch else {}
    geometry = shapely.geometry.shape(body.geometry)
    if not shapely.equals_exact(geometry, footprint, tolerance=1e-9):
        out["geometry"] = body.geometry
    return out


def _update(session: Session, *, caller: Caller, report: UtilityReport, patch: dict[str, Any],
            limits: Limits, now: datetime) -> None:
    report_updates.update_report(session, caller=caller, report_id=report.id,
                                 patch=ReportUpdate.model_validate(patch), if_match=None, now=now, **limits.kwargs())


def _one(session: Session, *, caller: Caller, item: FeedItem, stored: tuple[UtilityReport, Any] | None,
         limits: Limits, now: datetime) -> str:
    status = item.body.properties.status
    if stored is None:
        if status in TERMINAL:
            return "skipped"
        result = reports.create_report(session, caller=caller, body=item.body, idempotency_key=None, now=now,
                                       **limits.kwargs())
        return "created" if result.created else "unchanged"
    report, footprint = stored
    if report.status in TERMINAL:
        if status in TERMINAL:
            return "unchanged"
        raise Conflict(f"report {report.id} for outage {item.external_id!r} is {report.status}; "
                       "a closed report cannot reopen: the utility should send the outage under a new id")
    patch = changes(report, footprint, item.body)
    if not patch:
        return "unchanged"
    _update(session, caller=caller, report=report, patch=patch, limits=limits, now=now)
    return "updated"


def _isolated(session: Session, *, caller: Caller, item: FeedItem, stored: tuple[UtilityReport, Any] | None,
              limits: Limits, now: datetime) -> str | Rejection:
    try:
        with session.begin_nested():
            return _one(session, caller=caller, item=item, stored=stored, limits=limits, now=now)
    except DomainError as exc:
        return Rejection(item.index, item.external_id, exc.message)


def previous_ids(session: Session, *, utility_id: int, feed: str) -> list[str]:
    last = session.scalar(select(FeedImport).where(FeedImport.utility_id == utility_id, FeedImport.feed == feed)
                          .order_by(FeedImport.id.desc()).limit(1))
    return list(last.external_ids) if last is not None else []


def import_feed(
    session: Session,
    *,
    caller: Caller,
    feed: str,
    parsed: ParsedFeed,
    rules: Sequence[Rule],
    jurisdiction_bbox: tuple[float, float, float, float],
    now: datetime,
    source: str = "",
    max_vertices: int = reports.DEFAULT_MAX_VERTICES,
    max_area_km2: float = reports.DEFAULT_MAX_AREA_KM2,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Apply one snapshot of `feed` for the caller's utility; `progress` hears how many outages each chunk
    applied."""
    assert caller.utility_id is not None
    # Two imports of the same feed at once would each think the other's outages vanished.
    locks.xact_lock(session, f"tocsin.feed_import:{caller.utility_id}:{feed}")
    limits = Limits(rules=rules, jurisdiction_bbox=jurisdiction_bbox, max_vertices=max_vertices,
                    max_area_km2=max_area_km2)
    result = ImportResult(rejected=list(parsed.rejected))
    previous = previous_ids(session, utility_id=caller.utility_id, feed=feed)
    stored = _stored(session, caller.utility_id, [i.external_id for i in parsed.items])
    for start in range(0, len(parsed.items), CHUNK):
        chunk = parsed.items[start:start + CHUNK]
        try:
            # One savepoint per chunk: a savepoint per outage would double the round trips.
            with session.begin_nested():
                outcomes = [_one(session, caller=caller, item=item, stored=stored.get(item.external_id),
                                 limits=limits, now=now) for item in chunk]
        except DomainError:
            outcomes = None
        if outcomes is None:  # an outage in this chunk is refused: redo it one by one, so only that one is
            outcomes = [_isolated(session, caller=caller, item=item, stored=stored.get(item.external_id),
                                  limits=limits, now=now) for item in chunk]
        for outcome in outcomes:
            if isinstance(outcome, Rejection):
                result.rejected.append(outcome)
            else:
                setattr(result, outcome, getattr(result, outcome) + 1)
        if progress:
            progress(len(chunk))

    # Rejected rows are still on the map: only ids absent from the snapshot count as gone.
    seen = [i.external_id for i in parsed.items] + [r.external_id for r in parsed.rejected if r.external_id]
    seen_set = set(seen)
    gone = [ext for ext in previous if ext not in seen_set]
    result.restore_checked = parsed.complete
    if parsed.complete and gone:
        _restore(session, caller=caller, gone=gone, result=result, limits=limits, now=now)
    if not parsed.complete:
        # Carry the previous ids forward so the next complete snapshot can still restore them.
        seen += [ext for ext in previous if ext not in seen_set]
    session.add(FeedImport(utility_id=caller.utility_id, feed=feed, source=source, imported_at=now,
                           external_ids=seen, counts=result.counts()))
    session.flush()
    # Debug, not info: the CLI prints the same counts as its summary, and printed them twice.
    log.debug("feed %s for utility %s: %s", feed, caller.utility_id, result.counts())
    return result


def _restore(session: Session, *, caller: Caller, gone: list[str], result: ImportResult, limits: Limits,
             now: datetime) -> None:
    stored = _stored(session, caller.utility_id, gone)
    for ext in gone:
        if ext not in stored:
            continue  # never created (it was rejected, or already restored when first seen)
        report, _ = stored[ext]
        if report.status in TERMINAL:
            continue
        try:
            with session.begin_nested():
                _update(session, caller=caller, report=report, patch={"properties": {"status": "restored"}},
                        limits=limits, now=now)
        except DomainError as exc:
            result.restore_failures.append((ext, exc.message))
            continue
        result.restored += 1
