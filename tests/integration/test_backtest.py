"""`tocsin rules backtest` against the real PostGIS: a labelled stream is scored, and nothing stays behind."""

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.integration.test_posts_cli import cli  # noqa: F401  (the fixture: the CLI on the test database)

# The CLI, on an engine of its own.
pytestmark = [pytest.mark.integration, pytest.mark.committing]


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


def _report(n: int, at: str, lon: float, lat: float, incident, *, category: str = "gas_leak") -> dict:
    return {"kind": "report", "utility": "Grid Co", "observed_at": f"2026-11-25T{at}Z", "label": {"incident": incident},
            "feature": {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                        "properties": {"external_id": f"GRID-{n}", "category": category,
                                       "description": "Gas odor at street level"}}}


IN_A, IN_B = (-73.975, 40.725), (-73.925, 40.725)  # tests/integration/engine_helpers.INSIDE


def _report_counts(session_factory) -> tuple[int, ...]:
    with session_factory() as s:
        return tuple(s.execute(text("SELECT (SELECT count(*) FROM utilities), (SELECT count(*) FROM api_keys), "
                                    "(SELECT count(*) FROM utility_reports), (SELECT count(*) FROM alert_history)")
                              ).one())


def test_a_report_line_opens_its_alert_on_the_streams_clock_and_nothing_survives(cli, session_factory,
                                                                                 tmp_path):  # noqa: F811
    stream = _stream(tmp_path, [
        STREAM[2],  # a noise post
        _report(1, "20:05:00", *IN_A, "gas-1"),
        {"kind": "report", "observed_at": "2026-11-25T20:06:00Z", "feature": {}},  # no utility: refused
        {"kind": "outage", "text": "?"},
    ])
    before = _counts(session_factory), _report_counts(session_factory)
    for _ in range(2):  # the second run finds nothing of the first: same utility name, same external id
        r = cli("rules", "backtest", str(stream))
        assert r.exit_code == 0, r.output
        assert "line 3: a report needs \"utility\"" in r.output
        assert "line 4: kind 'outage' is not supported" in r.output
        lines = r.output.strip().splitlines()
        opened = [line.split() for line in lines if " opened " in line]
        # The test rules' immediate gas_leak_report, at the line's observed_at (not the server's clock).
        assert [(o[0], o[4], o[5], o[-1]) for o in opened] == [
            ("2026-11-25T20:05:00+00:00", "A", "gas_leak", "gas_leak_report")]
        assert any(line.startswith("1 posts, 1 stored as new; 1 utility reports, 1 stored as new;") for line in lines)
        assert lines[-1] == "bursts_alerted=1/1 noise_alerts=0 duplicate_alerts=0"
        assert (_counts(session_factory), _report_counts(session_factory)) == before


MIXED_RULES = """
rules:
  - name: gas_leak_posts
    categories: [gas_leak]
    sources: [post]
    layer: district
    window: 10m
    min_count: 2
    min_distinct_authors: 2
    severity: major
    expire_after: 1h
  - name: gas_leak_report
    categories: [gas_leak]
    sources: [utility_report]
    layer: district
    immediate: true
    severity: critical
    expire_after: 1h
"""


def test_a_report_and_posts_of_one_incident_make_one_alert(cli, tmp_path):  # noqa: F811
    rules = tmp_path / "rules.yaml"
    rules.write_text(MIXED_RULES, encoding="utf-8")
    stream = _stream(tmp_path, [
        _post(1, "ann", "Strong gas smell in Alphaville, building evacuated", "20:00:00", "gas-1"),
        _post(2, "bob", "gas leak in Alphaville, utility trucks on the block", "20:01:00", "gas-1"),
        _report(1, "20:02:30", *IN_A, "gas-1"),  # the utility confirms: it joins the posts' alert
        _post(3, "cy", "whole street smells like gas in Alphaville", "20:03:00", "gas-1"),
        _report(2, "20:04:00", *IN_B, "gas-2"),  # another zone, another incident: an alert of its own
        _post(4, "dee", "lovely brunch in Alphaville", "20:05:00", None),
    ])
    r = cli("rules", "backtest", str(stream), "--rules", str(rules))
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    opened = [line.split() for line in lines if " opened " in line]
    # Rules are listed as first fired: the posts opened A's alert, the report joined it (one incident, one
    # alert) and raised it to critical; B's report opened an alert of its own.
    assert [(o[0], o[4], o[6], o[-1]) for o in opened] == [
        ("2026-11-25T20:01:00+00:00", "A", "major", "gas_leak_posts,gas_leak_report"),
        ("2026-11-25T20:04:00+00:00", "B", "critical", "gas_leak_report")]
    a_id = opened[0][3]
    on_a = [line.split() for line in lines if f" alert {a_id} " in line]
    assert ("2026-11-25T20:02:30+00:00", "updated", "critical") in [(x[0], x[1], x[6]) for x in on_a]
    assert "alerts per rule: gas_leak_posts=1, gas_leak_report=2" in lines
    assert lines[-1] == "bursts_alerted=2/2 noise_alerts=0 duplicate_alerts=0"
