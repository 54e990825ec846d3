"""Group commit for POST /v1/reports: reports that arrive while a commit is in flight share the next one.

One writer thread per API process takes every submission waiting (up to `max_batch`), writes them in one
statement that also takes the zone locks of them all, in zone order (ingest.reports.batch), or each in a
SAVEPOINT of its own (ingest.reports.service.write) and then the locks (alerts.signals.lock), runs the rules
once for all of them (alerts.service.evaluate), commits once, and only then answers each request: a 201
still means the report is durable. While reports keep coming the thread writes them on one connection and
session that it holds (db.held), given back to the pool after IDLE_RELEASE_S without one. A lone report is
written at once (nothing waits for company); batches form only from reports that arrived during the
previous commit, as in PostgreSQL's own group commit. A batch of one takes its zone locks inside its
insert, as before batching.

Failure isolation:
- a report that fails on its own (a domain error such as a territory or idempotency conflict, a constraint
  its row violates) rolls back to its savepoint and gets its own error; its neighbours go on;
- a failure of the batch (a deadlock, a serialization failure, a lost connection, any error outside a
  report's savepoint, a failed commit) rolls the batch back and runs it once more; if that fails too, each
  report runs alone in a transaction of its own, so a report that breaks every batch takes down only itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from alerts import service as alert_service
from alerts import signals as alert_signals
from alerts.rules import Rule
from db.errors import Conflict, DomainError, InvalidInput
from db.held import HeldSession
from db.outage import describe
from ingest.reports import batch as report_batch, service as reports
from ingest.reports.queries import ReportResult

log = logging.getLogger(__name__)

MAX_BATCH = 64
# The writer thread holds one connection and session across batches while reports keep coming (db.held: a
# session and a pool check-out per batch were about a fifth of its CPU per lone report), and gives them back
# once none has come for this long.
IDLE_RELEASE_S = 0.5


class WriterStopped(RuntimeError):
    """The API is shutting down and no longer takes reports (answered with 503)."""


@dataclass
class _Job:
    sub: reports.Submission
    future: Future
    received: float = 0.0  # time.monotonic() when submitted


def constraint_error(exc: Exception) -> DomainError:
    """A report whose row breaks a database constraint, as the caller's error: 409 for a duplicate, 422 else."""
    inner = getattr(exc, "orig", None) or exc
    diag = getattr(inner, "diag", None)
    name = getattr(diag, "constraint_name", None) or "a constraint"
    if isinstance(inner, psycopg.errors.UniqueViolation):
        return Conflict(f"the report conflicts with a stored one (unique constraint {name})")
    return InvalidInput(f"the report breaks the database constraint {name}")


_OWN_ERRORS = (DomainError, sa_exc.IntegrityError, psycopg.errors.IntegrityError)


