"""The Jetstream connector against a local fake Jetstream (real websocket) and the real PostGIS."""

import socket
import threading
import time

import pytest
from sqlalchemy import text

from ingest.posts import jetstream
from tests.fakes.jetstream_server import (
    FakeJetstream, account_event, delete_event, identity_event, like_event, post_event,
)

# The connector runs in a thread while the test reads what it stored.
pytestmark = [pytest.mark.integration, pytest.mark.committing]

T0 = 1_764_100_000_000_000  # time_us of the first scripted event
STEP = 1_000_000  # one second between events, so a 5 s overlap replays several of them
DID = "did:plc:tocsintestauthor"

# (rkey, text, langs): posts that pass the filter, each naming an NYC place the demo gazetteer knows.
MATCHING = [
    ("3kaa01", "Heavy smoke and fire in Astoria right now, trucks on scene", ["en"]),
    ("3kaa02", "Water main break flooding the street in Red Hook", ["en"]),
    ("3kaa03", "Power outage across Washington Heights, whole block dark", ["en-US"]),
    ("3kaa04", "Strong smell of gas in Park Slope, Con Ed on the way", None),  # no langs: kept
    ("3kaa05", "Car crash on the corner in Williamsburg, ambulance here", ["en"]),
    ("3kaa06", "Kitchen fire at a restaurant in Flushing", ["en", "zh"]),
]
# Posts the pre-filter drops: no incident word, or a language we did not ask for.
FILTERED = [
    ("3kbb01", "Lovely sunset over the East River tonight", ["en"]),
    ("3kbb02", "Incêndio em Lisboa, muito fumo (fire)", ["pt"]),
    ("3kbb03", "Best bagels in Astoria, fight me", ["en"]),
]


def _script() -> list[dict]:
    """Posts interleaved with the other event kinds a real stream carries."""
    m, f = iter(MATCHING), iter(FILTERED)
    kinds = ["m", "f", "like", "m", "identity", "m", "f", "delete", "m", "account", "m", "f", "m"]
    events = []
    for i, kind in enumerate(kinds):
        t = T0 + i * STEP
        if kind == "m" or kind == "f":
            rkey, body, langs = next(m if kind == "m" else f)
            events.append(post_event(DID, rkey, t, body, langs=langs))
        elif kind == "like":
            events.append(like_event(DID, f"like{i}", t))
        elif kind == "delete":
            events.append(delete_event(DID, "3kzz99", t))
        elif kind == "identity":
            events.append(identity_event(DID, t))
        else:
            events.append(account_event(DID, t))
    return events


@pytest.fixture
def pipeline_ingest(settings, lexicon, post_state):
    """The real post pipeline (validation, classify, geotag, dedup, zones, rules) as the connector's sink."""
    from alerts.rules import load_rules
    from ingest.posts import pipeline

    return jetstream.pipeline_ingest(lexicon=lexicon, rules=load_rules(settings.rules_file),
                                     config=pipeline.PipelineConfig.from_settings(settings), state=post_state)


def _stored_posts(session_factory) -> dict[str, int]:
    """external_id -> number of observations, for Bluesky posts."""
    from ingest.posts import pipeline

    with session_factory() as session:
        rows = session.execute(text(
            "SELECT external_id, count(*) FROM observations WHERE source = :s AND external_id LIKE :p "
            "GROUP BY external_id"), {"s": pipeline.SOURCE, "p": f"{jetstream.SOURCE}:%"}).all()
    return dict(rows)


def _uri(rkey: str) -> str:
    """The observation's external_id for one of our posts: source, then the post's at:// URI."""
    return f"{jetstream.SOURCE}:at://{DID}/app.bsky.feed.post/{rkey}"


def _stored_cursor(engine, name):
    with engine.connect() as conn:
        return conn.execute(text("SELECT cursor FROM connector_cursors WHERE name = :n"), {"n": name}).scalar()


