"""`tocsin zones load`: CRS handling, repair, rejection, and known containment, on hand-drawn files."""

import json

import geopandas as gpd
import pytest
from shapely.geometry import Point, Polygon
from typer.testing import CliRunner

from tocsin.cli import app

# The CLI, on an engine of its own.
pytestmark = [pytest.mark.integration, pytest.mark.committing]


def box(w, s, e, n):
    return Polygon([(w, s), (e, s), (e, n), (w, n)])


@pytest.fixture
def cli(database_url, clean_db, monkeypatch):
    monkeypatch.setenv("TOCSIN_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args))

    return run


def match(engine, lon, lat, layer):
    from geo.match_postgis import match_zones
    from db.session import make_sessionmaker

    with make_sessionmaker(engine)() as session:
        return sorted(m.code for m in match_zones(session, geometry=Point(lon, lat)) if m.layer == layer)


def write_geojson(path, features):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def feature(code, geometry):
    return {"type": "Feature", "properties": {"code": code, "label": f"Zone {code}"}, "geometry": geometry}


def test_hand_drawn_polygons_have_known_containment(cli, clean_db, tmp_path):
    frame = gpd.GeoDataFrame(
        {"code": ["W", "E"], "label": ["West", "East"]},
        geometry=[box(-74.0, 40.7, -73.95, 40.75), box(-73.95, 40.7, -73.9, 40.75)], crs="EPSG:4326",
    )
    path = tmp_path / "zones.geojson"
    frame.to_file(path, driver="GeoJSON")
    r = cli("zones", "load", str(path), "--layer", "sector", "--code-field", "code", "--name-field", "label")
    assert r.exit_code == 0, r.output
    assert "inserted 2" in r.output
    assert match(clean_db, -73.97, 40.72, "sector") == ["W"]
    assert match(clean_db, -73.92, 40.72, "sector") == ["E"]
    assert match(clean_db, -73.80, 40.72, "sector") == []
    # Loading again updates in place, by (layer, code).
    r = cli("zones", "load", str(path), "--layer", "sector", "--code-field", "code")
    assert "inserted 0, updated 2" in r.output


def test_state_plane_feet_input_is_reprojected(cli, clean_db, tmp_path):
    frame = gpd.GeoDataFrame({"code": ["SP"]}, geometry=[box(-73.99, 40.74, -73.97, 40.76)], crs="EPSG:4326")
    path = tmp_path / "stateplane.gpkg"
    frame.to_crs("EPSG:2263").to_file(path, driver="GPKG")
    assert gpd.read_file(path).crs.to_epsg() == 2263
    r = cli("zones", "load", str(path), "--layer", "sp", "--code-field", "code")
    assert r.exit_code == 0, r.output
    assert match(clean_db, -73.98, 40.75, "sp") == ["SP"]
    assert match(clean_db, -73.96, 40.75, "sp") == []


def test_self_intersecting_polygon_is_repaired_and_reported(cli, clean_db, tmp_path):
    bowtie = {"type": "Polygon", "coordinates": [[[-74.0, 40.7], [-73.9, 40.8], [-73.9, 40.7], [-74.0, 40.8],
                                                 [-74.0, 40.7]]]}
    path = write_geojson(tmp_path / "bowtie.geojson", [feature("BT", bowtie)])
    r = cli("zones", "load", str(path), "--layer", "bow", "--code-field", "code")
    assert r.exit_code == 0, r.output
    assert "repaired feature 0: Self-intersection" in r.output
    assert "repaired 1" in r.output
    # Both lobes of the bow tie survive the repair.
    assert match(clean_db, -73.99, 40.75, "bow") == ["BT"]
    assert match(clean_db, -73.91, 40.75, "bow") == ["BT"]


def test_empty_geometry_is_rejected_with_its_index(cli, clean_db, tmp_path):
    good = {"type": "Polygon", "coordinates": [[[-74.0, 40.7], [-73.9, 40.7], [-73.9, 40.8], [-74.0, 40.7]]]}
    path = write_geojson(tmp_path / "empty.geojson", [
        feature("OK", good), feature("EMPTY", {"type": "Polygon", "coordinates": []}), feature("NULL", None),
    ])
    r = cli("zones", "load", str(path), "--layer", "emp", "--code-field", "code")
    assert r.exit_code == 0, r.output
    assert "rejected feature 1: empty geometry" in r.output
    assert "rejected feature 2: empty geometry" in r.output
    assert "inserted 1" in r.output and "rejected 2" in r.output


def test_file_without_crs_needs_assume_crs(cli, clean_db, tmp_path):
    frame = gpd.GeoDataFrame({"code": ["N"]}, geometry=[box(-73.99, 40.74, -73.97, 40.76)])  # no CRS
    path = tmp_path / "nocrs.shp"
    frame.to_file(path)
    assert gpd.read_file(path).crs is None
    r = cli("zones", "load", str(path), "--layer", "nocrs", "--code-field", "code")
    assert r.exit_code == 2
    assert "declares no CRS" in r.output and "--assume-crs" in r.output
    r = cli("zones", "load", str(path), "--layer", "nocrs", "--code-field", "code", "--assume-crs", "EPSG:4326")
    assert r.exit_code == 0, r.output
    assert match(clean_db, -73.98, 40.75, "nocrs") == ["N"]


def test_unknown_code_field_is_named(cli, tmp_path):
    path = write_geojson(tmp_path / "z.geojson", [feature("A", {"type": "Polygon", "coordinates": [
        [[-74.0, 40.7], [-73.9, 40.7], [-73.9, 40.8], [-74.0, 40.7]]]})])
    r = cli("zones", "load", str(path), "--layer", "x", "--code-field", "nope")
    assert r.exit_code == 2
    assert "--code-field 'nope' is not a field" in r.output


def test_a_large_layer_shows_progress_on_stderr_and_its_summary_once(cli, clean_db, tmp_path):
    from tests.integration.progress_support import progress_lines

    squares = [feature(f"G{i}", box(-74.0 + i * 0.001, 40.7, -73.9995 + i * 0.001, 40.7005).__geo_interface__)
               for i in range(600)]
    path = write_geojson(tmp_path / "grid.geojson", squares)
    r = cli("zones", "load", str(path), "--layer", "grid", "--code-field", "code")
    assert r.exit_code == 0, r.output
    # Zones are written 500 at a time: a line at the start, one per chunk, and the final one.
    assert progress_lines(r.stderr, "zones grid") == [
        "zones grid: 0/600 (0%)", "zones grid: 500/600 (83%)", "zones grid: 600/600 (100%) in …"]
    assert r.stdout == "layer grid: read 600, inserted 600, updated 0, repaired 0, rejected 0\n"
    assert r.output.count("layer grid:") == 1