class ReportWriter:
    """The group-commit writer of one API process (built and stopped by tocsin.app's lifespan)."""

    def __init__(self, factory: sessionmaker[Session], *, rules: Callable[[], Sequence[Rule]],
                 max_batch: int = MAX_BATCH, observe_committed: Callable[[float], None] | None = None,
                 idle_release_s: float = IDLE_RELEASE_S) -> None:
        self._factory = factory
        # Called with each committed report's seconds from submit() to its batch's commit (for /metrics).
        self._observe_committed = observe_committed
        self._rules = rules
        self.max_batch = max_batch
        self._queue: list[_Job] = []
        self._cv = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._held = HeldSession(factory)
        self.idle_release_s = idle_release_s
        self._holder: int | None = None  # the thread whose batches use the held session (`holding`)
        # Counters for /metrics-style inspection and the benchmark.
        self.batches = 0
        self.reports = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="report-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then stop; anything still queued after `timeout_s` is refused."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
        with self._cv:
            left, self._queue = self._queue, []
        for job in left:
            job.future.set_exception(WriterStopped("the API is shutting down; retry the report"))

    def submit(self, sub: reports.Submission) -> Future:
        """Queue a report; the future holds its ReportResult once committed, or its error."""
        job = _Job(sub, Future(), time.monotonic())
        with self._cv:
            if self._stopping:
                raise WriterStopped("the API is shutting down; retry the report")
            self._queue.append(job)
            self._cv.notify()
        return job.future

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """The calling thread's batches inside the block share one held connection and session (db.held); the
        writer thread's do while it runs. Given back at the end of the block."""
        self._holder = threading.get_ident()
        try:
            yield
        finally:
            self._holder = None
            self._held.release()

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        """A batch's session: the held one in `holding`, else a new one, closed after (its connection pooled)."""
        if self._holder == threading.get_ident():
            with self._held.transaction() as session:
                yield session
        else:
            with self._factory() as session:
                yield session

    def _next_jobs(self) -> list[_Job] | None:
        """The next batch's jobs, waiting for one; None once stopping with nothing left. A wait of `idle_release_s`
        with nothing coming gives the held connection back to the pool."""
        while True:
            with self._cv:
                if not self._queue and not self._stopping:
                    self._cv.wait(self.idle_release_s if self._held.holding else None)
                if self._queue:
                    jobs, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                    return jobs
                if self._stopping:
                    return None
            self._held.release()  # idle: outside the lock, which submit() takes

    def _run(self) -> None:
        with self.holding():
            while (jobs := self._next_jobs()) is not None:
                self._answer(jobs)

    def _answer(self, jobs: list[_Job]) -> None:
        """Write the jobs' batch and settle each one's future."""
        try:
            outcomes = self.write_batch([j.sub for j in jobs])
        except BaseException as exc:  # noqa: BLE001 - never leave a request waiting for ever
            log.exception("report writer: batch of %d failed", len(jobs))
            outcomes = [exc] * len(jobs)
        if self._observe_committed is not None:  # before answering: a 201 means it is counted
            self._observe(jobs, outcomes)
        for job, outcome in zip(jobs, outcomes):
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

    def _observe(self, jobs: Sequence[_Job], outcomes: Sequence[object]) -> None:
        committed = time.monotonic()
        try:
            for job, outcome in zip(jobs, outcomes):
                if not isinstance(outcome, BaseException):
                    self._observe_committed(committed - job.received)
        except Exception:  # noqa: BLE001 - a metric must not keep a request waiting
            log.exception("report writer: recording commit latency failed")

    def write_batch(self, subs: Sequence[reports.Submission]) -> list[ReportResult | Exception]:
        """Write and commit `subs` together (see the module docstring); one outcome per submission, in order."""
        self.batches += 1
        self.reports += len(subs)
        if len(subs) == 1:
            return self._alone(subs[0])
        for attempt, mode in ((1, "statement"), (2, "savepoints")):
            try:
                return self._together(subs, savepoints=mode == "savepoints")
            except Exception as exc:
                log.warning("report writer: batch of %d failed (attempt %d, one %s): %s", len(subs), attempt,
                            "statement" if mode == "statement" else "savepoint per report", describe(exc))
        return [self._alone(sub)[0] for sub in subs]

    def _alone(self, sub: reports.Submission) -> list[ReportResult | Exception]:
        """One report in a transaction of its own; its zone locks taken in its insert.

        Its statements go one by one, each answer read (no psycopg pipeline mode: see db.raw.pipeline)."""
        rules = self._rules()
        try:
            with self._session() as session:
                try:
                    written = reports.write(session, sub, rules=rules, lock=True)
                except _OWN_ERRORS as exc:
                    return [exc if isinstance(exc, DomainError) else constraint_error(exc)]
                if written.signal is not None:  # its insert took its zone locks
                    self._evaluate(session, [written], rules, sub.now)
                session.commit()
            return [written.result]
        except Exception as exc:
            return [exc]

    def _together(self, subs: Sequence[reports.Submission], *, savepoints: bool
                  ) -> list[ReportResult | Exception]:
        """One transaction for the batch: one statement for every report (`report_batch.write_many`), or a
        SAVEPOINT and a statement per report, so that a report that breaks a constraint fails alone."""
        rules = self._rules()
        outcomes: list[ReportResult | Exception] = []
        writes: list[reports.Written] = []
        with self._session() as session:
            if savepoints:
                done: list[reports.Written | Exception] = []
                for sub in subs:
                    try:
                        with session.begin_nested():
                            done.append(reports.write(session, sub, rules=rules, lock=False))
                    except _OWN_ERRORS as exc:
                        done.append(exc if isinstance(exc, DomainError) else constraint_error(exc))
            else:  # its statement takes the zone locks too
                done = list(report_batch.write_many(session, subs, rules=rules))
            for item in done:
                if isinstance(item, reports.Written):
                    writes.append(item)
                    outcomes.append(item.result)
                else:
                    outcomes.append(item)
            if savepoints:  # each report's statement took no lock: all of them now, in zone order
                alert_signals.lock(session, signals=[w.signal for w in writes if w.signal is not None],
                                   rules=rules)
            self._evaluate(session, writes, rules, max(s.now for s in subs))
            session.commit()
        return outcomes

    @staticmethod
    def _evaluate(session: Session, writes: Sequence[reports.Written], rules: Sequence[Rule], now) -> None:
        """The rules, once for every signal of the batch (their zones locked already); each new report learns
        the alerts its evidence changed."""
        signals = [w.signal for w in writes if w.signal is not None]
        if not signals:
            return
        changes = alert_service.evaluate(session, signals=signals, rules=rules, now=now)
        by_observation: dict[int, list[int]] = {}
        for change in changes:
            for oid in change.observation_ids:
                by_observation.setdefault(oid, []).append(change.alert_id)
        for w in writes:
            if w.result.created:
                w.result.alerts_changed = list(dict.fromkeys(by_observation.get(w.result.report.observation_id, [])))
