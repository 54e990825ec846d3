"""Operator sessions on the live websocket, against the real PostGIS: the handshake's Origin rule, and an open
socket that closes when its session ends (sign-out, disable, expiry) while the others stay.

The tests' public_base_url is http://tocsin.test, so a browser on the map sends `Origin: http://tocsin.test`.
"""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from starlette.websockets import WebSocketDisconnect

from tests.integration.operators_support import SAME, sign_in, tokens  # noqa: F401  (tokens is a fixture)

pytestmark = pytest.mark.integration


def closed_within(ws, seconds: float = 15.0) -> WebSocketDisconnect:
    """Read until the server closes the socket; fail if it has not within `seconds` (a bound, not a timing)."""
    out: dict = {}

    def read() -> None:
        try:
            while True:
                ws.receive_text()
        except WebSocketDisconnect as exc:
            out["closed"] = exc
        except Exception as exc:  # noqa: BLE001 - reported below
            out["error"] = exc

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(seconds)
    assert "closed" in out, f"the socket was still open after {seconds}s ({out.get('error')})"
    return out["closed"]


@pytest.mark.committing
def test_live_handshake_with_the_cookie_needs_our_origin(client, tokens):
    sign_in(client, tokens["vera"])
    for headers in ({"Origin": "http://tocsin.test:8080"}, {"Origin": "http://evil.tocsin.test"}, {}):
        with client.websocket_connect("/v1/live", headers=headers) as ws:
            closed = closed_within(ws)
        assert closed.code == 4403, headers
        assert "http://tocsin.test" in closed.reason
    with client.websocket_connect("/v1/live", headers=SAME) as ws:
        assert json.loads(ws.receive_text())["operator"] == "vera"


@pytest.mark.committing
def test_live_with_a_bearer_token_needs_no_origin(client, tokens):
    with client.websocket_connect("/v1/live", headers={"Authorization": f"Bearer {tokens['vera']}"}) as ws:
        assert json.loads(ws.receive_text())["operator"] == "vera"


@pytest.mark.committing
def test_live_refuses_an_expired_session(client, tokens, engine):
    sign_in(client, tokens["vera"])
    with engine.begin() as conn:
        conn.execute(text("UPDATE operator_sessions SET expires_at = now() - interval '1 second'"))
    with client.websocket_connect("/v1/live", headers=SAME) as ws:
        closed = closed_within(ws)
    assert closed.code == 4401 and closed.reason.startswith("session expired")


@pytest.mark.committing
def test_open_live_socket_closes_after_sign_out(client, tokens):
    sign_in(client, tokens["vera"])
    with client.websocket_connect("/v1/live", headers=SAME) as ws:
        assert json.loads(ws.receive_text())["type"] == "hello"
        assert client.delete("/v1/session", headers=SAME).status_code == 204  # another tab signs out
        closed = closed_within(ws)
    assert closed.code == 4401 and closed.reason.startswith("session revoked (signed out)")


@pytest.mark.parametrize("auth", ["cookie", "bearer"])
@pytest.mark.committing
def test_open_live_socket_closes_after_disable(client, tokens, session_factory, auth):
    from accounts import operators

    if auth == "cookie":
        sign_in(client, tokens["olive"])
        ws_cm = client.websocket_connect("/v1/live", headers=SAME)
    else:
        ws_cm = client.websocket_connect("/v1/live", headers={"Authorization": f"Bearer {tokens['olive']}"})
    with ws_cm as ws:
        assert json.loads(ws.receive_text())["operator"] == "olive"
        with session_factory.begin() as s:
            operators.disable_operator(s, name="olive", now=datetime.now(UTC))
        closed = closed_within(ws)
    assert closed.code == 4401
    expected = "session revoked (operator disabled)" if auth == "cookie" else "invalid or disabled operator token"
    assert closed.reason.startswith(expected)


@pytest.mark.committing
def test_open_live_socket_closes_when_the_session_expires_and_others_stay(client, tokens, engine):
    sign_in(client, tokens["vera"])
    with client.websocket_connect("/v1/live", headers=SAME) as ws, \
            client.websocket_connect("/v1/live", headers={"Authorization": f"Bearer {tokens['olive']}"}) as other:
        assert json.loads(ws.receive_text())["type"] == "hello"
        assert json.loads(other.receive_text())["type"] == "hello"
        with engine.begin() as conn:
            conn.execute(text("UPDATE operator_sessions SET expires_at = now()"))
        closed = closed_within(ws)
        assert closed.code == 4401 and closed.reason.startswith("session expired")
        assert len(client.app.state.live_hub.clients) == 1  # the bearer socket is still subscribed


@pytest.mark.committing
def test_an_open_live_socket_keeps_its_session_in_use(client, tokens, engine):
    """A wall screen's map, open for longer than the idle limit without a request, stays signed in."""
    sign_in(client, tokens["vera"])
    with engine.begin() as conn:
        conn.execute(text("UPDATE operator_sessions SET last_seen_at = now() - interval '50 minutes'"))
    hub = client.app.state.live_hub
    with client.websocket_connect("/v1/live", headers=SAME) as ws:
        assert json.loads(ws.receive_text())["type"] == "hello"
        with engine.connect() as conn:
            seen = conn.execute(text("SELECT now() - last_seen_at FROM operator_sessions")).scalar_one()
        # the handshake itself is a use
        assert seen < timedelta(minutes=1)
        with engine.begin() as conn:
            conn.execute(text("UPDATE operator_sessions SET last_seen_at = now() - interval '50 minutes'"))
        ended = hub._check({("session", _session_row(engine))})  # the hub's periodic check, run once here
        assert ended == {}
        with engine.connect() as conn:
            seen = conn.execute(text("SELECT now() - last_seen_at FROM operator_sessions")).scalar_one()
        assert seen < timedelta(minutes=1)


def _session_row(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT id FROM operator_sessions")).scalar_one()
