"""Group commit of utility reports (ingest.reports.writer) against the real PostGIS.

Batches are built by calling `write_batch` with several submissions, as the writer thread does with the
reports that arrived during a commit; one test drives real concurrent HTTP requests through the app.
Faults are real: a CHECK constraint a report breaks, and a trigger that kills its own database session
(a lost connection in the middle of a batch). Both are dropped again after their test.
"""

import threading
import time
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

import pytest
from reports_support import auth, report
from sqlalchemy import text

RULES_PATH = Path(__file__).resolve().parents[1] / "data" / "rules.yaml"
BBOX = (-74.3, 40.45, -73.65, 40.95)
# Points in the hand-drawn districts A, B and C (tests/conftest.py).
IN = {"A": [-73.975, 40.725], "B": [-73.925, 40.725], "C": [-73.95, 40.775]}

# The writer commits from a thread of its own, and tests read what it committed on other connections.
pytestmark = [pytest.mark.integration, pytest.mark.committing, pytest.mark.pooled]


def _gas(external_id: str, district: str, **props) -> dict:
    return report({"type": "Point", "coordinates": IN[district]}, external_id=external_id, category="gas_leak",
                  **props)


@pytest.fixture
def writer(session_factory, districts):
    from alerts.rules import load_rules
    from ingest.reports.writer import ReportWriter

    rules = load_rules(RULES_PATH)
    return ReportWriter(session_factory, rules=lambda: rules)


@pytest.fixture
def caller(session_factory, utility_key):
    from accounts import keys

    with session_factory() as session:
        return keys.authenticate(session, key=utility_key)


def _subs(caller, bodies, keys_=None):
    from ingest.reports import service as reports
    from ingest.reports.schemas import ReportCreate

    now = datetime.now(UTC)
    return [reports.prepare(caller=caller, body=ReportCreate.model_validate(b), idempotency_key=(keys_ or {}).get(i),
                            jurisdiction_bbox=BBOX, now=now) for i, b in enumerate(bodies)]


