"""Street import through `tocsin gazetteer import-streets/import-landmarks` on the real PostGIS, and one
intersection post through the post pipeline, in the worker process as deployed (hand-drawn grid)."""

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

# The CLI, on an engine of its own.
pytestmark = [pytest.mark.integration, pytest.mark.committing]

NOW = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
# Two avenues and a street crossing inside district C (-74.00..-73.90, 40.75..40.80).
LINES = [
    ("Ditmars Avenue", [(-73.960, 40.760), (-73.960, 40.790)]),
    ("Crescent Avenue", [(-73.940, 40.760), (-73.940, 40.790)]),
    ("Hoyt Street", [(-73.980, 40.775), (-73.920, 40.775)]),
]


@pytest.fixture
def cli(settings, districts):
    from tocsin.cli import app

    env = {"TOCSIN_DATABASE_URL": settings.database_url, "TOCSIN_RULES_FILE": str(settings.rules_file),
           "TOCSIN_LOG_LEVEL": "WARNING"}
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), env=env)


def _files(tmp_path):
    streets = tmp_path / "centerlines.geojson"
    streets.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": n, "highway": "residential"},
         "geometry": {"type": "LineString", "coordinates": c}} for n, c in LINES]}))
    marks = tmp_path / "marks.csv"
    marks.write_text('name,aliases,wkt\nGamma Hall,The Gamma;Gamma Arena,"POINT (-73.95 40.78)"\n')
    return streets, marks


def test_import_is_idempotent_and_feeds_the_pipeline(cli, session_factory, settings, tmp_path, post_state):
    streets, marks = _files(tmp_path)
    for _ in range(2):
        r = cli("gazetteer", "import-streets", str(streets))
        assert r.exit_code == 0, r.output
        assert "3 named streets, 2 intersections" in r.output
        r = cli("gazetteer", "import-landmarks", str(marks))
        assert r.exit_code == 0, r.output
    with session_factory() as s:
        counts = dict(s.execute(text("SELECT source, count(*) FROM gazetteer_entries GROUP BY source")).all())
    assert counts == {"centerlines.geojson": 3, "marks.csv": 1}

    from alerts.rules import load_rules
    from db.session import transaction
    from ingest.posts import pipeline, parse as posts
    from ingest.posts.classify import load_lexicon

    from dataclasses import replace

    config = replace(pipeline.PipelineConfig.from_settings(settings), worker_process=True, chunk=1, thread_min=1)
    items = [{"source": "test", "external_id": "x1", "author": "a", "created_at": NOW.isoformat(),
              "text": "Water main break at Crescent Ave & Hoyt St, street flooding"},
             {"source": "test", "external_id": "x2", "author": "b", "created_at": NOW.isoformat(),
              "text": "Smoke pouring out of the gamma arena"},
             {"source": "test", "external_id": "x3", "author": "c", "created_at": NOW.isoformat(),
              "text": "Power lines down on Hoyt St, sparks everywhere"}]
    valid = [p for p in posts.parse_items(items) if isinstance(p, posts.PostIn)]
    with transaction(session_factory) as session:
        index = post_state.gazetteer.get(session)
        results = pipeline.ingest_posts(session, posts=valid, index=index, lexicon=load_lexicon(),
                                        rules=load_rules(settings.rules_file), config=config, state=post_state,
                                        now=NOW)
    assert [r.located for r in results] == [True, True, True]
    with session_factory() as s:
        rows = s.execute(text("SELECT ST_X(geom), ST_Y(geom), uncertainty_m, raw->'geotag'->>'kind' FROM observations "
                              "WHERE id = ANY(:ids) ORDER BY id"), {"ids": [r.id for r in results]}).all()
    x, y, unc, kind = rows[0]
    assert (round(x, 6), round(y, 6), unc, kind) == (-73.94, 40.775, 50.0, "intersection")
    assert rows[1][3] == "landmark" and (round(rows[1][0], 6), round(rows[1][1], 6)) == (-73.95, 40.78)
    # A 5 km street alone: its middle, with half its length as the uncertainty (a circle for zone weights).
    x, y, unc, kind = rows[2]
    assert kind == "street" and (round(x, 6), round(y, 6)) == (-73.95, 40.775) and 2_400 < unc < 2_600


def test_import_bad_column_names_it(cli, tmp_path):
    streets, _ = _files(tmp_path)
    r = cli("gazetteer", "import-streets", str(streets), "--name-col", "FULLNAME")
    assert r.exit_code != 0
    assert "street name column 'FULLNAME'" in r.output


def test_import_of_many_streets_shows_progress_on_stderr_and_its_summary_once(cli, tmp_path):
    from tests.integration.progress_support import progress_lines

    streets = tmp_path / "many.geojson"  # 250 parallel streets: no intersections
    streets.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": f"{i} Street", "highway": "residential"},
         "geometry": {"type": "LineString", "coordinates": [(-73.99, 40.70 + i * 0.0004), (-73.98, 40.70 + i * 0.0004)]}}
        for i in range(1, 251)]}))
    r = cli("gazetteer", "import-streets", str(streets))
    assert r.exit_code == 0, r.output
    # Read row by row: a line at the start, at every tenth and at the end.
    assert progress_lines(r.stderr, "streets") == [
        f"streets: {n}/250 ({n * 100 // 250}%)" for n in range(0, 250, 25)] + ["streets: 250/250 (100%) in …"]
    # Then saved 250 at a time.
    assert progress_lines(r.stderr, "gazetteer entries") == [
        "gazetteer entries: 0/250 (0%)", "gazetteer entries: 250/250 (100%) in …"]
    assert r.stdout == ("streets: 250 named streets, 0 intersections\n"
                        "gazetteer: 250 entries from " + str(streets) + "; 250 entries in all\n")
    assert r.output.count("250 named streets") == 1
