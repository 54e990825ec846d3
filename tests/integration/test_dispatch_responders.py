"""Responders: CSV import (service and CLI), and the admin CRUD API, on the real PostGIS."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from accounts import operators
from db.errors import InvalidInput
from db.session import transaction
from dispatch import responders as responder_service

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)

GOOD_CSV = """name,phone,coverage,tier,on_call
Ana Ortiz,(212) 555-0101,district:A district:B,1,mon-fri 08:00-18:00
Ana Ortiz,+1 212 555 0101,district:*,2,
Ben Li,212-555-0102,precinct:P1,1,sat-sun 22:00-06:00
"""


def coverage_of(factory) -> dict[str, list[tuple]]:
    with factory() as session:
        rows = session.execute(text(
            "SELECT r.name, r.phone, c.layer, z.code, c.tier, c.on_call FROM coverage c "
            "JOIN responders r ON r.id = c.responder_id LEFT JOIN zones z ON z.id = c.zone_id ORDER BY c.id")).all()
    out: dict[str, list[tuple]] = {}
    for name, phone, layer, code, tier, on_call in rows:
        out.setdefault(f"{name} {phone}", []).append((layer, code, tier, on_call))
    return out


def test_import_normalises_phones_and_groups_rows_by_responder(session_factory, districts):
    with transaction(session_factory) as session:
        result = responder_service.import_csv(session, data=GOOD_CSV, now=NOW)
    assert (result.created, result.updated, result.coverage_rows, result.errors) == (2, 0, 4, [])
    assert coverage_of(session_factory) == {
        "Ana Ortiz +12125550101": [("district", "A", 1, "mon-fri 08:00-18:00"), ("district", "B", 1,
                                    "mon-fri 08:00-18:00"), ("district", None, 2, None)],
        "Ben Li +12125550102": [("precinct", "P1", 1, "sat-sun 22:00-06:00")],
    }


def test_reimport_updates_and_replaces_coverage(session_factory, districts):
    with transaction(session_factory) as session:
        responder_service.import_csv(session, data=GOOD_CSV, now=NOW)
    with transaction(session_factory) as session:
        result = responder_service.import_csv(
            session, data="name,phone,coverage,tier,on_call\nAna O.,2125550101,district:C,1,\n", now=NOW)
    assert (result.created, result.updated) == (0, 1)
    covered = coverage_of(session_factory)
    assert covered["Ana O. +12125550101"] == [("district", "C", 1, None)]
    assert covered["Ben Li +12125550102"] == [("precinct", "P1", 1, "sat-sun 22:00-06:00")]


BAD_CSV = """name,phone,coverage,tier,on_call
Ana,(212) 555-0101,district:A,1,
Bad Phone,555-01,district:A,1,
Bad Zone,2125550103,district:Z,1,
Bad Tier,2125550104,district:A,zero,
Bad Hours,2125550105,district:A,1,mon-fri 8am-6pm
No Layer,2125550106,nowhere:*,1,
"""


def test_invalid_rows_are_reported_by_line_and_nothing_is_imported(session_factory, districts):
    with transaction(session_factory) as session:
        result = responder_service.import_csv(session, data=BAD_CSV, now=NOW)
    lines = {line: message for line, message in result.errors}
    assert sorted(lines) == [3, 4, 5, 6, 7]
    assert "'555-01'" in lines[3]
    assert "district:Z does not exist" in lines[4]
    assert "tier 'zero'" in lines[5]
    assert "'8am-6pm'" in lines[6]
    assert "layer 'nowhere' does not exist" in lines[7]
    assert coverage_of(session_factory) == {}


def test_skip_invalid_imports_the_good_rows(session_factory, districts):
    with transaction(session_factory) as session:
        result = responder_service.import_csv(session, data=BAD_CSV, now=NOW, skip_invalid=True)
    assert result.created == 1 and len(result.errors) == 5
    assert list(coverage_of(session_factory)) == ["Ana +12125550101"]


def test_csv_without_required_columns_is_refused(session_factory):
    with transaction(session_factory) as session, pytest.raises(InvalidInput, match="lacks column"):
        responder_service.import_csv(session, data="name,number\nAna,2125550101\n", now=NOW)


@pytest.mark.committing  # the CLI opens its own engine
def test_cli_import(session_factory, districts, database_url, tmp_path):
    from tocsin.cli import app

    runner = CliRunner()
    env = {"TOCSIN_DATABASE_URL": database_url, "TOCSIN_LOG_LEVEL": "WARNING"}
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(GOOD_CSV)
    bad.write_text(BAD_CSV)

    result = runner.invoke(app, ["responders", "import", str(bad)], env=env)
    assert result.exit_code == 2
    assert f"{bad}:3: phone '555-01'" in result.output
    assert "5 invalid row(s); nothing imported" in result.output

    result = runner.invoke(app, ["responders", "import", str(good)], env=env)
    assert result.exit_code == 0, result.output
    assert "2 created, 0 updated, 4 coverage rows" in result.output


# --- admin API -------------------------------------------------------------------------------


@pytest.fixture
def admin(session_factory):
    with transaction(session_factory) as session:
        _, token = operators.add_operator(session, name="root", role="admin", now=NOW)
        _, viewer = operators.add_operator(session, name="watcher", role="viewer", now=NOW)
    return {"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {viewer}"}


@pytest.mark.committing
def test_crud(client, admin):
    headers, _ = admin
    body = {"name": "Ana", "phone": "(212) 555-0101",
            "coverage": [{"layer": "district", "zone": "A"}, {"layer": "district", "tier": 2,
                                                              "on_call": "mon-fri 08:00-18:00"}]}
    r = client.post("/v1/responders", json=body, headers=headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["phone"] == "+12125550101" and created["opted_out"] is False
    assert [(c["layer"], c["zone"], c["tier"], c["on_call"]) for c in created["coverage"]] == [
        ("district", "A", 1, None), ("district", None, 2, "mon-fri 08:00-18:00")]
    assert r.headers["Location"] == f"/v1/responders/{created['id']}"

    r = client.patch(f"/v1/responders/{created['id']}", headers=headers,
                     json={"opted_out": True, "coverage": [{"layer": "precinct", "zone": "P1"}]})
    assert r.status_code == 200, r.text
    assert r.json()["opted_out"] is True and r.json()["coverage"][0]["zone"] == "P1"

    assert [x["name"] for x in client.get("/v1/responders", headers=headers).json()] == ["Ana"]
    assert client.delete(f"/v1/responders/{created['id']}", headers=headers).status_code == 204
    r = client.get(f"/v1/responders/{created['id']}", headers=headers)
    assert r.status_code == 404 and str(created["id"]) in r.json()["detail"]


@pytest.mark.parametrize("body, status, needle", [
    ({"name": "X", "phone": "555-01"}, 422, "'555-01'"),
    ({"name": "X", "phone": "2125550199", "coverage": [{"layer": "district", "zone": "Q"}]}, 422, "district:Q"),
    ({"name": "X", "phone": "2125550199", "coverage": [{"layer": "district", "on_call": "always"}]}, 422, "'always'"),
    ({"name": "X", "phone": "2125550199", "coverage": [{"layer": "district", "timezone": "Mars/Base"}]}, 422,
     "Mars/Base"),
    ({"name": "X", "phone": "2125550199", "coverage": [{"layer": "district", "tier": 0}]}, 422, "tier"),
])
@pytest.mark.committing
def test_bad_input_is_a_4xx_naming_the_value(client, admin, body, status, needle):
    r = client.post("/v1/responders", json=body, headers=admin[0])
    assert r.status_code == status, r.text
    assert needle in r.text


@pytest.mark.committing
def test_duplicate_phone_conflicts(client, admin):
    assert client.post("/v1/responders", json={"name": "A", "phone": "2125550101"}, headers=admin[0]).status_code == 201
    r = client.post("/v1/responders", json={"name": "B", "phone": "+1 212 555 0101"}, headers=admin[0])
    assert r.status_code == 409 and "+1 212 555 0101" in r.json()["detail"]


@pytest.mark.committing
def test_only_admins(client, admin):
    _, viewer = admin
    assert client.get("/v1/responders").status_code == 401
    r = client.get("/v1/responders", headers=viewer)
    assert r.status_code == 403 and "admin" in r.json()["detail"]


@pytest.mark.committing  # the CLI opens its own engine
def test_cli_import_of_many_shows_progress_and_its_summary_once(session_factory, districts, database_url, tmp_path,
                                                                caplog):
    import logging

    from tests.integration.progress_support import progress_lines
    from tocsin.cli import app

    caplog.set_level(logging.INFO, logger=responder_service.__name__)
    path = tmp_path / "many.csv"
    path.write_text("name,phone,coverage,tier,on_call\n" + "".join(
        f"Responder {i},+1 212 555 {i:04d},district:A,1,\n" for i in range(250)))
    result = CliRunner().invoke(app, ["responders", "import", str(path)],
                                env={"TOCSIN_DATABASE_URL": database_url, "TOCSIN_LOG_LEVEL": "INFO"})
    assert result.exit_code == 0, result.output
    # A line at the start, at every tenth of the rows written, and at the end.
    assert progress_lines(result.stderr, "responder rows") == [
        f"responder rows: {n}/250 ({n * 100 // 250}%)" for n in range(0, 250, 25)] + [
        "responder rows: 250/250 (100%) in …"]
    assert result.stdout == "responders: 250 created, 0 updated, 250 coverage rows, 0 rows skipped\n"
    assert result.output.count("250 created") == 1
    # Not a log line per responder: 250 of them would bury the progress and the summary.
    assert [r.getMessage() for r in caplog.records if r.name == responder_service.__name__] == []
    assert logging.getLogger(responder_service.__name__).level == logging.INFO  # as it was before the import


@pytest.mark.committing  # the CLI opens its own engine
def test_cli_import_refused_shows_no_row_imported(session_factory, districts, database_url, tmp_path):
    from tests.integration.progress_support import progress_lines
    from tocsin.cli import app

    path = tmp_path / "many.csv"
    path.write_text("name,phone,coverage,tier,on_call\n" + "".join(
        f"Responder {i},+1 212 555 {i:04d},district:A,1,\n" for i in range(249)) + "Nobody,555-01,district:A,1,\n")
    result = CliRunner().invoke(app, ["responders", "import", str(path)],
                                env={"TOCSIN_DATABASE_URL": database_url, "TOCSIN_LOG_LEVEL": "WARNING"})
    assert result.exit_code == 2, result.output
    assert progress_lines(result.stderr, "responder rows") == [
        "responder rows: 0/250 (0%)", "responder rows: 0/250 (0%) in …"]
    assert "1 invalid row(s); nothing imported" in result.stderr and result.stdout == ""
