"""`tocsin rules backtest`: run rules over a recorded stream of posts and utility reports without touching
live alerts.

The whole run is one transaction that is rolled back at the end. The clock is the stream's: posts are
fed through the real post pipeline (ingest.posts.pipeline) a minute of event time at a time, with `now` the
newest post of that minute; utility reports through the real report path (ingest.reports.service.create_report,
as a utility created inside the transaction) at their own `observed_at`, in event-time order with the
posts. The sweeper runs every SWEEP_STEP_S of event time between them (and after the last line, until
ALL_QUIET_S) so expiry and hysteresis happen as they would have. Only alerts the run opened are swept.
Stream format: docs/architecture.md, "Event time, bounded lateness and backtests".
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import AwareDatetime, TypeAdapter, ValidationError
from sqlalchemy import text
from sqlalchemy.orm import Session

from alerts import backtest, sweeper
from alerts.slices import SLICE_S
from alerts.rules import Rule
from geo.gazetteer import GazetteerIndex
from db.errors import DomainError
from accounts import keys
from ingest.posts import pipeline, parse as posts
from ingest.posts.state import PostState
from ingest.reports import service as reports
from ingest.posts.classify import Lexicon
from ingest.reports.schemas import ReportCreate

SWEEP_STEP_S = 60  # as the worker sweeps every few seconds: hysteresis and expiry at most a minute late
ALL_QUIET_S = 13 * 3600  # after the last line, long enough for every default rule's expiry (12 h: large outages)
WIDE_OPEN = (-180.0, -90.0, 180.0, 90.0)  # a backtest's reports are not held to the live jurisdiction
_AT = TypeAdapter(AwareDatetime)


@dataclass(frozen=True)
class ReportLine:
    """A `"kind": "report"` line: a utility's report, fed at `observed_at` of the stream's clock."""

    line: int
    utility: str
    observed_at: datetime
    body: ReportCreate
    label: tuple[bool, str | None]  # (labelled, incident or None for noise)


@dataclass
class Stream:
    posts: list[posts.PostIn]
    labels: list[tuple[bool, str | None]]  # per post: (labelled, incident or None for noise)
    errors: list[str]
    reports: list[ReportLine] = field(default_factory=list)


def _label(item: dict) -> tuple[bool, str | None] | str:
    """(labelled, incident or None for noise), or the problem with the label."""
    labelled, incident = "label" in item or "incident" in item, None
    label = item.get("label")
    if isinstance(label, dict):
        incident = label.get("incident")
    elif "incident" in item:
        incident = item.get("incident")
    elif label is not None:
        return "label must be an object such as {\"incident\": \"burst-1\"}"
    return labelled, None if incident is None else str(incident)


def _report_line(n: int, item: dict, label: tuple[bool, str | None]) -> ReportLine | str:
    """A report line, or the problem with it."""
    utility = item.get("utility")
    if not isinstance(utility, str) or not utility.strip():
        return "a report needs \"utility\": the utility's name"
    try:
        observed_at = _AT.validate_python(item.get("observed_at"))
    except ValidationError:
        return f"observed_at must be an ISO time with a UTC offset, got {item.get('observed_at')!r}"
    try:
        body = ReportCreate.model_validate(item.get("feature"))
    except ValidationError as exc:
        return "feature: " + posts._reason(exc)
    return ReportLine(n, utility.strip(), observed_at, body, label)


def read_stream(path: Path) -> Stream:
    """Posts (the JSON of `tocsin replay`) and utility reports (`"kind": "report"`) with optional labels;
    errors name the line and the problem."""
    out = Stream([], [], [])
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                out.errors.append(f"line {n}: not valid JSON: {exc}")
                continue
            if not isinstance(item, dict):
                out.errors.append(f"line {n}: must be a JSON object")
                continue
            kind = item.get("kind", "post")
            if kind not in ("post", "report"):
                out.errors.append(f"line {n}: kind {kind!r} is not supported (post or report)")
                continue
            label = _label(item)
            if isinstance(label, str):
                out.errors.append(f"line {n}: {label}")
                continue
            if kind == "report":
                report_line = _report_line(n, item, label)
                if isinstance(report_line, str):
                    out.errors.append(f"line {n}: {report_line}")
                else:
                    out.reports.append(report_line)
                continue
            parsed = posts.parse_items([item])[0]
            if isinstance(parsed, posts.Rejected):
                out.errors.append(f"line {n}: {parsed.error}")
                continue
            out.posts.append(parsed)
            out.labels.append(label)
    return out


@dataclass
class Result:
    events: list[backtest.TimelineEvent]
    rule_counts: dict[str, int]
    score: backtest.Score | None  # None when no line carries a label
    posts: int
    counted: int
    reports: int = 0  # report lines fed
    reports_created: int = 0
    errors: list[str] = field(default_factory=list)  # report lines the report path refused


def _minute(at: datetime) -> int:
    return int(at.timestamp() // SLICE_S)


def run(session: Session, *, stream: Stream, rules: Sequence[Rule], index: GazetteerIndex, lexicon: Lexicon,
        config: pipeline.PipelineConfig, state: PostState) -> Result:
    """Feed the stream in the caller's transaction (the caller rolls it back) and read what it raised."""
    # A key of its own, so that live posts with the same text are not taken for reposts of the stream's;
    # external ids marked, so that posts already stored live are fed again.
    config = replace(config, author_hash_key=secrets.token_hex(16), worker_process=False)
    after_id = session.execute(text("SELECT coalesce(max(id), 0) FROM alerts")).scalar_one()
    order = sorted(range(len(stream.posts)), key=lambda i: stream.posts[i].created_at)
    marked = [stream.posts[i].model_copy(update={"external_id": f"backtest:{stream.posts[i].external_id}"})
              for i in order]
    labels = {}
    counted = 0

    swept: list[datetime] = []

    def sweep_until(now: datetime) -> None:
        """Sweep every SWEEP_STEP_S from the last sweep up to `now`, and at `now`."""
        step = timedelta(seconds=SWEEP_STEP_S)
        at = swept[-1] + step if swept else now
        while at < now:
            sweep(at)
            at += step
        sweep(now)
        swept.append(now)

    def sweep(now: datetime) -> None:
        last = after_id
        while True:
            done = sweeper.sweep(session, rules=rules, now=now, after_id=last, fold_baselines=False)
            if not done.last_id:
                return
            last = done.last_id

    callers: dict[str, keys.Caller] = {}

    def caller_for(name: str) -> keys.Caller:
        """A utility of the run's own (rolled back with it), so live reports and utilities are never hit."""
        if name not in callers:
            utility = keys.add_utility(session, name=f"{name[:80]} (backtest {config.author_hash_key[:12]})")
            key = keys.issue_key(session, role="utility", utility_id=utility.id, label="backtest")
            callers[name] = keys.authenticate(session, key=key)
        return callers[name]

    def feed_report(line: ReportLine) -> None:
        nonlocal created_reports
        sweep_until(line.observed_at)
        caller = caller_for(line.utility)
        try:
            with session.begin_nested():  # a refused report leaves the run's transaction usable
                done = reports.create_report(session, caller=caller, body=line.body, idempotency_key=None,
                                             rules=rules, jurisdiction_bbox=WIDE_OPEN, now=line.observed_at)
        except DomainError as exc:
            errors.append(f"line {line.line}: {exc.message}")
            return
        created_reports += done.created
        if line.label[0]:
            labels[done.report.observation_id] = line.label[1]

    # Posts and reports in event-time order (a post before a report of the same instant); the posts of one
    # minute go in one batch unless a report falls between them.
    report_order = sorted(stream.reports, key=lambda r: r.observed_at)
    errors: list[str] = []
    created_reports = 0
    k = r = 0
    while k < len(marked) or r < len(report_order):
        if r < len(report_order) and (k >= len(marked) or report_order[r].observed_at < marked[k].created_at):
            feed_report(report_order[r])
            r += 1
            continue
        j = k
        while (j < len(marked) and _minute(marked[j].created_at) == _minute(marked[k].created_at)
               and (r >= len(report_order) or marked[j].created_at <= report_order[r].observed_at)):
            j += 1
        batch = marked[k:j]
        sweep_until(batch[0].created_at)
        done = pipeline.ingest_posts(session, posts=batch, index=index, lexicon=lexicon, rules=rules,
                                     config=config, state=state, now=max(p.created_at for p in batch))
        for res, i in zip(done, order[k:j]):
            if res.status == "created":
                counted += 1
            if res.id is not None and stream.labels[i][0]:
                labels[res.id] = stream.labels[i][1]
        k = j
    times = [p.created_at for p in marked] + [line.observed_at for line in report_order]
    if times:
        sweep_until(max(times) + timedelta(seconds=ALL_QUIET_S))
    session.flush()
    events = backtest.timeline(session, after_id=after_id)
    scored = backtest.score(labels, backtest.evidence(session, after_id=after_id)) \
        if any(lab for lab, _ in stream.labels) or any(line.label[0] for line in stream.reports) else None
    return Result(events, backtest.rule_counts(events), scored, len(stream.posts), counted,
                  reports=len(stream.reports), reports_created=created_reports, errors=errors)


def report(result: Result) -> list[str]:
    """The printed report: timeline, per-rule counts and, for a labelled stream, the score (last line)."""
    fed = f"{result.posts} posts, {result.counted} stored as new"
    if result.reports:
        fed += f"; {result.reports} utility reports, {result.reports_created} stored as new"
    lines = [f"{fed}; {len(result.events)} alert events"]
    lines += [f"refused: {e}" for e in result.errors]
    for e in result.events:
        lines.append(f"{e.at.isoformat(timespec='seconds')}  {e.kind:<8} alert {e.alert_id:<5} {e.zone:<8} "
                     f"{e.category:<12} {e.severity:<8} {','.join(e.rules)}")
    lines.append("alerts per rule: " + (", ".join(f"{r}={n}" for r, n in result.rule_counts.items()) or "none"))
    if result.score is not None:
        s = result.score
        lines.append("missed incidents: " + (", ".join(s.missed) or "none"))
        lines.append("alerts on noise: " + (", ".join(map(str, s.noise_alerts)) or "none"))
        lines.append("duplicate alerts: " + (", ".join(f"{i} -> {ids}" for i, ids in s.duplicates.items())
                                               or "none"))
        lines.append(s.summary())
    return lines
