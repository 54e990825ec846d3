"""A second place, London, set up from hand-made files with `tocsin place init`, then served through the same
HTTP API: posts and a utility report raise alerts in the right London borough, the L-shaped boundary (not
its box) is the jurisdiction, New York's names are not read, and schedules take London's time zone.

The boroughs are hand-drawn squares with known answers (not the real ones): Camden and Westminster one
above the other, Islington east of Westminster, so the boundary is an L and its box's north-east corner
lies outside it.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import box, mapping
from sqlalchemy import text
from typer.testing import CliRunner

pytestmark = [pytest.mark.integration, pytest.mark.committing]

BOROUGHS = {  # code: (name, (west, south, east, north))
    "E09000007": ("Camden", (-0.20, 51.52, -0.12, 51.58)),
    "E09000033": ("Westminster", (-0.20, 51.48, -0.12, 51.52)),
    "E09000019": ("Islington", (-0.12, 51.48, -0.04, 51.52)),
}
OUTSIDE_THE_L = (-0.08, 51.55)  # inside the boundary's box, outside the boundary
IN_CAMDEN = (-0.16, 51.55)


def _features(rows):
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": geom} for props, geom in rows]}


@pytest.fixture
def london_files(tmp_path):
    boroughs = _features([({"code": code, "name": name}, mapping(box(*b))) for code, (name, b) in BOROUGHS.items()])
    boundary = _features([({"name": "London (hand-drawn)"}, mapping(box(*b))) for _, b in BOROUGHS.values()])
    streets = _features([
        ({"name": "Upper Street"}, {"type": "LineString", "coordinates": [[-0.10, 51.49], [-0.10, 51.51]]}),
        ({"name": "Camden High Street"}, {"type": "LineString", "coordinates": [[-0.15, 51.53], [-0.15, 51.56]]}),
    ])
    paths = {"boundary": tmp_path / "boundary.geojson", "boroughs": tmp_path / "boroughs.geojson",
             "streets": tmp_path / "streets.geojson", "names": tmp_path / "names.csv",
             "rules": tmp_path / "rules.yaml"}
    paths["boundary"].write_text(json.dumps(boundary))
    paths["boroughs"].write_text(json.dumps(boroughs))
    paths["streets"].write_text(json.dumps(streets))
    paths["names"].write_text("name,alternates,lon,lat\nAngel,The Angel,-0.08,51.50\n"
                              "Camden Town,,-0.14,51.54\nSoho,,-0.135,51.5\n")
    return paths


@pytest.fixture
def cli(database_url, clean_db, monkeypatch):
    from tocsin.cli import app

    monkeypatch.setenv("TOCSIN_DATABASE_URL", database_url)

    def run(*args: str):
        result = CliRunner().invoke(app, [str(a) for a in args])
        return result.exit_code, result.output

    return run


def _init_london(cli, f, *extra):
    return cli("place", "init", "london", "--boundary", f["boundary"], "--timezone", "Europe/London",
               "--languages", "en", "--region", "GB-LND", "--layer", f"london_borough={f['boroughs']}:code",
               "--level", "london_borough=borough", "--names", f["names"], "--streets", f["streets"],
               "--rules-out", f["rules"], *extra)


@pytest.fixture
def london(cli, london_files, clean_db):
    """New York's names stored for the "new-york" place, then London set up (and active) by the CLI."""
    from shapely.geometry import box as bbox

    from db.session import make_sessionmaker, transaction
    from geo import gazetteer_store, places
    from geo.gazetteer import GazetteerEntry

    with transaction(make_sessionmaker(clean_db)) as session:
        places.save_place(session, place=places.Place("new-york", bbox(-74.3, 40.45, -73.65, 40.95),
                                                      "America/New_York", region="US-NY"))
        gazetteer_store.save_entries(session, place="new-york", entries=[
            GazetteerEntry("Brooklyn", "borough", bbox(-74.04, 40.57, -73.85, 40.74), source="nyc", region="US-NY")])
    code, out = _init_london(cli, london_files)
    assert code == 0, out
    return london_files


def _settings(settings, rules):
    return settings.model_copy(update={"rules_file": rules, "post_worker_process": False})


def _post(ext, author, text):
    created = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    return {"source": "partner", "external_id": ext, "author": author, "text": text, "created_at": created}