def _run_until(connector, engine, *, cursor: int, timeout_s: float = 60.0) -> None:
    thread = threading.Thread(target=connector.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if _stored_cursor(engine, connector.config.name) == cursor:
                return
            time.sleep(0.05)
        pytest.fail(f"cursor never reached {cursor}; stored {_stored_cursor(engine, connector.config.name)}, "
                    f"stats {connector.stats}")
    finally:
        connector.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "connector did not stop"


def test_resumes_after_mid_stream_drop_and_stores_each_post_once(clean_db, session_factory, pipeline_ingest):
    events = _script()
    # The like is filtered by the server; the drop comes after 7 sent events (the delete at T0 + 7 s), with
    # three matching posts through and, with batches of 3, one batch committed mid-stream.
    with FakeJetstream(events, drop_after=7) as server:
        config = jetstream.JetstreamConfig(url=server.url, name="jetstream-test", batch_size=3,
                                           batch_max_wait_s=0.2, backoff_base_s=0.05, backoff_max_s=0.2)
        connector = jetstream.JetstreamConnector(config=config, session_factory=session_factory,
                                                 ingest=pipeline_ingest)
        _run_until(connector, clean_db, cursor=events[-1]["time_us"])

    assert len(server.connections) >= 2, "the connector never reconnected"
    first, second = server.connections[0], server.connections[1]
    assert first.cursor is None  # nothing stored yet: live tail
    assert first.wanted_collections == ["app.bsky.feed.post"]
    # What was received before the drop is committed, and the reconnect asks for that cursor minus 5 s.
    assert second.cursor == first.sent[-1] - 5 * STEP
    assert second.sent[0] < first.sent[-1], "the overlap replayed nothing, so dedup was not exercised"

    stored = _stored_posts(session_factory)
    expected = {_uri(rkey) for rkey, _, _ in MATCHING}
    assert set(stored) == expected  # every matching post, and none of the filtered ones
    assert set(stored.values()) == {1}  # each exactly once, although the overlap replayed some
    assert connector.stats.posts_kept > len(MATCHING)  # proof that replayed posts did reach the pipeline


def test_restart_resumes_from_the_stored_cursor(clean_db, session_factory, pipeline_ingest):
    events = _script()
    with session_factory() as session:
        jetstream.save_cursor(session, name="jetstream-restart", cursor=events[8]["time_us"],
                              now=jetstream._utc_now())
        session.commit()
    with FakeJetstream(events) as server:
        config = jetstream.JetstreamConfig(url=server.url, name="jetstream-restart", batch_size=100,
                                           batch_max_wait_s=0.1, overlap_s=2.0)
        connector = jetstream.JetstreamConnector(config=config, session_factory=session_factory,
                                                 ingest=pipeline_ingest)
        _run_until(connector, clean_db, cursor=events[-1]["time_us"])
    assert server.connections[0].cursor == events[8]["time_us"] - 2 * STEP
    # Replay starts at T0 + 6 s: the matching posts at 8, 10 and 12 s are the last three.
    assert _stored_posts(session_factory) == {_uri(rkey): 1 for rkey, _, _ in MATCHING[3:]}


def test_unreachable_server_backs_off_then_connects(clean_db, session_factory, pipeline_ingest):
    events = _script()
    with socket.socket() as probe:  # a free port, closed: connections are refused until the server is up
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = jetstream.JetstreamConfig(url=f"ws://127.0.0.1:{port}/subscribe", name="jetstream-backoff",
                                       backoff_base_s=0.05, backoff_max_s=0.1, batch_max_wait_s=0.1)
    connector = jetstream.JetstreamConnector(config=config, session_factory=session_factory, ingest=pipeline_ingest)
    thread = threading.Thread(target=connector.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while connector.stats.attempts < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert connector.stats.attempts >= 3 and connector.stats.connections == 0  # refused, retried quickly
        with FakeJetstream(events, port=port):
            while _stored_cursor(clean_db, config.name) != events[-1]["time_us"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert connector.stats.connections == 1
    finally:
        connector.stop()
        thread.join(timeout=10)
    assert _stored_cursor(clean_db, config.name) == events[-1]["time_us"]
    assert set(_stored_posts(session_factory)) == {_uri(rkey) for rkey, _, _ in MATCHING}


def test_a_post_the_pipeline_refuses_does_not_stop_the_stream(clean_db, session_factory, pipeline_ingest, caplog):
    events = [post_event(DID, "3kcc01", T0, "fire " * 2_001, langs=["en"]),  # over the 10,000-character limit
              post_event(DID, "3kcc02", T0 + STEP, "Smoke from a fire in Astoria", langs=["en"])]
    with FakeJetstream(events) as server:
        config = jetstream.JetstreamConfig(url=server.url, name="jetstream-refused", batch_max_wait_s=0.1)
        connector = jetstream.JetstreamConnector(config=config, session_factory=session_factory,
                                                 ingest=pipeline_ingest)
        _run_until(connector, clean_db, cursor=events[-1]["time_us"])
    assert _stored_posts(session_factory) == {_uri("3kcc02"): 1}
    refused = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert refused and "3kcc01" in refused[0] and DID not in refused[0] and "fire fire" not in refused[0]
