"""Retention: delete what is older than its keep period, never what an unresolved alert points to.

`tocsin purge` and the worker's purge role call `purge`. Each step deletes at most `BATCH` rows of its table
per transaction (with their dependent rows), so a year of backlog is never one transaction; rows are claimed
with SKIP LOCKED, so two purges at once share the work. Per setting:

- posts (by received_at): public posts' observations, with their zone links and signals (a trigger),
  operators' feedback on them and their evidence rows in resolved alerts;
- reports (by updated_at): utility reports not changed since, their history, and every version's observation;
- alerts (by resolved_at): resolved alerts with their evidence rows, history, notification log, rules,
  deliveries and outbox events. One with an event not yet published or planned, or an SMS not yet sent,
  stays until it is (an event is never deleted before it is sent);
- deliveries: SMS deliveries in a final state (by updated_at) and outbox events published or parked (by
  then), of resolved alerts;
- audit: silences that ended, and outage-feed imports but the latest of each feed (the next import
  compares against it).

Kept whatever their age: unresolved alerts and all they point to (history, deliveries, events), the
observations that are their evidence, and the reports those observations are versions of.

Functions given a session never commit; `purge` commits each batch (or, dry, rolls everything back).
Deletions go through this module's SQL rather than each package's models: the purge spans every package.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from db.outage import Outage, run_passes

if TYPE_CHECKING:
    from tocsin.settings import Settings

log = logging.getLogger(__name__)

BATCH = 5000  # rows of a step's table per transaction
CHECK_S = 5.0  # the purge role's loop: how often it beats and checks whether a purge is due
POST_SOURCE = "post"  # observations.source of public posts (ingest.posts.store); reports' are "utility_report"

# Observations an unresolved alert points to: never purged, nor the reports they belong to.
_HELD = """SELECT e.observation_id FROM alert_evidence e JOIN alerts a ON a.id = e.alert_id
           WHERE a.state <> 'resolved'"""


@dataclass(frozen=True)
class Policy:
    """How long each kind of row is kept, in days."""

    posts_days: float
    reports_days: float
    alerts_days: float
    deliveries_days: float
    audit_days: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(posts_days=settings.post_retention_days, reports_days=settings.report_retention_days,
                   alerts_days=settings.alert_retention_days, deliveries_days=settings.delivery_retention_days,
                   audit_days=settings.audit_retention_days)

    def __post_init__(self) -> None:
        for name, days in vars(self).items():
            if not days > 0:
                raise ValueError(f"{name} {days!r} must be a positive number of days")


@dataclass
class PurgeCounts:
    """Rows deleted per (setting, table), in the order they were first deleted."""

    rows: dict[tuple[str, str], int] = field(default_factory=dict)
    complete: bool = True  # False when stopped before every step had finished

    def add(self, kind: str, counts: dict[str, int]) -> None:
        for table, n in counts.items():
            self.rows[(kind, table)] = self.rows.get((kind, table), 0) + n

    def table(self, name: str) -> int:
        """Rows deleted from one table, over every setting."""
        return sum(n for (_, table), n in self.rows.items() if table == name)

    def lines(self) -> list[str]:
        width = max((len(t) for _, t in self.rows), default=0)
        return [f"{kind:<10} {table:<{width}} {n:>9}" for (kind, table), n in self.rows.items()]


def _ids(session: Session, sql: str, **params) -> list[int]:
    return list(session.execute(text(sql), params).scalars())


def _delete(session: Session, table: str, column: str, ids: list[int]) -> int:
    if not ids:
        return 0
    return int(session.execute(text(f"DELETE FROM {table} WHERE {column} = ANY(:ids)"), {"ids": ids}).rowcount)


def _delete_observations(session: Session, ids: list[int]) -> dict[str, int]:
    """Observations (their zone links and signals go by trigger) and the rows that refer to them."""
    evidence = _delete(session, "alert_evidence", "observation_id", ids)  # of resolved alerts only
    feedback = _delete(session, "observation_feedback", "observation_id", ids)
    return {"observations": _delete(session, "observations", "id", ids), "alert_evidence": evidence,
            "observation_feedback": feedback}


def _posts(session: Session, cutoff: datetime, limit: int) -> dict[str, int]:
    ids = _ids(session, f"""
        SELECT o.id FROM observations o
        WHERE o.source = :source AND o.received_at < :cutoff AND o.id NOT IN ({_HELD})
        ORDER BY o.received_at LIMIT :limit FOR UPDATE OF o SKIP LOCKED""",
               source=POST_SOURCE, cutoff=cutoff, limit=limit)
    return _delete_observations(session, ids)


def _reports(session: Session, cutoff: datetime, limit: int) -> dict[str, int]:
    ids = _ids(session, f"""
        WITH held AS MATERIALIZED ({_HELD})
        SELECT r.id FROM utility_reports r
        WHERE r.updated_at < :cutoff AND r.observation_id NOT IN (SELECT observation_id FROM held)
          AND NOT EXISTS (SELECT FROM utility_report_history h WHERE h.report_id = r.id
                          AND h.observation_id IN (SELECT observation_id FROM held))
        ORDER BY r.id LIMIT :limit FOR UPDATE OF r SKIP LOCKED""", cutoff=cutoff, limit=limit)
    versions = _ids(session, """
        SELECT observation_id FROM utility_report_history WHERE report_id = ANY(:ids)
        UNION SELECT observation_id FROM utility_reports WHERE id = ANY(:ids)""", ids=ids) if ids else []
    history = _delete(session, "utility_report_history", "report_id", ids)
    reports = _delete(session, "utility_reports", "id", ids)  # before their observations, which they refer to
    return {"utility_reports": reports, "utility_report_history": history, **_delete_observations(session, versions)}


def _alerts(session: Session, cutoff: datetime, limit: int) -> dict[str, int]:
    ids = _ids(session, """
        SELECT a.id FROM alerts a
        WHERE a.state = 'resolved' AND a.resolved_at < :cutoff
          AND NOT EXISTS (SELECT FROM outbox_events o WHERE o.alert_id = a.id
                          AND ((o.published_at IS NULL AND o.parked_at IS NULL)
                               OR EXISTS (SELECT FROM sms_fanout_queue q WHERE q.outbox_id = o.id)))
          AND NOT EXISTS (SELECT FROM deliveries d WHERE d.alert_id = a.id AND d.status IN ('pending', 'sending'))
        ORDER BY a.id LIMIT :limit FOR UPDATE OF a SKIP LOCKED""", cutoff=cutoff, limit=limit)
    counts = {t: _delete(session, t, "alert_id", ids) for t in (
        "alert_evidence", "alert_history", "alert_notifications", "alert_rules", "deliveries", "outbox_events")}
    return {"alerts": _delete(session, "alerts", "id", ids), **counts}


def _deliveries(session: Session, cutoff: datetime, limit: int) -> dict[str, int]:
    ids = _ids(session, """
        SELECT d.id FROM deliveries d JOIN alerts a ON a.id = d.alert_id
        WHERE d.updated_at < :cutoff AND d.status NOT IN ('pending', 'sending') AND a.state = 'resolved'
        ORDER BY d.id LIMIT :limit FOR UPDATE OF d SKIP LOCKED""", cutoff=cutoff, limit=limit)
    return {"deliveries": _delete(session, "deliveries", "id", ids)}


def _events(session: Session, cutoff: datetime, limit: int) -> dict[str, int]:
    ids = _ids(session, """
        SELECT o.id FROM outbox_events o LEFT JOIN alerts a ON a.id = o.alert_id
        WHERE (o.published_at < :cutoff OR o.parked_at < :cutoff) AND (o.alert_id IS NULL OR a.state = 'resolved')
          AND NOT EXISTS (SELECT FROM sms_fanout_queue q WHERE q.outbox_id = o.id)
        ORDER BY o.id LIMIT :limit FOR UPDATE OF o SKIP LOCKED""", cutoff=cutoff, limit=limit)
    return {"outbox_events": _delete(session, "outbox_events", "id", ids)}


def _silences(session: Session, cutoff: datetime, limit: int) -> dict[str, int]:
    ids = _ids(session, """
        SELECT id FROM silences WHERE ends_at < :cutoff OR expired_at < :cutoff
        ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED""", cutoff=cutoff, limit=limit)
    return {"silences": _delete(session, "silences", "id", ids)}


def _feed_imports(session: Session, cutoff: datetime, limit: int) -> dict[str, int]:
    ids = _ids(session, """
        SELECT f.id FROM feed_imports f
        WHERE f.imported_at < :cutoff
          AND f.id < (SELECT max(l.id) FROM feed_imports l WHERE l.utility_id = f.utility_id AND l.feed = f.feed)
        ORDER BY f.id LIMIT :limit FOR UPDATE OF f SKIP LOCKED""", cutoff=cutoff, limit=limit)
    return {"feed_imports": _delete(session, "feed_imports", "id", ids)}


@dataclass(frozen=True)
class Step:
    """One table's purge: `run(session, cutoff, limit)` deletes a batch and returns rows deleted per table."""

    kind: str  # the setting: posts, reports, alerts, deliveries, audit
    table: str  # the step's own table; its count says whether a batch was the last
    run: Callable[[Session, datetime, int], dict[str, int]]


