"""A Jetstream host that cannot be reached: the log names the host and the reason, and the waits between
attempts never exceed the configured cap."""

import logging
import socket
import threading

import pytest

pytestmark = pytest.mark.integration


def test_an_unreachable_host_is_named_and_the_backoff_is_capped(session_factory, caplog):
    from ingest.posts.jetstream import JetstreamConfig, JetstreamConnector

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stop = threading.Event()
    waits = []

    class Recording(threading.Event):
        def wait(self, timeout=None):
            waits.append(timeout)
            if len(waits) >= 6:
                stop.set()
            return stop.is_set()

        def is_set(self):
            return stop.is_set()

    config = JetstreamConfig(url=f"ws://127.0.0.1:{port}/subscribe", backoff_base_s=0.5, backoff_max_s=2.0)
    connector = JetstreamConnector(config=config, session_factory=session_factory, ingest=lambda *a, **k: None,
                                   stop=Recording())
    with caplog.at_level(logging.INFO, logger="ingest.posts.jetstream"):
        connector.run()
    failures = [r.getMessage() for r in caplog.records if "could not reach" in r.getMessage()]
    assert len(failures) == 6
    assert f"could not reach 127.0.0.1:{port}: ConnectionRefusedError" in failures[0]
    assert len(waits) == 6 and all(0 <= w <= 2.0 for w in waits)