def _scalar(engine, sql, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def _alert_zones(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(text(
            "SELECT z.code FROM alerts a JOIN zones z ON z.id = a.zone_id")).scalars())


@contextmanager
def _ddl(engine, create: list[str], drop: list[str]):
    with engine.begin() as conn:
        for sql in create:
            conn.execute(text(sql))
    try:
        yield
    finally:
        with engine.begin() as conn:
            for sql in drop:
                conn.execute(text(sql))


def _forbidden_cause(engine):
    return _ddl(engine, ["ALTER TABLE utility_reports ADD CONSTRAINT test_forbidden_cause "
                         "CHECK (cause IS DISTINCT FROM 'forbidden-by-test')"],
                ["ALTER TABLE utility_reports DROP CONSTRAINT IF EXISTS test_forbidden_cause"])


def test_a_batch_is_one_transaction_and_each_report_gets_its_own_result(writer, caller, engine):
    from ingest.reports.queries import ReportResult

    out = writer.write_batch(_subs(caller, [_gas("G1", "A"), _gas("G2", "B"), report(external_id="P1")]))
    assert all(isinstance(o, ReportResult) and o.created for o in out)
    assert [[(z.layer, z.code) for z in o.zones if z.layer == "district"] for o in out] == \
        [[("district", "A")], [("district", "B")], [("district", "A")]]
    assert len({o.report.id for o in out}) == 3
    # Both gas leaks opened their own alert (immediate rule); the outage report joined none.
    assert _alert_zones(engine) == ["A", "B"]
    assert out[0].alerts_changed and out[1].alerts_changed and out[2].alerts_changed == []
    assert out[0].alerts_changed != out[1].alerts_changed
    assert _scalar(engine, "SELECT count(*) FROM outbox_events") == 2
    assert (writer.batches, writer.reports) == (1, 3)


def test_a_batch_takes_its_zone_locks_in_its_insert(writer, caller, monkeypatch):
    """No statement of its own for the locks (a round trip a batch): INSERT_REPORTS is the only one taking any."""
    from db import raw
    from ingest.reports import queries

    sent: list[str] = []
    real = raw.execute
    monkeypatch.setattr(raw, "execute", lambda session, sql, params, **kw: sent.append(sql) or real(
        session, sql, params, **kw))
    out = writer.write_batch(_subs(caller, [_gas("G1", "A"), _gas("G2", "B")]))
    assert all(o.alerts_changed for o in out)  # both opened an alert: their zones were evaluated
    assert [sql for sql in sent if "pg_advisory_xact_lock" in sql] == [queries.INSERT_REPORTS]


def test_a_report_that_breaks_a_constraint_fails_alone(writer, caller, engine):
    from db.errors import InvalidInput
    from ingest.reports.queries import ReportResult

    with _forbidden_cause(engine):
        out = writer.write_batch(_subs(caller, [_gas("G1", "A"), _gas("BAD", "B", cause="forbidden-by-test"),
                                                _gas("G3", "C")]))
    assert isinstance(out[0], ReportResult) and isinstance(out[2], ReportResult)
    assert isinstance(out[1], InvalidInput) and "test_forbidden_cause" in out[1].message
    assert _scalar(engine, "SELECT count(*) FROM utility_reports WHERE external_id = 'BAD'") == 0
    assert _scalar(engine, "SELECT count(*) FROM observations WHERE external_id LIKE :x", x="%:BAD") == 0
    # Its neighbours' alerts and events exist; none of its own does.
    assert _alert_zones(engine) == ["A", "C"]
    assert _scalar(engine, "SELECT count(*) FROM outbox_events") == 2


@pytest.mark.parametrize("held", [False, True], ids=["pooled", "held"])
def test_a_lost_connection_mid_batch_leaves_each_report_whole_or_absent(writer, caller, engine, held):
    """`held`: as the writer thread writes, on one connection held across batches (db.held), which the lost one
    must not outlive: the next batch gets another."""
    from db.outage import is_unavailable
    from ingest.reports.queries import ReportResult

    kill = ["""CREATE FUNCTION test_kill_session() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF NEW.cause = 'kill-the-session' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
                 RETURN NEW;
               END $$""",
            "CREATE TRIGGER test_kill_session BEFORE INSERT ON utility_reports FOR EACH ROW "
            "EXECUTE FUNCTION test_kill_session()"]
    with (writer.holding() if held else nullcontext()):
        with _ddl(engine, kill, ["DROP TRIGGER IF EXISTS test_kill_session ON utility_reports",
                                 "DROP FUNCTION IF EXISTS test_kill_session()"]):
            out = writer.write_batch(_subs(caller, [_gas("G1", "A"), _gas("KILL", "B", cause="kill-the-session"),
                                                    _gas("G3", "C")]))
        [after] = writer.write_batch(_subs(caller, [_gas("G4", "B")]))  # B: the lost report left no alert there
    assert isinstance(after, ReportResult)
    assert isinstance(out[0], ReportResult) and isinstance(out[2], ReportResult)
    assert isinstance(out[1], Exception) and is_unavailable(out[1])  # answered 503
    for o in (out[0], out[2]):
        assert _scalar(engine, "SELECT count(*) FROM utility_reports WHERE id = :id", id=o.report.id) == 1
    assert _scalar(engine, "SELECT count(*) FROM utility_reports WHERE external_id = 'KILL'") == 0
    assert _scalar(engine, "SELECT count(*) FROM observations WHERE external_id LIKE :x", x="%:KILL") == 0
    assert _alert_zones(engine) == ["A", "B", "C"]


def test_repeats_inside_one_batch_are_idempotent(writer, caller, engine):
    from db.errors import Conflict
    from ingest.reports.queries import ReportResult

    same = _gas("G1", "A")
    out = writer.write_batch(_subs(caller, [same, same, _gas("G2", "A"), _gas("OTHER", "B")],
                                   {2: "key-1", 3: "key-1"}))
    assert isinstance(out[0], ReportResult) and out[0].created
    assert isinstance(out[1], ReportResult) and not out[1].created and out[1].report.id == out[0].report.id
    assert isinstance(out[2], ReportResult) and out[2].created
    assert isinstance(out[3], Conflict) and "Idempotency-Key 'key-1'" in out[3].message
    assert _scalar(engine, "SELECT count(*) FROM utility_reports") == 2
    assert _scalar(engine, "SELECT count(*) FROM observations") == 2
    # A retry of the batch later answers from what is stored.
    again = writer.write_batch(_subs(caller, [same, _gas("G2", "A")], {1: "key-1"}))
    assert [(o.created, o.report.id) for o in again] == [(False, out[0].report.id), (False, out[2].report.id)]


def _second_key(session_factory, caller):
    """Another key of the caller's utility, as its Caller, and a function that revokes it."""
    from accounts import keys
    from db.session import transaction

    with transaction(session_factory) as session:
        other = keys.authenticate(session, key=keys.issue_key(session, role="utility", utility_id=caller.utility_id))

    def revoke():
        with transaction(session_factory) as session:
            keys.revoke_key(session, key_id=other.key_id, now=datetime.now(UTC))
    return other, revoke


@pytest.mark.parametrize("batch", [True, False], ids=["in a batch", "alone"])
def test_a_key_revoked_after_its_lookup_stores_nothing_and_its_retry_is_refused(
        writer, caller, engine, session_factory, batch):
    # The API remembers utility keys (accounts.key_cache); the insert itself checks the key is still live.
    from accounts.errors import BadApiKey
    from ingest.reports.queries import ReportResult

    other, revoke = _second_key(session_factory, caller)
    stored = writer.write_batch(_subs(other, [_gas("KEPT", "C")]))[0]
    assert isinstance(stored, ReportResult) and stored.created
    revoke()
    bodies = [_gas("G1", "A"), _gas("LATE", "B"), _gas("KEPT", "C")] if batch else [_gas("LATE", "B")]
    # In a batch: the live key's report, then the revoked key's new one and its retry of one stored before.
    subs = _subs(caller, bodies[:1]) + _subs(other, bodies[1:]) if batch else _subs(other, bodies)
    out = writer.write_batch(subs)
    refused = out[1:] if batch else out
    assert all(isinstance(o, BadApiKey) and o.message == "invalid or revoked API key" for o in refused), refused
    assert not batch or (isinstance(out[0], ReportResult) and out[0].created)
    assert _scalar(engine, "SELECT count(*) FROM observations WHERE external_id LIKE :x", x="%:LATE") == 0
    assert _alert_zones(engine) == (["A", "C"] if batch else ["C"])  # none for the refused one in B


def test_many_reports_of_one_incident_in_one_batch_make_one_alert(writer, caller, engine):
    out = writer.write_batch(_subs(caller, [_gas(f"G{i}", "A") for i in range(5)]))
    assert _scalar(engine, "SELECT count(*) FROM alerts") == 1
    alert_id = _scalar(engine, "SELECT id FROM alerts")
    assert all(o.alerts_changed == [alert_id] for o in out)
    assert _scalar(engine, "SELECT evidence_count FROM alerts") == 5
    # A new alert's evidence is counted without reading it back (alerts.observe_write.open_and_write): the counts
    # it wrote and sent agree with the rows.
    assert _scalar(engine, "SELECT count(*) FROM alert_evidence WHERE alert_id = :a", a=alert_id) == 5
    assert _scalar(engine, "SELECT payload->'evidence_by_source' FROM outbox_events WHERE alert_id = :a",
                   a=alert_id) == {"utility_report": 5}


def test_two_writers_at_once_still_make_one_alert_per_incident(session_factory, districts, caller, engine):
    """Two API processes' writers, each with a batch for the same zones, committing at the same time."""
    from alerts.rules import load_rules
    from ingest.reports.writer import ReportWriter

    rules = load_rules(RULES_PATH)
    writers = [ReportWriter(session_factory, rules=lambda: rules) for _ in range(2)]
    batches = [_subs(caller, [_gas(f"W{w}-{d}", d) for d in "ABC"]) for w in range(2)]
    start = threading.Barrier(2)
    outs: list = [None, None]

    def run(i):
        start.wait()
        outs[i] = writers[i].write_batch(batches[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(o is not None and all(r.created for r in o) for o in outs)
    assert _alert_zones(engine) == ["A", "B", "C"]
    assert _scalar(engine, "SELECT sum(evidence_count) FROM alerts") == 6


def test_concurrent_http_requests_share_commits_and_fail_alone(client, utility_key, engine):
    """Real concurrent POSTs through the app: the writer batches what arrives together; the report that
    breaks a constraint gets 422 and its neighbours 201."""
    bodies = [_gas(f"H{i}", "ABC"[i % 3]) for i in range(11)] + [_gas("HBAD", "B", cause="forbidden-by-test")]
    statuses: dict[str, int] = {}
    start = threading.Barrier(len(bodies))

    def post(body):
        start.wait()
        r = client.post("/v1/reports", json=body, headers=auth(utility_key))
        statuses[body["properties"]["external_id"]] = r.status_code
        if r.status_code != 201:
            statuses["detail"] = r.json()["detail"]

    with _forbidden_cause(engine):
        threads = [threading.Thread(target=post, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    detail = statuses.pop("detail")
    assert statuses.pop("HBAD") == 422 and "test_forbidden_cause" in detail
    assert set(statuses.values()) == {201} and len(statuses) == 11
    assert _scalar(engine, "SELECT count(*) FROM utility_reports") == 11
    assert _alert_zones(engine) == ["A", "B", "C"]
    writer = client.app.state.report_writer
    assert writer.reports == 12 and writer.batches <= 12


def test_stored_raw_body_and_hash_are_those_of_the_body_as_dumped(writer, caller, engine, session_factory):
    # prepare dumps the body once (canonical_json) for the digest and the observation's raw jsonb: both must
    # stay what a plain dump of the body gives, or retries of reports stored before would read as conflicts.
    import hashlib
    import json

    from alerts.rules import load_rules
    from ingest.reports import service as reports
    from ingest.reports.schemas import ReportCreate

    bodies = [_gas("RAW1", "A", description="Gasgeruch, Straße – «fuite»", customers_affected=3),
              report({"type": "Polygon", "coordinates": [[[-73.98, 40.72], [-73.97, 40.72], [-73.97, 40.73],
                                                          [-73.98, 40.72]]]}, external_id="RAW2", cause="ü 1.5")]
    out = writer.write_batch(_subs(caller, bodies[:1]))
    with session_factory() as session:  # the single-report path (the batch endpoint's)
        single = reports.create_report(session, caller=caller, body=ReportCreate.model_validate(bodies[1]),
                                       idempotency_key=None, rules=load_rules(RULES_PATH), jurisdiction_bbox=BBOX,
                                       now=datetime.now(UTC))
        session.commit()
    for body, result in zip(bodies, [out[0], single], strict=True):
        dumped = ReportCreate.model_validate(body).model_dump(mode="json")
        expected_hash = hashlib.sha256(json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        assert result.report.body_hash == expected_hash
        assert _scalar(engine, "SELECT body_hash FROM utility_reports WHERE id = :id", id=result.report.id) == \
            expected_hash
        assert _scalar(engine, "SELECT o.raw = CAST(:raw AS jsonb) FROM observations o JOIN utility_reports r "
                               "ON r.observation_id = o.id WHERE r.id = :id", raw=json.dumps(dumped),
                       id=result.report.id)


def _blind_read(monkeypatch):
    """READ no longer sees unresolved alerts: an opening then meets an alert its read missed, which no real
    writer can do (every opener holds the zone's lock)."""
    from alerts import observe_sql

    blind = observe_sql.READ.replace("AND al.state <> 'resolved'", "AND al.state <> 'resolved' AND false")
    assert blind != observe_sql.READ
    monkeypatch.setattr(observe_sql, "READ", blind)


def test_an_opening_lost_to_an_alert_its_read_missed_stores_the_report_once_without_orphans(writer, caller,
                                                                                          engine, monkeypatch):
    """An opening that loses to an alert its read missed (no real writer can: every opener holds the zone's
    lock) is seen at its insert's answer and evaluated once more (here, with the read still blind, it opens
    nothing): the report is stored once, with no orphan rows and no error, and its neighbours go on."""
    from ingest.reports.queries import ReportResult

    [first] = writer.write_batch(_subs(caller, [_gas("G1", "A")]))
    assert isinstance(first, ReportResult) and first.alerts_changed
    _blind_read(monkeypatch)
    [lost] = writer.write_batch(_subs(caller, [_gas("G2", "A")]))
    assert isinstance(lost, ReportResult) and lost.created and lost.alerts_changed == [], lost
    out = writer.write_batch(_subs(caller, [_gas("G3", "A"), _gas("G4", "B")]))
    assert isinstance(out[0], ReportResult) and out[0].alerts_changed == [], out
    assert isinstance(out[1], ReportResult) and out[1].alerts_changed, out
    for stored in ("G1", "G2", "G3", "G4"):
        assert _scalar(engine, "SELECT count(*) FROM observations WHERE external_id LIKE :x", x=f"%:{stored}") == 1
    assert _alert_zones(engine) == ["A", "B"]
    assert _scalar(engine, "SELECT count(*) FROM outbox_events") == 2
    assert _scalar(engine, "SELECT count(*) FROM alert_evidence") == 2


def test_the_writer_thread_holds_its_connection_while_busy_and_gives_it_back_when_idle(database_url, districts,
                                                                                      caller, engine):
    """Between batches the writer thread keeps its connection (db.held); after `idle_release_s` with no report it
    is back in the pool, and the next report checks one out again."""
    from alerts.rules import load_rules
    from db.session import make_engine, make_sessionmaker
    from ingest.reports.queries import ReportResult
    from ingest.reports.writer import ReportWriter

    rules = load_rules(RULES_PATH)
    own = make_engine(database_url, pool_size=1, generic_plans=True)
    writer = ReportWriter(make_sessionmaker(own), rules=lambda: rules, idle_release_s=3.0)
    writer.start()
    try:
        for i, district in enumerate("AB"):
            assert isinstance(writer.submit(_subs(caller, [_gas(f"H{i}", district)])[0]).result(10), ReportResult)
        assert own.pool.checkedout() == 1  # held: within 3 s of the last batch
        deadline = time.monotonic() + 15
        while own.pool.checkedout() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert own.pool.checkedout() == 0
        assert isinstance(writer.submit(_subs(caller, [_gas("H2", "C")])[0]).result(10), ReportResult)
    finally:
        writer.stop()
        own.dispose()
    assert own.pool.checkedout() == 0  # stopping gave it back too
    assert _alert_zones(engine) == ["A", "B", "C"]
