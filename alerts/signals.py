"""The rules' evidence, `signals`, and the zone locks rule evaluation takes: alerts' own, written only here.

A signal is an observation as the rules see it (`SignalIn`): one `signals` row per zone it matched, with
the share of the observation there (`weight`). Evaluation in a zone takes a transaction-scoped advisory
lock on the zone, in zone order (so two writers never deadlock), held to commit: a second writer waits,
then counts the first one's signals too, so two concurrent writers never both miss each other's evidence.

Two ways in, and after either the signals are recorded and their zones locked, which is what
alerts.observe.evaluate needs:
- `record_and_lock` (one statement) and `lock`, for callers with nothing to fuse them with;
- SQL fragments, for a hot path that runs them inside its own statement: a report's insert, or a batch
  of reports' (ingest.reports.service, .batch), writes the signals and takes the zone locks in the same
  round trip (`insert_sql`, `lock_sql` over the zones it touches in the layers `layers_fed` names); a chunk
  of posts writes its signals with its observations (`insert_sql`), then `lock` takes its zones in zone
  order, as does a batch of reports that falls back to a SAVEPOINT per report.

The statements that take the locks also switch the transaction to generic plans (db.plans): they are the
first of an evaluation, and the evaluation's statements come next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from alerts.evaluate import conditions_hold
from alerts.rules import Rule
from db import raw
from db.plans import GENERIC_PLANS
from geo.match_postgis import ZoneMatch

ZONE_LOCK = 7_100_5  # advisory lock class: rule evaluation in one zone (the object is the zone id)

# A signals row, in the order of `insert_sql`'s select list.
COLUMNS = ("observation_id", "zone_id", "source", "category", "confidence", "weight", "author_key", "observed_at")


@dataclass(frozen=True)
class SignalIn:
    """An observation as evidence: what, how sure, who, when, where (zones with weights), and attributes."""

    observation_id: int
    source: str
    category: str
    confidence: float
    author_key: str | None
    observed_at: datetime
    zones: Sequence[ZoneMatch]
    # Facts immediate rules can test, e.g. {"customers_affected": 1200} for a utility report.
    attributes: Mapping[str, Any] = field(default_factory=dict)
    # Facts that differ by zone (zone id -> facts, over `attributes`), e.g. the customers apportioned to it.
    zone_attributes: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)

    def attributes_in(self, zone_id: int) -> Mapping[str, Any]:
        extra = self.zone_attributes.get(zone_id)
        return {**self.attributes, **extra} if extra else self.attributes


# ---------------------------------------------------------------- which zones evaluation locks

def feeds(rule: Rule, signal: SignalIn, match: ZoneMatch) -> bool:
    """Whether the signal, in this zone, is evidence for the rule."""
    return (rule.matches(category=signal.category, source=signal.source, confidence=signal.confidence)
            and match.layer == rule.layer and match.weight >= rule.min_zone_weight
            and (not rule.immediate or conditions_hold(rule, signal.attributes_in(match.zone_id))))


def zones_fed(signals: Sequence[SignalIn], rules: Sequence[Rule]) -> list[int]:
    """The zones where the signals feed a rule, in zone order: those evaluation reads, so those it locks."""
    return sorted({m.zone_id for s in signals for m in s.zones if any(feeds(r, s, m) for r in rules)})


def _may_hold(rule: Rule, attributes: Mapping[str, Any]) -> bool:
    """The rule's conditions on what is known for every zone; a per-zone fact (absent here) may hold in some."""
    return all(name not in attributes or cond.holds(attributes[name]) for name, cond in rule.conditions.items())


def layers_fed(rules: Sequence[Rule], *, source: str, category: str, confidence: float,
               attributes: Mapping[str, Any]) -> list[str]:
    """The zone layers where such a signal can feed a rule: a statement that locks before it knows the zones
    (`lock_sql`) locks every zone it touches in these."""
    return sorted({r.layer for r in rules if r.matches(category=category, source=source, confidence=confidence)
                   and (not r.immediate or _may_hold(r, attributes))})


