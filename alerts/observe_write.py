"""Steps 4-6 of rule evaluation (alerts.observe): open the new alerts, link their evidence, and write alert
updates, history, outbox events, notification-log rows and fired rules, in a statement or three per batch."""

import logging
import uuid
from datetime import datetime, timedelta

import orjson
from sqlalchemy.orm import Session

from alerts import events
from alerts import observe_sql as sql
from alerts.evaluate import EPS
from alerts.incidents import Incident
from alerts.models import Alert
from db import raw

log = logging.getLogger("alerts.observe")  # its records read as evaluation's, as they did


def open_alerts(session: Session, opening: list[Incident], now: datetime) -> list[Incident]:
    """Insert the new alerts, with the ids READ drew for them; returns the incidents whose insert lost to a
    concurrent opener (none expected: every opener holds the zone's lock), to be evaluated again."""
    if not opening:
        return []
    cols: dict[str, list] = {k: [] for k in ("id", "rule", "zone_id", "category", "severity", "ack_code",
                                             "authors", "expires_at")}
    for inc in opening:
        a = inc.alert
        assert a is not None
        for k, v in (("id", a.id), ("rule", a.rule), ("zone_id", inc.match.zone_id), ("category", a.category),
                     ("severity", a.severity), ("ack_code", a.ack_code), ("authors", a.distinct_authors),
                     ("expires_at", a.expires_at)):
            cols[k].append(v)
    inserted = raw.execute(session, sql.INSERT_ALERTS, {**cols, "now": now})
    ids = {alert_id for (alert_id,) in inserted}
    return [inc for inc in opening if inc.alert is not None and inc.alert.id not in ids]


def _own_links(incidents: list[Incident]) -> dict[str, list[int]]:
    """Each incident's alert with this batch's observations feeding it: the links to write."""
    links: dict[str, list[int]] = {"alert_id": [], "observation_id": []}
    for inc in incidents:
        assert inc.alert is not None
        links["alert_id"] += [inc.alert.id] * len(inc.observation_ids)
        links["observation_id"] += inc.observation_ids
    return links


def only_immediate_openings(active: list[Incident]) -> bool:
    """Whether every change is an alert opened by immediate rules: its evidence is this batch's own signals,
    every link new, so it is counted in Python and written with the alert (`open_and_write`)."""
    return bool(active) and all(inc.opening and all(p.rule.immediate for p in inc.joined) for inc in active)


def _count_own(incidents: list[Incident]) -> None:
    for inc in incidents:
        source_of = {s.observation_id: s.source for p in inc.active for s in p.feeding}
        for oid in inc.observation_ids:
            source = source_of[oid]
            inc.added[source] = inc.added.get(source, 0) + 1
            inc.by_source[source] = inc.by_source.get(source, 0) + 1


def link_evidence(session: Session, incidents: list[Incident], notifying: list[Incident], now: datetime) -> None:
    """Evidence for every alert: when a rule opens or joins it, all that rule's window counted; afterwards the
    new observations of the rules on it."""
    links = _own_links(incidents)
    window = []
    for inc in incidents:
        assert inc.alert is not None
        for p in inc.joined:
            if p.rule.immediate:
                continue
            r = p.rule
            window.append({"alert_id": inc.alert.id, "zone_id": inc.match.zone_id, "categories": list(r.categories),
                           "sources": list(r.sources), "min_confidence": r.min_confidence,
                           "min_weight": r.min_zone_weight,
                           "since": (now - timedelta(seconds=r.window_s)).isoformat()})
    old_of = [inc.alert.id for inc in notifying if inc.alert is not None and not inc.opening]
    counted = raw.execute(session, sql.EVIDENCE, {"window": orjson.dumps(window).decode(), **links, "now": now,
                                                  "old_of": old_of})
    by_alert = {inc.alert.id: inc for inc in incidents if inc.alert is not None}
    for new, alert_id, source, n in counted:
        inc = by_alert[alert_id]
        if new:
            inc.added[source] = inc.added.get(source, 0) + int(n)
        inc.by_source[source] = inc.by_source.get(source, 0) + int(n)


_UPDATE_KEYS = ("id", "added", "authors", "expires", "severity", "clear", "notified", "rule")
# OPEN_AND_WRITE inserts its alerts: they take what INSERT_ALERTS took, and clear nothing.
_OPEN_KEYS = tuple(k for k in _UPDATE_KEYS if k != "clear") + ("zone_id", "category", "ack_code")


