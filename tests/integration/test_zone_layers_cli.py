"""`tocsin zones load` without --code-field (an obvious code column, or an error naming the fields) and
`tocsin zones delete`, against the real database on hand-drawn files."""

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

pytestmark = [pytest.mark.integration, pytest.mark.committing]


def square(w, s, e, n):
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def write(path, rows):
    feats = [{"type": "Feature", "properties": props, "geometry": square(*b)} for props, b in rows]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


@pytest.fixture
def cli(database_url, session_factory, monkeypatch, settings):
    from tocsin.cli import app

    monkeypatch.setenv("TOCSIN_DATABASE_URL", database_url)
    monkeypatch.setenv("TOCSIN_RULES_FILE", str(settings.rules_file))

    def run(*args: str):
        result = CliRunner().invoke(app, list(args))
        return result.exit_code, result.output

    return run


def _codes(engine, layer):
    with engine.connect() as conn:
        return sorted(conn.execute(text("SELECT z.code || '=' || z.name FROM zones z JOIN zone_layers l ON "
                                        "l.id = z.layer_id WHERE l.name = :l"), {"l": layer}).scalars())


def test_an_obvious_code_column_is_used_and_said(cli, engine, tmp_path):
    path = write(tmp_path / "sectors.geojson", [
        ({"OBJECTID": 7, "SectorCode": "N1", "SectorName": "North"}, (-74.0, 40.75, -73.9, 40.8)),
        ({"OBJECTID": 9, "SectorCode": "S1", "SectorName": "South"}, (-74.0, 40.7, -73.9, 40.75))])
    code, out = cli("zones", "load", str(path), "--layer", "sector")
    assert code == 0, out
    assert "codes from field 'SectorCode'" in out
    assert _codes(engine, "sector") == ["N1=North", "S1=South"]


def test_no_obvious_code_column_is_an_error_naming_the_fields(cli, engine, tmp_path):
    path = write(tmp_path / "dup.geojson", [({"kind": "a", "label": "x"}, (-74.0, 40.75, -73.9, 40.8)),
                                           ({"kind": "a", "label": "x"}, (-74.0, 40.7, -73.9, 40.75))])
    code, out = cli("zones", "load", str(path), "--layer", "dup")
    assert code == 2 and "no obvious code field" in out and "'kind'" in out and "--code-field" in out
    assert _codes(engine, "dup") == []


def test_delete_a_layer(cli, engine, tmp_path):
    path = write(tmp_path / "z.geojson", [({"code": "Z1"}, (-74.0, 40.7, -73.9, 40.8))])
    assert cli("zones", "load", str(path), "--layer", "scratch")[0] == 0
    code, out = cli("zones", "delete", "scratch")
    assert code == 0 and "deleted with its 1 zones" in out
    assert _codes(engine, "scratch") == []
    code, out = cli("zones", "delete", "scratch")
    assert code == 2 and "zone layer 'scratch' is not loaded" in out


def test_a_layer_rules_count_in_needs_yes_and_one_with_alerts_is_kept(cli, engine, districts, session_factory):
    from tests.integration.dispatch_support import T0, open_alert

    code, out = cli("zones", "delete", "district")
    assert code == 2 and "rules count in layer 'district'" in out and "gas_leak_report" in out
    open_alert(session_factory, now=T0)
    code, out = cli("zones", "delete", "district", "--yes")
    assert code == 2 and "has alerts in its zones" in out
    assert len(_codes(engine, "district")) == 3