# Deliveries and events first: what they leave of old resolved alerts then goes with the alerts.
STEPS = (
    Step("deliveries", "deliveries", _deliveries),
    Step("deliveries", "outbox_events", _events),
    Step("alerts", "alerts", _alerts),
    Step("posts", "observations", _posts),
    Step("reports", "utility_reports", _reports),
    Step("audit", "silences", _silences),
    Step("audit", "feed_imports", _feed_imports),
)


def purge_posts(factory: sessionmaker[Session], *, received_before: datetime, limit: int = BATCH) -> int:
    """Posts received before the cutoff, a batch per transaction, but never the evidence of an unresolved
    alert (`tocsin posts purge`): how many went."""
    n = 0
    while True:
        with factory() as session, session.begin():
            got = _posts(session, received_before, limit)["observations"]
        n += got
        if got < limit:
            return n


def cutoff(policy: Policy, kind: str, now: datetime) -> datetime:
    return now - timedelta(days=getattr(policy, f"{kind}_days"))


def purge_batch(session: Session, *, step: Step, policy: Policy, now: datetime, limit: int = BATCH) -> dict[str, int]:
    """One batch of one step in the caller's transaction: rows deleted per table (the step's own first)."""
    return step.run(session, cutoff(policy, step.kind, now), limit)