# ---------------------------------------------------------------- fragments for a caller's own statement

def insert_sql(select: str, *, new_only: bool = False) -> str:
    """An INSERT of signals rows for a caller's statement (a CTE of it): `select` yields COLUMNS, in order.
    `new_only`: skip a (observation, zone) that has its signal already; `select` then names its columns
    as COLUMNS."""
    cols = ", ".join(COLUMNS)
    if not new_only:
        return f"INSERT INTO signals ({cols}) {select}"
    return f"""INSERT INTO signals ({cols})
        SELECT {cols} FROM ({select}) AS new
        WHERE NOT EXISTS (SELECT 1 FROM signals s WHERE s.observation_id = new.observation_id
                                                    AND s.zone_id = new.zone_id)"""


def lock_sql(zones: str) -> str:
    """A query that takes the zone locks, in zone order, of the zones of `zones` (a query yielding zone_id
    and layer; a zone may come more than once) in the layers `:zone_lock_layers` names (`layers_fed`); its
    one row counts them (`n`). Run it as a CTE that the statement's result reads, or PostgreSQL skips it."""
    return f"""SELECT count(pg_advisory_xact_lock({ZONE_LOCK}, z.zone_id)) AS n FROM (
        SELECT fed.zone_id FROM ({zones}) AS fed WHERE fed.layer = ANY(:zone_lock_layers) ORDER BY fed.zone_id
    ) AS z"""


# ---------------------------------------------------------------- statements of their own

_LOCK_ZONES = f"""
    SELECT count(pg_advisory_xact_lock({ZONE_LOCK}, z)) FROM (
        SELECT z FROM unnest(CAST(:lock_zones AS integer[])) AS z ORDER BY z) AS ordered
"""
_LOCK = "SELECT (" + _LOCK_ZONES + ") AS locks, " + GENERIC_PLANS + " AS plans"
_RECORD_AND_LOCK = (
    "WITH ins AS (" + insert_sql("""
        SELECT * FROM unnest(CAST(:observation_id AS bigint[]), CAST(:zone_id AS integer[]),
                             CAST(:source AS text[]), CAST(:category AS text[]), CAST(:confidence AS float8[]),
                             CAST(:weight AS float8[]), CAST(:author_key AS text[]),
                             CAST(:observed_at AS timestamptz[]))""") + """
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM ins) AS signals, (""" + _LOCK_ZONES + ") AS locks, " + GENERIC_PLANS + """ AS plans
    """
)


def _columns(signals: Sequence[SignalIn]) -> dict[str, list]:
    cols: dict[str, list] = {k: [] for k in COLUMNS}
    for s in signals:
        for m in s.zones:
            for k, v in (("observation_id", s.observation_id), ("zone_id", m.zone_id), ("source", s.source),
                         ("category", s.category), ("confidence", s.confidence), ("weight", m.weight),
                         ("author_key", s.author_key), ("observed_at", s.observed_at)):
                cols[k].append(v)
    return cols


def record_and_lock(session: Session, *, signals: Sequence[SignalIn], rules: Sequence[Rule]) -> None:
    """Write a row for each signal in each of its zones and, in the same statement, take the zone locks that
    evaluating them under `rules` needs (`zones_fed`)."""
    cols = _columns(signals)
    if cols["zone_id"]:
        raw.execute(session, _RECORD_AND_LOCK, {**cols, "lock_zones": zones_fed(signals, rules)})


def lock(session: Session, *, signals: Sequence[SignalIn], rules: Sequence[Rule]) -> None:
    """Take the zone locks that evaluating these recorded signals under `rules` needs, in zone order, held
    to commit (one statement; none when they feed no rule)."""
    zones = zones_fed(signals, rules)
    if zones:
        raw.execute(session, _LOCK, {"lock_zones": zones})
