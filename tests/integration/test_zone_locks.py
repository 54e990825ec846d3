"""The zone locks alerts.signals takes, by each way in: a report's insert (its fragments), `lock` for a
batch, `record_and_lock` for a caller with nothing to fuse. Each holds, to commit, the locks of the zones
its evidence can feed a rule in, and no other."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from alerts.rules import parse_rules

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
BBOX = (-75.0, 40.0, -73.0, 41.5)
# Outages count in districts, floods and water mains in precincts; nothing counts gas leaks.
RULES = parse_rules({"rules": [
    {"name": "outages", "categories": ["power_outage"], "sources": ["utility_report"], "layer": "district",
     "window": "1h", "min_count": 3},
    {"name": "floods", "categories": ["flood", "water_main"], "sources": ["post", "utility_report"],
     "layer": "precinct",
     "window": "1h", "min_count": 3},
]})


def zone_locks(session) -> set[str]:
    """The codes of the zones whose lock this session's transaction holds."""
    from alerts.signals import ZONE_LOCK

    return set(session.execute(text(
        "SELECT z.code FROM pg_locks k JOIN zones z ON z.id = k.objid::int "
        "WHERE k.locktype = 'advisory' AND k.pid = pg_backend_pid() AND k.granted AND k.classid = :c "
        "AND k.objsubid = 2"), {"c": ZONE_LOCK}).scalars())


def submission(caller, external_id: str, category: str, at: tuple[float, float] = (-73.975, 40.725)):
    """A report at `at` (by default in district A and precinct P1)."""
    from ingest.reports import service as reports
    from ingest.reports.schemas import ReportCreate

    body = ReportCreate.model_validate({
        "type": "Feature", "geometry": {"type": "Point", "coordinates": list(at)},
        "properties": {"external_id": external_id, "category": category}})
    return reports.prepare(caller=caller, body=body, idempotency_key=None, jurisdiction_bbox=BBOX, now=NOW)


@pytest.mark.parametrize("category, lock, held", [
    ("power_outage", True, {"A"}),   # the district its rule counts, not the precinct
    ("water_main", True, {"P1"}),
    ("gas_leak", True, set()),        # no rule counts it
    ("power_outage", False, set()),   # a batch's insert: alerts.signals.lock takes them afterwards
])
def test_a_reports_insert_takes_the_locks_of_the_layers_its_rules_count(session_factory, districts, utility_key,
                                                                         category, lock, held):
    from accounts import keys
    from ingest.reports import service as reports

    with session_factory() as s:
        caller = keys.authenticate(s, key=utility_key)
        written = reports.write(s, submission(caller, "R1", category), rules=RULES, lock=lock)
        assert written.signal is not None  # stored, with its signals in every zone it touches
        assert zone_locks(s) == held
        s.rollback()


def test_a_batchs_insert_takes_the_zones_each_report_feeds(session_factory, districts, utility_key):
    """Each report's zones in its own rules' layers, not every layer some report of the batch feeds: the
    outage locks its district (A), the water main its precinct (P1), and district B, where only the water
    main is, stays free."""
    from accounts import keys
    from ingest.reports import batch as report_batch

    with session_factory() as s:
        caller = keys.authenticate(s, key=utility_key)
        done = report_batch.write_many(s, [submission(caller, "R1", "power_outage"),
                                           submission(caller, "R2", "water_main", at=(-73.925, 40.725)),
                                           submission(caller, "R3", "gas_leak", at=(-73.925, 40.725))],
                                       rules=RULES)
        assert all(w.signal is not None for w in done)
        assert zone_locks(s) == {"A", "P1"}
        s.rollback()


def test_lock_takes_the_zones_a_batch_feeds(session_factory, districts, utility_key):
    """The way of a batch that fell back to a SAVEPOINT per report: each insert takes no lock, `lock` then
    takes all of them."""
    from alerts import signals as alert_signals
    from accounts import keys
    from ingest.reports import service as reports

    with session_factory() as s:
        caller = keys.authenticate(s, key=utility_key)
        done = [reports.write(s, submission(caller, "R1", "power_outage"), rules=RULES, lock=False),
                reports.write(s, submission(caller, "R2", "water_main", at=(-73.925, 40.725)), rules=RULES,
                              lock=False)]
        assert zone_locks(s) == set()
        alert_signals.lock(s, signals=[w.signal for w in done], rules=RULES)
        assert zone_locks(s) == {"A", "P1"}
        s.rollback()


def test_record_and_lock_writes_the_rows_and_takes_the_locks(session_factory, districts):
    from alerts import signals as alert_signals
    from tests.integration.engine_helpers import add_observation, zone_matches

    with session_factory() as s:
        zones = zone_matches(s)
        oid = add_observation(s, source="post", category="flood", zone="B", author="a", observed_at=NOW)
        signal = alert_signals.SignalIn(observation_id=oid, source="post", category="flood", confidence=0.9,
                                        author_key="a", observed_at=NOW, zones=[zones["B"], zones["P1"]])
        alert_signals.record_and_lock(s, signals=[signal], rules=RULES)
        rows = s.execute(text("SELECT z.code, sg.weight FROM signals sg JOIN zones z ON z.id = sg.zone_id "
                              "WHERE sg.observation_id = :o ORDER BY z.code"), {"o": oid}).all()
        assert [tuple(r) for r in rows] == [("B", 1.0), ("P1", 1.0)]
        assert zone_locks(s) == {"P1"}  # floods count in precincts only
        s.rollback()
