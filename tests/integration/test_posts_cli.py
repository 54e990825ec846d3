"""The posts CLI against the real PostGIS: gazetteer load, replay, retention purge, partner keys."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.integration.posts_support import GAZETTEER

# The CLI, on an engine of its own.
pytestmark = [pytest.mark.integration, pytest.mark.committing, pytest.mark.heavy]
REPLAY = Path(__file__).resolve().parents[1] / "data" / "posts_replay.jsonl"


@pytest.fixture
def cli(settings, districts, tmp_path):
    """Run `tocsin ...` with the test database and rules; the hand-built gazetteer loaded from a CSV."""
    from tocsin.cli import app

    env = {"TOCSIN_DATABASE_URL": settings.database_url, "TOCSIN_RULES_FILE": str(settings.rules_file),
           "TOCSIN_LOG_LEVEL": "WARNING"}
    runner = CliRunner()

    def run(*args):
        return runner.invoke(app, list(args), env=env)

    csv = tmp_path / "places.csv"
    csv.write_text("name,kind,wkt\n" + "".join(f'{n},{k},"{g.wkt}"\n' for n, k, g in GAZETTEER), encoding="utf-8")
    loaded = run("gazetteer", "load", str(csv))
    assert loaded.exit_code == 0, loaded.output
    assert f"{len(GAZETTEER)} entries from" in loaded.output
    return run


def test_gazetteer_load_twice_keeps_one_copy(cli, session_factory, tmp_path):
    again = cli("gazetteer", "load", str(tmp_path / "places.csv"))
    assert again.exit_code == 0
    with session_factory() as s:
        assert s.execute(text("SELECT count(*) FROM gazetteer_entries")).scalar_one() == len(GAZETTEER)


def test_gazetteer_load_bad_file_names_the_row(cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,kind,lon,lat\nSomewhere,station,-73.9,140.5\n", encoding="utf-8")
    r = cli("gazetteer", "load", str(bad))
    assert r.exit_code == 2
    assert "row 2: latitude 140.5 is outside [-90, 90]" in r.output


def _retimed(tmp_path: Path, base: datetime, extra: tuple[dict, ...] = ()) -> Path:
    """The replay fixture moved so that its first post is at `base` (its lines kept, the bad one too),
    then `extra` posts whose created_at is seconds after base."""
    import json

    first = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
    out = []
    for line in REPLAY.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        at = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))
        item["created_at"] = (base + (at - first)).isoformat()
        out.append(json.dumps(item))
    out += [json.dumps({**item, "created_at": (base + timedelta(seconds=item["created_at"])).isoformat()})
            for item in extra]
    path = tmp_path / "retimed.jsonl"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def _alerts(session_factory) -> list[tuple]:
    with session_factory() as s:
        return [tuple(a) for a in s.execute(text(
            "SELECT a.rule, z.code, a.category, a.opened_at, a.severity FROM alerts a "
            "JOIN zones z ON z.id = a.zone_id ORDER BY a.opened_at, a.rule"))]


def test_replay_as_fast_as_possible(cli, session_factory, tmp_path):
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    r = cli("replay", str(_retimed(tmp_path, base)), "--as-fast-as-possible")
    assert r.exit_code == 0, r.output
    assert "replayed 5 posts: created 4, duplicate 1, rejected 1" in r.output
    assert "rejected item 3: line 4 is not valid JSON" in r.output
    # Opened on the recording's clock: at the end of the minute the third flood post (base + 90 s) fell in,
    # though the batch's newest post and the server's clock are later.
    assert _alerts(session_factory) == [("flood_posts", "A", "flood", base + timedelta(seconds=120), "major")]
    with session_factory() as s:
        assert s.execute(text("SELECT count(*) FROM observations WHERE source = 'post'")).scalar_one() == 4


def test_replay_at_any_speed_raises_the_same_alerts(cli, session_factory, tmp_path):
    """The same recent stream, as fast as possible and paced in batches of one, into emptied databases."""
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    # A flood post 14 minutes on, in the same zone: read at the batch's newest time, the burst's window
    # (10 minutes) would have lost the burst.
    stream = str(_retimed(tmp_path, base, extra=({
        "source": "replay", "external_id": "p6", "author": "fay", "created_at": 14 * 60,
        "text": "Alphaville still flooded, water in the subway entrance"},)))
    seen = []
    for mode in (["--as-fast-as-possible"], ["--speed", "300", "--batch-size", "1"]):
        with session_factory() as s, s.begin():
            s.execute(text("TRUNCATE observations, signals, alerts RESTART IDENTITY CASCADE"))
        r = cli("replay", stream, *mode)
        assert r.exit_code == 0, r.output
        seen.append(_alerts(session_factory))
    assert seen[0] and seen[0] == seen[1]


def test_replay_of_an_old_stream_stores_but_counts_nothing(cli, session_factory):
    """Posts older than the lateness bound (a week-old recording) touch no alert: they are stored only."""
    r = cli("replay", str(REPLAY), "--as-fast-as-possible")
    assert r.exit_code == 0, r.output
    assert "4 older than the lateness bound, stored but not counted" in r.output
    assert _alerts(session_factory) == []
    with session_factory() as s:
        assert s.execute(text("SELECT count(*) FROM observations WHERE source = 'post'")).scalar_one() == 4
        assert s.execute(text("SELECT count(*) FROM signals")).scalar_one() == 0


def test_replay_paced(cli, session_factory):
    """90 s of recording at 300x takes about 0.3 s and ingests the same."""
    r = cli("replay", str(REPLAY), "--speed", "300", "--batch-size", "2")
    assert r.exit_code == 0, r.output
    assert "created 4, duplicate 1" in r.output


def test_replay_shows_progress_on_stderr_and_its_summary_once(cli, tmp_path):
    import json

    from tests.integration.progress_support import progress_lines

    first = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)  # old: stored, counted by no rule
    stream = tmp_path / "many.jsonl"
    stream.write_text("".join(json.dumps({
        "source": "replay", "external_id": f"m{i}", "author": "ann", "text": f"quiet evening number {i}",
        "created_at": (first + timedelta(seconds=i)).isoformat()}) + "\n" for i in range(300)), encoding="utf-8")
    r = cli("replay", str(stream), "--as-fast-as-possible", "--batch-size", "50")
    assert r.exit_code == 0, r.output
    # A line at the start, one per batch that crosses a tenth, and the final one.
    assert progress_lines(r.stderr, "replay") == [
        "replay: 0/300 (0%)", "replay: 50/300 (16%)", "replay: 100/300 (33%)", "replay: 150/300 (50%)",
        "replay: 200/300 (66%)", "replay: 250/300 (83%)", "replay: 300/300 (100%) in …"]
    summary = ("replayed 300 posts: created 300, duplicate 0, rejected 0; 300 older than the lateness bound, "
               "stored but not counted")
    assert r.stdout == summary + "\n"
    assert r.output.count("replayed 300 posts") == 1


def test_gazetteer_build_demo_shows_progress_on_stderr(cli):
    import re

    from tests.integration.progress_support import progress_lines

    r = cli("gazetteer", "build-demo")
    assert r.exit_code == 0, r.output
    n = int(re.fullmatch(r"gazetteer: (\d+) entries from the NYC demo builders for place new-york; \d+ entries in all\n", r.stdout)[1])
    assert n > 250  # the NYC demo has some 500 entries: two chunks at least
    # Saved 250 at a time: a line at the start, one per chunk, and the final one.
    assert progress_lines(r.stderr, "gazetteer entries") == [
        f"gazetteer entries: {done}/{n} ({done * 100 // n}%)" for done in range(0, n, 250)
    ] + [f"gazetteer entries: {n}/{n} (100%) in …"]


def test_replay_refuses_both_modes(cli):
    r = cli("replay", str(REPLAY), "--speed", "2", "--as-fast-as-possible")
    assert r.exit_code == 2 and "not both" in r.output


def test_purge_deletes_posts_older_than_retention(cli, session_factory, settings, post_state):
    from alerts.rules import load_rules
    from db.session import transaction
    from geo.gazetteer import GazetteerEntry, GazetteerIndex
    from ingest.posts import pipeline, parse as posts
    from ingest.posts.classify import load_lexicon

    now = datetime.now(UTC)
    index = GazetteerIndex([GazetteerEntry(name=n, kind=k, geometry=g) for n, k, g in GAZETTEER], context_regions={})
    for ext, received in (("old", now - timedelta(days=3)), ("new", now)):
        [p] = posts.parse_items([{"source": "t", "external_id": ext, "author": "a", "text": f"flooding {ext}",
                                  "created_at": received.isoformat(), "coordinates": [-73.975, 40.725]}])
        with transaction(session_factory) as session:
            pipeline.ingest_posts(session, posts=[p], index=index, lexicon=load_lexicon(),
                                  rules=load_rules(settings.rules_file),
                                  config=pipeline.PipelineConfig.from_settings(settings), state=post_state,
                                  now=received)
    signals = "SELECT o.raw->>'external_id' FROM signals s JOIN observations o ON o.id = s.observation_id"
    with session_factory() as s:
        assert sorted(s.execute(text(signals)).scalars().all()) == ["new", "old"]  # one each, in its district
    r = cli("posts", "purge", "--older-than", "2d")
    assert r.exit_code == 0, r.output
    assert "purged 1 posts" in r.output
    with session_factory() as s:
        assert s.execute(text("SELECT raw->>'external_id' FROM observations")).scalars().all() == ["new"]
        assert s.execute(text("SELECT count(*) FROM signals")).scalar_one() == 1  # the new post's
    assert cli("posts", "purge", "--older-than", "soon").exit_code == 2


def test_purge_keeps_an_old_post_that_an_open_alert_points_to(cli, session_factory, districts):
    from db.session import transaction

    old = datetime.now(UTC) - timedelta(days=40)
    with transaction(session_factory) as s:
        ids = s.execute(text(
            "INSERT INTO observations (source, external_id, category, confidence, observed_at, received_at, geom, "
            "uncertainty_m, geotag_method) SELECT 'post', 'p' || g, 'flood', 0.9, :old, :old, "
            "ST_SetSRID(ST_MakePoint(-73.975, 40.725), 4326), 10, 'coordinates' FROM generate_series(1, 3) g "
            "RETURNING id"), {"old": old}).scalars().all()
        zone = s.execute(text("SELECT id FROM zones WHERE code = 'A'")).scalar_one()
        for state, code, evidence in (("open", "OPN1", ids[0]), ("resolved", "RES1", ids[1])):
            alert = s.execute(text(
                "INSERT INTO alerts (rule, zone_id, category, severity, state, ack_code, evidence_count, "
                "distinct_authors, opened_at, updated_at, last_evidence_at) VALUES ('floods', :zone, 'flood', "
                "'minor', :state, :code, 1, 1, :old, :old, :old) RETURNING id"),
                {"zone": zone, "state": state, "code": code, "old": old}).scalar_one()
            s.execute(text("INSERT INTO alert_evidence (alert_id, observation_id, added_at) VALUES (:a, :o, :old)"),
                      {"a": alert, "o": evidence, "old": old})
    r = cli("posts", "purge", "--older-than", "30d")
    assert r.exit_code == 0, r.output
    assert "purged 2 posts" in r.output  # the resolved alert's evidence and the post no alert points to
    with session_factory() as s:
        assert s.execute(text("SELECT id FROM observations")).scalars().all() == [ids[0]]


def test_partners_add_issues_a_partner_key_once(cli, session_factory):
    r = cli("partners", "add", "Acme Feeds")
    assert r.exit_code == 0, r.output
    key = r.output.strip().splitlines()[-1]
    with session_factory() as s:
        from accounts import keys

        caller = keys.authenticate(s, key=key)
    assert caller.role == "partner" and caller.utility_id is None
    again = cli("partners", "add", "Acme Feeds")
    assert again.exit_code == 2 and "already has an active key" in again.output
