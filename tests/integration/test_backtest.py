"""`tocsin rules backtest` against the real PostGIS: a labelled stream is scored, and nothing stays behind."""

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.integration.test_posts_cli import cli  # noqa: F401  (the fixture: the CLI on the test database)

pytestmark = pytest.mark.integration


def _stream(tmp_path: Path, lines: list[dict]) -> Path:
    path = tmp_path / "stream.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def _post(n: int, author: str, text_: str, at: str, incident) -> dict:
    return {"source": "bt", "external_id": f"b{n}", "author": author, "text": text_,
            "created_at": f"2026-11-25T{at}Z", "label": {"incident": incident}}


STREAM = [
    _post(1, "ann", "Street flooding in Alphaville, water up to the car doors", "20:00:00", "flood-1"),
    _post(2, "bob", "Alphaville basement flooded, water rising fast", "20:00:40", "flood-1"),
    _post(3, "cy", "lovely brunch in Alphaville", "20:01:00", None),
    _post(4, "eve", "Flash flooding in Alphaville, cars floating", "20:01:30", "flood-1"),
    _post(5, "dee", "Alphaville flooded again, stay home", "20:03:00", "flood-1"),
    # Hours later, the same zone: a second incident, which the first alert must have expired before.
    _post(6, "fay", "Alphaville streets flooding after the second storm", "23:30:00", "flood-2"),
    _post(7, "gus", "flooded basement in Alphaville, water everywhere", "23:31:00", "flood-2"),
    _post(8, "hal", "Alphaville: flooding on every corner", "23:32:00", "flood-2"),
    _post(9, "ida", "a single flooded street in Alphaville, just me?", "23:55:00", None),
]


def _counts(session_factory) -> tuple[int, int, int]:
    with session_factory() as s:
        return tuple(s.execute(text("SELECT (SELECT count(*) FROM alerts), (SELECT count(*) FROM observations), "
                                    "(SELECT count(*) FROM outbox_events)")).one())


def test_backtest_scores_a_labelled_stream_and_leaves_nothing(cli, session_factory, tmp_path):  # noqa: F811
    before = _counts(session_factory)
    r = cli("rules", "backtest", str(_stream(tmp_path, STREAM)))
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    opened = [line for line in lines if " opened " in line]
    # Two incidents in one zone, hours apart: two alerts, each opened on the stream's clock.
    assert [line.split()[0] for line in opened] == ["2026-11-25T20:01:30+00:00", "2026-11-25T23:32:00+00:00"]
    assert all("flood_posts" in line for line in opened)
    assert any(" resolved " in line for line in lines)
    assert "alerts per rule: flood_posts=2" in lines
    assert lines[-1] == "bursts_alerted=2/2 noise_alerts=0 duplicate_alerts=0"
    assert _counts(session_factory) == before  # rolled back: live alerts and posts untouched


def test_backtest_names_missed_incidents_and_bad_lines(cli, tmp_path):  # noqa: F811
    stream = _stream(tmp_path, STREAM[:3] + [{"source": "bt", "external_id": "x", "author": "a", "text": "t",
                                              "created_at": "2026-11-25T20:02:00Z", "label": "flood"}])
    r = cli("rules", "backtest", str(stream))
    assert r.exit_code == 0, r.output
    assert "line 4: label must be an object" in r.output
    assert "missed incidents: flood-1" in r.output
    assert r.output.strip().splitlines()[-1] == "bursts_alerted=0/1 noise_alerts=0 duplicate_alerts=0"


def test_backtest_refuses_a_missing_stream(cli, tmp_path):  # noqa: F811
    r = cli("rules", "backtest", str(tmp_path / "nope.jsonl"))
    assert r.exit_code == 2 and "does not exist" in r.output