def _keys(engine):
    from accounts import keys
    from db.session import make_sessionmaker, transaction

    with transaction(make_sessionmaker(engine)) as session:
        utility = keys.add_utility(session, name="London Gas")
        return (keys.issue_key(session, role="utility", utility_id=utility.id),
                keys.issue_key(session, role="partner", label="london partner"))


def _alerts(engine):
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(text(
            "SELECT a.category, l.name, z.code FROM alerts a JOIN zones z ON z.id = a.zone_id "
            "JOIN zone_layers l ON l.id = z.layer_id")))


def test_init_loads_checks_and_activates_london(london, clean_db):
    from alerts.rules import load_rules
    from geo import places
    from geo.gazetteer_store import load_entries
    from db.session import make_sessionmaker

    with make_sessionmaker(clean_db)() as session:
        place = places.active_place(session)
        names = {e.name: e.kind for e in load_entries(session)}
        every = {e.name for e in load_entries(session, every_place=True)}
    assert place.name == "london" and place.timezone == "Europe/London" and place.region == "GB-LND"
    assert place.context == {"london_borough": "borough"}
    assert place.boundary.area == pytest.approx(3 * 0.08 * 0.04 + 0.08 * 0.02)  # the L, not its box
    # The boroughs became the geotagger's areas; the names and streets were loaded for London.
    assert names["Camden"] == names["Islington"] == "borough"
    assert names["Angel"] == "neighbourhood" and names["Upper Street"] == "street"
    assert "Brooklyn" not in names and "Brooklyn" in every
    rules = load_rules(london["rules"])
    assert {r.layer for r in rules} == {"london_borough"}


def test_checks_refuse_duplicate_codes_and_keep_nothing(cli, london_files, clean_db, tmp_path):
    bad = tmp_path / "dup.geojson"
    bad.write_text(json.dumps(_features([({"code": "E1", "name": "A"}, mapping(box(-0.2, 51.48, -0.12, 51.58))),
                                         ({"code": "E1", "name": "B"}, mapping(box(-0.12, 51.48, -0.04, 51.52)))])))
    code, out = cli("place", "init", "london", "--boundary", london_files["boundary"], "--timezone",
                    "Europe/London", "--layer", f"london_borough={bad}:code")
    assert code == 2, out
    assert "codes ['E1'] are not unique" in out and "nothing loaded" in out
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM places")).scalar() == 0
    code, out = cli("place", "init", "london", "--boundary", london_files["boundary"], "--timezone", "Europe/Lundun")
    assert code == 2 and "'Europe/Lundun' is not an IANA time zone" in out


def test_a_layer_short_of_the_boundary_is_a_warning(cli, london_files, clean_db, tmp_path):
    part = tmp_path / "part.geojson"
    part.write_text(json.dumps(_features([({"code": "E09000007", "name": "Camden"},
                                           mapping(box(*BOROUGHS["E09000007"][1])))])))
    code, out = cli("place", "init", "london", "--boundary", london_files["boundary"], "--timezone",
                    "Europe/London", "--layer", f"london_borough={part}:code")
    assert code == 0, out
    assert "warning: london_borough: covers 42.9% of the boundary" in out


def test_posts_and_reports_alert_in_the_right_london_borough(london, settings, clean_db):
    from fastapi.testclient import TestClient

    from tocsin.app import create_app

    utility_key, partner_key = _keys(clean_db)
    with TestClient(create_app(_settings(settings, london["rules"]))) as client:
        r = client.post("/v1/posts:batch", headers={"Authorization": f"Bearer {partner_key}"}, json=[
            _post("1", "a", "Flooding on Upper Street, water up to the kerb"),
            _post("2", "b", "Big flood in Islington right now, road closed"),
            _post("3", "c", "Flood near the Angel, cars stuck in water"),
            _post("4", "d", "Flooding in Brooklyn, basement full of water"),
        ])
        assert r.status_code == 200, r.text
        res = r.json()["results"]
        assert [x["located"] for x in res] == [True, True, True, False], res
        report = {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(IN_CAMDEN)},
                  "properties": {"external_id": "LG-1", "category": "gas_leak", "status": "reported"}}
        r = client.post("/v1/reports", headers={"Authorization": f"Bearer {utility_key}"}, json=report)
        assert r.status_code == 201, r.text
        assert r.json()["zones"]["london_borough"][0]["code"] == "E09000007"
    assert _alerts(clean_db) == [("flood", "london_borough", "E09000019"), ("gas_leak", "london_borough", "E09000007")]


