"""A utility with a service territory, through the report writer against the real PostGIS: a lone report's
insert checks the territory itself (no statement of its own), a batch checks all of its reports' in one
statement, and either way a report outside gets its own 422 while its neighbours are stored."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from reports_support import add_utility, report
from sqlalchemy import text

pytestmark = [pytest.mark.integration, pytest.mark.committing]

RULES_PATH = Path(__file__).resolve().parents[1] / "data" / "rules.yaml"
BBOX = (-74.3, 40.45, -73.65, 40.95)
# District A of tests/conftest.py; district B, east of it, is outside.
TERRITORY = "MULTIPOLYGON(((-74 40.7,-73.95 40.7,-73.95 40.75,-74 40.75,-74 40.7)))"
INSIDE, OUTSIDE = [-73.975, 40.725], [-73.925, 40.725]


@pytest.fixture
def writer(session_factory, districts):
    from alerts.rules import load_rules
    from ingest.reports.writer import ReportWriter

    rules = load_rules(RULES_PATH)
    return ReportWriter(session_factory, rules=lambda: rules)


@pytest.fixture
def caller(session_factory):
    from accounts import keys

    key = add_utility(session_factory, "Territorial Gas", territory_wkt=TERRITORY)
    with session_factory() as session:
        return keys.authenticate(session, key=key)


@pytest.fixture
def checks(monkeypatch):
    """How many territory statements were sent (each call of locate.outside_territories is one or none)."""
    from ingest.reports import locate

    calls: list[int] = []
    real = locate.outside_territories
    monkeypatch.setattr(locate, "outside_territories", lambda session, reports: calls.append(len(reports)) or real(
        session, reports))
    return calls


def _subs(caller, *points, prefix="T"):
    from ingest.reports import service as reports
    from ingest.reports.schemas import ReportCreate

    now = datetime.now(UTC)
    return [reports.prepare(caller=caller, body=ReportCreate.model_validate(
        report({"type": "Point", "coordinates": p}, external_id=f"{prefix}{i}", category="gas_leak")),
        idempotency_key=None, jurisdiction_bbox=BBOX, now=now) for i, p in enumerate(points)]


def _stored(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(text("SELECT external_id FROM utility_reports")).scalars())


def test_a_lone_reports_insert_checks_the_territory(writer, caller, checks, engine):
    from ingest.errors import OutsideTerritory
    from ingest.reports.queries import ReportResult

    [inside] = writer.write_batch(_subs(caller, INSIDE))
    assert isinstance(inside, ReportResult) and inside.created
    assert checks == []  # the insert checked it
    [outside] = writer.write_batch(_subs(caller, OUTSIDE))
    assert isinstance(outside, OutsideTerritory)
    assert "lon -73.92500" in str(outside) and "'Territorial Gas'" in str(outside)
    assert _stored(engine) == ["T0"]
    # A retry of the stored report is found (200), after its territory is checked again.
    [again] = writer.write_batch(_subs(caller, INSIDE))
    assert isinstance(again, ReportResult) and not again.created and again.report.id == inside.report.id


def test_a_batch_checks_every_territory_in_one_statement(writer, caller, checks, engine):
    from ingest.errors import OutsideTerritory
    from ingest.reports.queries import ReportResult

    out = writer.write_batch(_subs(caller, INSIDE, OUTSIDE, INSIDE, OUTSIDE))
    assert [type(o) for o in out] == [ReportResult, OutsideTerritory, ReportResult, OutsideTerritory]
    assert checks == [4]
    assert _stored(engine) == ["T0", "T2"]
    assert all(o.alerts_changed for o in out[::2])  # the gas leaks inside opened their alerts


def test_moving_a_report_out_of_the_territory_is_422_and_changes_nothing(client, session_factory):
    from reports_support import auth

    key = add_utility(session_factory, "Territorial Power", territory_wkt=TERRITORY)
    rid = client.post("/v1/reports", headers=auth(key), json=report(
        {"type": "Point", "coordinates": INSIDE}, external_id="M1")).json()["id"]
    moved = client.patch(f"/v1/reports/{rid}", headers=auth(key), json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": OUTSIDE}, "properties": {}})
    assert moved.status_code == 422
    assert "outside the service territory of utility 'Territorial Power'" in moved.json()["detail"]
    assert client.get(f"/v1/reports/{rid}", headers=auth(key)).json()["geometry"]["coordinates"] == INSIDE


def test_the_territory_is_checked_on_its_pieces_which_follow_every_change(writer, caller, engine):
    """The pieces (migration 0026) are the territory's, whatever changes it: redrawn, detailed, removed."""
    from ingest.errors import OutsideTerritory
    from ingest.reports.queries import ReportResult

    def redraw(sql: str) -> list[int]:
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE utilities SET territory = {sql} WHERE id = :u"), {"u": caller.utility_id})
            return list(conn.execute(text("SELECT ST_NPoints(geom) FROM utility_territory_pieces "
                                          "WHERE utility_id = :u"), {"u": caller.utility_id}).scalars())

    def write(point, prefix):
        [out] = writer.write_batch(_subs(caller, point, prefix=prefix))
        return out.report.external_id if isinstance(out, ReportResult) and out.created else out

    district_b = "MULTIPOLYGON(((-73.95 40.7,-73.9 40.7,-73.9 40.75,-73.95 40.75,-73.95 40.7)))"
    assert redraw(f"ST_GeomFromText('{district_b}', 4326)") == [5]
    assert isinstance(write(INSIDE, "A"), OutsideTerritory)  # district A is no longer in it
    assert write(OUTSIDE, "B") == "B0"
    # A detailed outline (a circle of 2,400 vertices around district A's point) is cut into small pieces.
    pieces = redraw("ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(-73.975, 40.725), 4326), 0.01, 600))")
    assert len(pieces) > 10 and max(pieces) <= 128
    assert isinstance(write(OUTSIDE, "C"), OutsideTerritory)
    assert write(INSIDE, "E") == "E0"
    # Removed: the key's cached flag still says "has a territory"; the insert finds no pieces and lets it in.
    assert redraw("NULL") == []
    assert write(OUTSIDE, "D") == "D0"
