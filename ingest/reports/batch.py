"""Many new reports stored in one statement (the group commit's fast path; ingest.reports.writer).

`write_many` does for a batch what `ingest.reports.service.write` does for one report, in one round trip: the
observations, reports, first history rows, zone links and signals (alerts.signals.insert_sql) of every
report, with each report's zones matched in PostGIS, and the zone locks their rules need (the statement:
ingest.reports.queries.INSERT_REPORTS). Checks that read the database run first: a ZIP's polygon per report
located by ZIP, and the utilities' territories in one statement for the batch; a report failing one gets its
own error and is left out. What the statement cannot place (a report seen before, an Idempotency-Key used
for another report, a repeat inside the batch) goes the single-report way afterwards, which reads what is
stored and answers 200 or 409.

An error in the statement itself (a row breaking a constraint) aborts the transaction: the writer then
runs the batch again with a SAVEPOINT per report, so that only the report at fault fails.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.orm import Session

from alerts.rules import Rule
from db import plans
from db import raw as db_raw
from db.errors import DomainError
from geo.match_postgis import ZoneMatch
from ingest.reports import locate as where
from ingest.reports import queries
from ingest.reports import service as reports
from ingest.models import Observation

def write_many(session: Session, subs: Sequence[reports.Submission], *, rules: Sequence[Rule]
               ) -> list[reports.Written | DomainError]:
    """Store every report of `subs` (see the module docstring); one outcome per submission, in order: what
    was written (with the signal its rules have yet to see), or the caller's own error. The statement also
    takes the zone locks that evaluating the batch under `rules` needs, in zone order, as a lone report's
    insert does: the zones each report touches in the layers where such a report can feed a rule."""
    outcomes: list[reports.Written | DomainError | None] = [None] * len(subs)
    located: dict[int, where.Located] = {}
    for i, sub in enumerate(subs):
        try:
            loc = sub.located
            if loc is None:
                loc = where.locate(session, body=sub.body, max_vertices=sub.max_vertices,
                                     max_area_km2=sub.max_area_km2)
                where.check_jurisdiction(loc.geom, sub.jurisdiction_bbox)
            located[i] = loc
        except DomainError as exc:
            outcomes[i] = exc
    # Every territory in one statement (none when no utility of the batch has one).
    for i, exc in where.outside_territories(session, [(i, subs[i].caller, loc.geom)
                                                      for i, loc in located.items()]).items():
        outcomes[i] = exc
        del located[i]
    # A repeat inside the batch (the same external_id or Idempotency-Key of one utility) is answered after
    # the statement, from what the first one stored.
    seen: set[tuple] = set()
    batch: list[int] = []
    later: list[int] = []
    for i in located:
        sub = subs[i]
        keys_ = {("ext", sub.caller.utility_id, sub.body.properties.external_id)}
        if sub.idempotency_key is not None:
            keys_.add(("idem", sub.caller.utility_id, sub.idempotency_key))
        (later if seen & keys_ else batch).append(i)
        seen |= keys_
    rows = _insert(session, subs, located, batch, rules) if batch else []
    by_ord: dict[int, list] = {}
    for r in rows:
        by_ord.setdefault(r.ord, []).append(r)
    for i in batch:
        sub, loc, got = subs[i], located[i], by_ord.get(i, [])
        first = got[0] if got else None
        if first is None or first.report_id is None:
            if first is not None and first.obs_id is not None:
                # The same Idempotency-Key won with another external_id: undo our observation.
                session.execute(delete(Observation).where(Observation.id == first.obs_id))
            later.append(i)
            continue
        zones = [ZoneMatch(r.zone_id, r.layer, r.code, r.name, float(r.weight)) for r in got if r.zone_id is not None]
        outcomes[i] = reports.written(sub, loc, first.obs_id, first.report_id, zones)
    for i in sorted(later):
        try:
            outcomes[i] = reports.Written(reports.stored_or_conflict(session, subs[i]), None)
        except DomainError as exc:
            outcomes[i] = exc
    return outcomes  # type: ignore[return-value]  # every slot is filled above


def _insert(session: Session, subs: Sequence[reports.Submission], located: dict[int, where.Located],
            batch: list[int], rules: Sequence[Rule]) -> list:
    cols: dict[str, list] = {k: [] for k in (
        "ord", "ext", "author", "text", "category", "observed_at", "now", "wkt", "unc", "method", "raw", "utility_id",
        "external_id", "status", "customers", "cause", "started_at", "etr", "body_hash", "idem", "key_id", "changes",
        "feed", "extent", "lock_layers")}
    for i in batch:
        sub, loc = subs[i], located[i]
        props, caller = sub.body.properties, sub.caller
        raw = sub.raw
        for k, v in (
                ("ord", i), ("ext", f"{caller.utility_id}:{props.external_id}"),
                ("author", f"utility:{caller.utility_id}"), ("text", props.description), ("category", props.category),
                ("observed_at", props.started_at or sub.now), ("now", sub.now), ("wkt", loc.geom.wkt),
                ("unc", where.uncertainty_m(loc.geom)),
                ("method", "coordinates" if loc.method == "geometry" else loc.method), ("raw", sub.raw_json),
                ("utility_id", caller.utility_id), ("external_id", props.external_id), ("status", props.status),
                ("customers", props.customers_affected), ("cause", props.cause), ("started_at", props.started_at),
                ("etr", props.estimated_restore_at), ("body_hash", sub.digest), ("idem", sub.idempotency_key),
                ("key_id", caller.key_id),
                ("changes", json.dumps({k: [None, v] for k, v in raw["properties"].items() if v is not None})),
                ("feed", props.status not in reports.TERMINAL_STATUSES), ("extent", loc.method == "geometry"),
                ("lock_layers", ",".join(reports.lock_layers(rules, props)))):
            cols[k].append(v)
    locked = sorted({layer for layers in cols["lock_layers"] for layer in layers.split(",") if layer})
    plans.use_generic_plans(session)
    return db_raw.execute(session, queries.INSERT_REPORTS, {**cols, "full_share": reports.FULL_SHARE,
                                                            "zone_lock_layers": locked}).fetchall()