def purge(factory: sessionmaker[Session], *, policy: Policy, now: datetime, dry_run: bool = False,
          limit: int = BATCH, stop: threading.Event | None = None,
          progress: Callable[[], object] | None = None) -> PurgeCounts:
    """Every step, batch by batch until a batch comes back short: a transaction per batch, or for a dry run
    one transaction rolled back at the end (the counts are what a real run would delete now). `stop` ends
    it between batches (counts.complete is then False); `progress()` is called after each batch."""
    counts = PurgeCounts()
    dry = factory() if dry_run else None
    try:
        for step in STEPS:
            while True:
                if stop is not None and stop.is_set():
                    counts.complete = False
                    return counts
                if dry is not None:
                    got = purge_batch(dry, step=step, policy=policy, now=now, limit=limit)
                else:
                    with factory() as session, session.begin():
                        got = purge_batch(session, step=step, policy=policy, now=now, limit=limit)
                counts.add(step.kind, got)
                if progress is not None:
                    progress()
                if got[step.table] < limit:
                    break
    finally:
        if dry is not None:
            dry.rollback()
            dry.close()
    return counts


def is_due(last_run: datetime | None, *, now: datetime, interval_s: float) -> bool:
    """Whether the purge role purges now: every `interval_s` (0: never), and first when it starts."""
    return interval_s > 0 and (last_run is None or (now - last_run).total_seconds() >= interval_s)


def purge_if_due(factory: sessionmaker[Session], *, policy: Policy, now: datetime, last_run: datetime | None,
                 interval_s: float, stop: threading.Event | None = None,
                 progress: Callable[[], object] | None = None) -> PurgeCounts | None:
    """The purge role's loop body: purge if due (`is_due`), else None."""
    if not is_due(last_run, now=now, interval_s=interval_s):
        return None
    counts = purge(factory, policy=policy, now=now, stop=stop, progress=progress)
    if any(counts.rows.values()):
        log.info("purge: %s", ", ".join(f"{t} {n}" for (_, t), n in counts.rows.items() if n))
    return counts


def run_forever(factory: sessionmaker[Session], *, policy: Policy, clock: Callable[[], datetime],
                stop: threading.Event, interval_s: float, heartbeat: Callable[..., object] | None = None,
                check_s: float = CHECK_S) -> None:
    """The worker's purge role: purge when it starts, then every `interval_s`, beating every `check_s` and
    after each batch. A lost database is waited out (db.outage) and the purge retried; any other error
    escapes, for the supervisor to log and restart the role."""
    beat = heartbeat or (lambda *a, **k: None)
    last_run: datetime | None = None

    def one_pass() -> None:
        nonlocal last_run
        now = clock()
        counts = purge_if_due(factory, policy=policy, now=now, last_run=last_run, interval_s=interval_s,
                              stop=stop, progress=lambda: beat("ok"))
        if counts is not None and counts.complete:
            last_run = now

    run_passes(one_pass, retry=Outage("purge: database", log).retrier("purge"), stop=stop, wait_s=check_s,
               heartbeat=beat)
