"""`tocsin rules backtest`: run rules over a recorded stream of posts without touching live alerts.

The whole run is one transaction that is rolled back at the end. The clock is the stream's: posts are
fed through the real post pipeline (ingest.pipeline) a minute of event time at a time, with `now` the
newest post of that minute, and the sweeper runs every SWEEP_STEP_S of event time between them (and after
the last post, until ALL_QUIET_S) so expiry and hysteresis happen as they would have. Only alerts the run
opened are swept. Stream format: docs/architecture.md, "Event time, bounded lateness and backtests".
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from alerts import backtest, sweeper
from alerts.observe import SLICE_S
from alerts.rules import Rule
from geo.gazetteer import GazetteerIndex
from ingest import pipeline, posts
from ingest.classify import Lexicon

SWEEP_STEP_S = 60  # as the worker sweeps every few seconds: hysteresis and expiry at most a minute late
ALL_QUIET_S = 4 * 3600  # after the last post, long enough for every default rule's expiry


@dataclass
class Stream:
    posts: list[posts.PostIn]
    labels: list[tuple[bool, str | None]]  # per post: (labelled, incident or None for noise)
    errors: list[str]


def read_stream(path: Path) -> Stream:
    """Posts (the JSON of `tocsin replay`) with optional labels; errors name the line and the problem."""
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
            if item.get("kind", "post") != "post":
                out.errors.append(f"line {n}: kind {item.get('kind')!r} is not supported (only posts)")
                continue
            labelled, incident = "label" in item or "incident" in item, None
            label = item.get("label")
            if isinstance(label, dict):
                incident = label.get("incident")
            elif "incident" in item:
                incident = item.get("incident")
            elif label is not None:
                out.errors.append(f"line {n}: label must be an object such as {{\"incident\": \"burst-1\"}}")
                continue
            parsed = posts.parse_items([item])[0]
            if isinstance(parsed, posts.Rejected):
                out.errors.append(f"line {n}: {parsed.error}")
                continue
            out.posts.append(parsed)
            out.labels.append((labelled, None if incident is None else str(incident)))
    return out


@dataclass
class Result:
    events: list[backtest.TimelineEvent]
    rule_counts: dict[str, int]
    score: backtest.Score | None  # None when no line carries a label
    posts: int
    counted: int


def _minute(at: datetime) -> int:
    return int(at.timestamp() // SLICE_S)


def run(session: Session, *, stream: Stream, rules: Sequence[Rule], index: GazetteerIndex, lexicon: Lexicon,
        config: pipeline.PipelineConfig) -> Result:
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

    k = 0
    while k < len(marked):
        j = k
        while j < len(marked) and _minute(marked[j].created_at) == _minute(marked[k].created_at):
            j += 1
        batch = marked[k:j]
        sweep_until(batch[0].created_at)
        done = pipeline.ingest_posts(session, posts=batch, index=index, lexicon=lexicon, rules=rules,
                                     config=config, now=max(p.created_at for p in batch))
        for r, i in zip(done, order[k:j]):
            if r.status == "created":
                counted += 1
            if r.id is not None and stream.labels[i][0]:
                labels[r.id] = stream.labels[i][1]
        k = j
    if marked:
        end = marked[-1].created_at
        sweep_until(end + timedelta(seconds=ALL_QUIET_S))
    session.flush()
    events = backtest.timeline(session, after_id=after_id)
    scored = backtest.score(labels, backtest.evidence(session, after_id=after_id)) \
        if any(lab for lab, _ in stream.labels) else None
    return Result(events, backtest.rule_counts(events), scored, len(stream.posts), counted)


def report(result: Result) -> list[str]:
    """The printed report: timeline, per-rule counts and, for a labelled stream, the score (last line)."""
    lines = [f"{result.posts} posts, {result.counted} stored as new; {len(result.events)} alert events"]
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