def test_the_boundary_not_its_box_is_the_jurisdiction(london, settings, clean_db):
    from fastapi.testclient import TestClient

    from tocsin.app import create_app

    utility_key, _ = _keys(clean_db)

    def report(ext, lonlat):
        return {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(lonlat)},
                "properties": {"external_id": ext, "category": "power_outage", "status": "reported"}}

    with TestClient(create_app(_settings(settings, london["rules"]))) as client:
        auth = {"Authorization": f"Bearer {utility_key}"}
        corner = client.post("/v1/reports", headers=auth, json=report("NE", OUTSIDE_THE_L))
        manhattan = client.post("/v1/reports", headers=auth, json=report("NY", (-73.98, 40.75)))
        inside = client.post("/v1/reports", headers=auth, json=report("IN", IN_CAMDEN))
    assert corner.status_code == 422 and "outside the boundary of place 'london'" in corner.text, corner.text
    assert manhattan.status_code == 422, manhattan.text
    assert inside.status_code == 201, inside.text


def test_schedules_take_the_place_time_zone(london, cli, tmp_path, clean_db):
    csv = tmp_path / "responders.csv"
    csv.write_text("name,phone,coverage,tier,on_call\nAda,+44 20 7946 0958,london_borough:E09000007,1,"
                   "mon-fri 08:00-18:00\n")
    code, out = cli("responders", "import", csv)
    assert code == 0, out
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT timezone FROM coverage")).scalar() == "Europe/London"


def test_responders_added_through_the_api_take_the_place_time_zone(london, settings, clean_db):
    from fastapi.testclient import TestClient

    from accounts import operators
    from db.session import make_sessionmaker, transaction
    from tocsin.app import create_app

    with transaction(make_sessionmaker(clean_db)) as session:
        _, token = operators.add_operator(session, name="root", role="admin", now=datetime.now(UTC))
    admin = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(_settings(settings, london["rules"]))) as client:
        r = client.post("/v1/responders", headers=admin, json={"name": "Ada", "phone": "+44 20 7946 0958",
            "coverage": [{"layer": "london_borough", "zone": "E09000007", "on_call": "mon-fri 08:00-18:00"},
                         {"layer": "london_borough", "timezone": "Europe/Paris"}]})
        assert r.status_code == 201, r.text
        assert [c["timezone"] for c in r.json()["coverage"]] == ["Europe/London", "Europe/Paris"]


def test_place_use_switches_what_the_geotagger_reads(london, cli, clean_db):
    from db.session import make_sessionmaker
    from geo.gazetteer_store import IndexCache

    cache = IndexCache()
    with make_sessionmaker(clean_db)() as session:
        assert "Brooklyn" not in {e.name for e in cache.get(session).entries}
    code, out = cli("place", "use", "new-york")
    assert code == 0, out
    code, out = cli("place", "list")
    assert code == 0 and "* new-york" in out and "  london" in out, out
    with make_sessionmaker(clean_db)() as session:
        names = {e.name for e in cache.get(session).entries}
    assert "Brooklyn" in names and "Camden" not in names
    code, out = cli("place", "use", "paris")
    assert code == 2 and "place 'paris' is not set up" in out


def test_a_feed_import_takes_the_active_place_as_its_jurisdiction(london, cli, clean_db):
    """`reports import-feed` refuses outages outside the active place (London), naming it, not the configured
    box (New York's by default)."""
    from pathlib import Path

    from db.session import make_sessionmaker, transaction
    from accounts import keys

    with transaction(make_sessionmaker(clean_db)) as session:
        keys.add_utility(session, name="PG&E")
    feed = Path(__file__).resolve().parents[1] / "data" / "feeds" / "pge_1.json"
    code, out = cli("reports", "import-feed", "--format", "pge", feed, "--utility", "PG&E", "--bbox", "feed")
    assert code == 2, out
    assert "lie outside this Tocsin's jurisdiction" in out and "place 'london'" in out