def write(session: Session, incidents: list[Incident], now: datetime) -> None:
    """Step 6: alert updates, history, outbox events, notification-log rows and fired rules (WRITE)."""
    raw.execute(session, sql.WRITE, _params(incidents, now, _UPDATE_KEYS))


def open_and_write(session: Session, incidents: list[Incident], now: datetime) -> set[int]:
    """Steps 4-6 in one statement (OPEN_AND_WRITE) for alerts opened by immediate rules
    (`only_immediate_openings`): their evidence is counted here. Returns the ids of the alerts it inserted; an
    opening that lost to an unresolved alert is not among them, and wrote nothing."""
    _count_own(incidents)
    inserted = raw.execute(session, sql.OPEN_AND_WRITE, {**_params(incidents, now, _OPEN_KEYS),
                                                          **_own_links(incidents)})
    return {alert_id for (alert_id,) in inserted}


def _params(incidents: list[Incident], now: datetime, alert_keys: tuple[str, ...]) -> dict:
    """WRITE's and OPEN_AND_WRITE's parameters: `alert_keys` of each alert (u_*), then history (h_*), events
    (e_*, built here) and fired rules (r_*)."""
    u: dict[str, list] = {k: [] for k in alert_keys}
    h: dict[str, list] = {k: [] for k in ("id", "from", "to", "severity", "actor", "reason")}
    e: dict[str, list] = {k: [] for k in ("event_id", "alert_id", "kind", "payload", "reason", "state", "severity")}
    r: dict[str, list] = {k: [] for k in ("alert_id", "rule", "zone_id", "severity", "cooldown")}
    for inc in incidents:
        a = inc.alert
        assert a is not None
        added = sum(inc.added.values())
        a.evidence_count += added
        notified = inc.decision is not None and inc.decision.notify
        clear = inc.opening or any(p.live is not None and p.live.weighted_count + EPS >= p.rule.resolve_threshold
                                   for p in inc.active)
        row = {"id": a.id, "added": added, "authors": a.distinct_authors, "expires": a.expires_at,
               "severity": a.severity, "clear": clear, "notified": notified, "rule": a.rule,
               "zone_id": inc.match.zone_id, "category": a.category, "ack_code": a.ack_code}
        for k in alert_keys:
            u[k].append(row[k])
        history = []
        if inc.opening:
            history.append((None, f"rule:{a.rule}", inc.reason))
        else:
            history += [(a.state, f"rule:{p.rule.name}", f"rule joined: it fired at {p.fires}")
                        for p in inc.joined]
            if inc.changed_severity:
                history.append((a.state, f"rule:{inc.raised_by}", inc.reason))
        for from_state, actor, reason in history:
            for k, v in (("id", a.id), ("from", from_state), ("to", a.state), ("severity", a.severity),
                         ("actor", actor), ("reason", reason)):
                h[k].append(v)
        for p in inc.active:
            if p.fires is not None:
                for k, v in (("alert_id", a.id), ("rule", p.rule.name), ("zone_id", inc.match.zone_id),
                             ("severity", p.fires), ("cooldown", p.rule.cooldown_s)):
                    r[k].append(v)
        if notified:
            assert inc.decision is not None and inc.decision.kind is not None
            event_id = uuid.uuid4()
            zone = {"layer": inc.match.layer, "code": inc.match.code, "name": inc.match.name}
            payload = events.payload(event_id=event_id, kind=inc.decision.kind, reason=inc.decision.reason, alert=a,
                                     zone=zone, evidence_by_source=inc.by_source, rules=a.rules,
                                     silenced=inc.decision.silenced)
            for k, v in (("event_id", str(event_id)), ("alert_id", a.id), ("kind", payload["kind"]),
                         ("payload", orjson.dumps(payload).decode()), ("reason", inc.decision.reason),
                         ("state", a.state), ("severity", a.severity)):
                e[k].append(v)
            log.info("alert %s notify %s", a.id, inc.decision.reason)
    return {"now": now, **{f"u_{k}": v for k, v in u.items()}, **{f"h_{k}": v for k, v in h.items()},
            **{f"e_{k}": v for k, v in e.items()}, **{f"r_{k}": v for k, v in r.items()}}


def expire_cached(session: Session, alert_ids: set[int]) -> None:
    """Alerts this call changed with SQL: ORM copies the session already holds must reload."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Alert) and obj.id in alert_ids:
            session.expire(obj)
