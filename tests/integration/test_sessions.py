"""Operator sessions and the Origin rule, against the real PostGIS: REST and the live websocket.

The tests' public_base_url is http://tocsin.test, so a browser on the map sends `Origin: http://tocsin.test`.
"""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.integration.operators_support import SAME, sign_in, tokens  # noqa: F401  (tokens is a fixture)

pytestmark = pytest.mark.integration

FOREIGN = ["http://tocsin.test:8080", "http://evil.tocsin.test", "https://tocsin.test", "null",
           "http://tocsin.test.evil.example"]


def raise_alert(client, utility_key) -> int:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.975, 40.725]},
               "properties": {"external_id": "S1", "category": "gas_leak"}}
    r = client.post("/v1/reports", json=feature, headers={"Authorization": f"Bearer {utility_key}"})
    assert r.status_code == 201, r.text
    return r.json()["alerts_changed"][0]


# --- the service, with a chosen `now` ---

def test_idle_and_absolute_expiry_and_throttled_touch(session_factory, tokens):
    from accounts import sessions
    from accounts.models import OperatorSession
    from db.errors import Unauthorized
    from db.tokens import hash_token

    t0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    idle, max_s = 3600.0, 12 * 3600.0
    with session_factory.begin() as s:
        op_id = s.execute(text("SELECT id FROM operators WHERE name = 'olive'")).scalar_one()
        sid = sessions.create_session(s, operator_id=op_id, now=t0, max_s=max_s, user_agent="x" * 999, ip="10.0.0.1")
    assert len(sid) >= 43
    with session_factory.begin() as s:
        row = s.query(OperatorSession).one()
        assert row.id_hash == hash_token(sid) and sid not in (row.id_hash, row.user_agent)  # stored hashed
        assert len(row.user_agent) == 256 and row.ip == "10.0.0.1" and row.expires_at == t0 + timedelta(hours=12)

        found = sessions.authenticate_session(s, sid=sid, now=t0 + timedelta(seconds=30), idle_s=idle)
        assert found.name == "olive" and not found.touched  # within a minute: no write
        found = sessions.authenticate_session(s, sid=sid, now=t0 + timedelta(minutes=59), idle_s=idle)
        assert found.touched
        s.flush()
        s.expire_all()
        assert s.query(OperatorSession).one().last_seen_at == t0 + timedelta(minutes=59)
        # An hour after the last use: idle.
        with pytest.raises(Unauthorized, match=r"session expired \(idle too long\)"):
            sessions.authenticate_session(s, sid=sid, now=t0 + timedelta(minutes=59, hours=1), idle_s=idle)
        # Used every 50 minutes, it still ends 12 h after sign-in.
        at = t0 + timedelta(minutes=59)
        while at + timedelta(minutes=50) < t0 + timedelta(hours=12):
            at += timedelta(minutes=50)
            sessions.authenticate_session(s, sid=sid, now=at, idle_s=idle)
        with pytest.raises(Unauthorized, match=r"session expired \(signed in too long ago\)"):
            sessions.authenticate_session(s, sid=sid, now=t0 + timedelta(hours=12), idle_s=idle)
        with pytest.raises(Unauthorized, match="unknown session"):
            sessions.authenticate_session(s, sid="not-a-session", now=t0, idle_s=idle)
        with pytest.raises(Unauthorized, match="missing operator token"):
            sessions.authenticate_session(s, sid=None, now=t0, idle_s=idle)


def test_the_sweeper_purges_sessions_ended_longer_ago_than_kept(session_factory, tokens):
    """Ended sessions stay 30 days as a sign-in record, then the sweeper's pass deletes them; live ones stay."""
    from alerts import sweeper
    from accounts import sessions

    t0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
    now = t0 + sessions.KEEP_ENDED + timedelta(days=1)
    with session_factory.begin() as s:
        op_id = s.execute(text("SELECT id FROM operators WHERE name = 'olive'")).scalar_one()
        sessions.create_session(s, operator_id=op_id, now=t0, max_s=12 * 3600)  # expired a month ago
        signed_out = sessions.create_session(s, operator_id=op_id, now=t0, max_s=90 * 86400)
        sessions.revoke_session(s, sid=signed_out, now=t0)  # revoked a month ago, not yet expired
        recent = sessions.create_session(s, operator_id=op_id, now=now - timedelta(days=2), max_s=12 * 3600)
        live = sessions.create_session(s, operator_id=op_id, now=now, max_s=12 * 3600)
    sweeper.sweep_pass(session_factory, rules=[], now=now)
    with session_factory() as s:
        left = set(s.execute(text("SELECT id_hash FROM operator_sessions")).scalars())
    from db.tokens import hash_token

    assert left == {hash_token(recent), hash_token(live)}


@pytest.mark.parametrize("change, reason", [
    (lambda s, ops, now: ops.disable_operator(s, name="olive", now=now), "operator disabled"),
    (lambda s, ops, now: ops.change_role(s, name="olive", role="viewer", now=now), "role changed"),
    (lambda s, ops, now: ops.reissue_token(s, name="olive", now=now), "token reissued"),
])
def test_account_changes_revoke_every_session_of_that_operator_only(session_factory, tokens, change, reason):
    from accounts import operators, sessions
    from db.errors import Unauthorized

    now = datetime.now(UTC)
    with session_factory.begin() as s:
        ids = dict(s.execute(text("SELECT name, id FROM operators")).all())
        mine = [sessions.create_session(s, operator_id=ids["olive"], now=now, max_s=3600) for _ in range(2)]
        other = sessions.create_session(s, operator_id=ids["vera"], now=now, max_s=3600)
    with session_factory.begin() as s:
        change(s, operators, now)
    with session_factory.begin() as s:
        for sid in mine:
            with pytest.raises(Unauthorized, match=rf"session revoked \({reason}\)"):
                sessions.authenticate_session(s, sid=sid, now=now, idle_s=3600)
        assert sessions.authenticate_session(s, sid=other, now=now, idle_s=3600).name == "vera"


def test_a_role_change_to_the_same_role_revokes_nothing(session_factory, tokens):
    from accounts import operators, sessions

    now = datetime.now(UTC)
    with session_factory.begin() as s:
        op_id = s.execute(text("SELECT id FROM operators WHERE name = 'olive'")).scalar_one()
        sid = sessions.create_session(s, operator_id=op_id, now=now, max_s=3600)
        operators.change_role(s, name="olive", role="operator", now=now)
        assert sessions.authenticate_session(s, sid=sid, now=now, idle_s=3600).role == "operator"


@pytest.mark.parametrize("origin, referer, ok", [
    ("http://tocsin.test", None, True),
    ("HTTP://Tocsin.Test:80", None, True),  # normalised: case, default port
    (None, "http://tocsin.test/?layer=nta", True),  # Referer when Origin is absent
    (None, None, False),
    ("null", None, False),  # a sandboxed frame or file: page
    ("http://tocsin.test:8080", None, False),  # another port on the same host
    ("http://evil.tocsin.test", None, False),  # another subdomain of the same site
    ("https://tocsin.test", None, False),  # another scheme
    ("http://evil.example", "http://tocsin.test/", False),  # Origin wins over Referer
])
def test_check_origin(origin, referer, ok):
    from accounts import sessions
    from db.errors import Forbidden

    allowed = sessions.allowed_origins("http://tocsin.test/some/path", [])
    assert allowed == ("http://tocsin.test",)
    if ok:
        assert sessions.check_origin(origin=origin, referer=referer, allowed=allowed) == "http://tocsin.test"
    else:
        with pytest.raises(Forbidden) as info:
            sessions.check_origin(origin=origin, referer=referer, allowed=allowed)
        assert "http://tocsin.test" in info.value.message
        if origin:
            assert repr(origin) in info.value.message


def test_allowed_origins_setting_is_validated(monkeypatch):
    from pydantic import ValidationError

    from tocsin.settings import Settings

    settings = Settings(allowed_origins=["https://Ops.Example.org:8443"])
    assert settings.allowed_origins == ["https://ops.example.org:8443"]
    with pytest.raises(ValidationError, match="allowed_origins"):
        Settings(allowed_origins=["https://ops.example.org/"])
    monkeypatch.setenv("TOCSIN_ALLOWED_ORIGINS", '["http://wall.local:8080"]')  # a JSON list, as documented
    monkeypatch.setenv("TOCSIN_SESSION_IDLE_S", "28800")
    from_env = Settings()
    assert from_env.allowed_origins == ["http://wall.local:8080"] and from_env.session_idle_s == 28800


# --- over HTTP ---

@pytest.mark.committing
def test_cookie_is_a_session_id_not_the_token(client, tokens, engine):
    sid = sign_in(client, tokens["olive"])
    assert sid != tokens["olive"] and not sid.startswith("to_")
    with engine.connect() as conn:
        row = conn.execute(text("SELECT id_hash, user_agent, ip, expires_at - created_at AS ttl "
                                "FROM operator_sessions")).one()
    assert sid not in row.id_hash and row.ttl == timedelta(hours=12) and row.user_agent
    # The token itself is not a cookie any more.
    client.cookies.set("tocsin_session", tokens["olive"])
    r = client.get("/v1/alerts")
    assert r.status_code == 401 and "unknown session" in r.json()["detail"]


@pytest.mark.parametrize("column, value, message", [
    ("expires_at", "now() - interval '1 second'", "session expired (signed in too long ago)"),
    ("last_seen_at", "now() - interval '2 hours'", "session expired (idle too long)"),
])
@pytest.mark.committing
def test_an_expired_session_is_401_naming_why(client, tokens, engine, column, value, message):
    sign_in(client, tokens["olive"])
    assert client.get("/v1/alerts").status_code == 200
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE operator_sessions SET {column} = {value}"))
    r = client.get("/v1/alerts")
    assert r.status_code == 401 and r.json()["detail"].startswith(message)


@pytest.mark.parametrize("command, reason", [
    (["operators", "disable", "olive"], "operator disabled"),
    (["operators", "role", "olive", "viewer"], "role changed"),
    (["operators", "token", "olive"], "token reissued"),
])
@pytest.mark.committing
def test_cli_account_changes_revoke_the_cookie(client, tokens, database_url, command, reason):
    from typer.testing import CliRunner

    from tocsin.cli import app

    sign_in(client, tokens["olive"])
    assert client.get("/v1/session").json()["role"] == "operator"
    result = CliRunner().invoke(app, command, env={"TOCSIN_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    r = client.get("/v1/session")
    assert r.status_code == 401 and r.json()["detail"].startswith(f"session revoked ({reason})")
    if reason == "role changed":  # the token still works, with the new role
        r = client.get("/v1/session", headers={"Authorization": f"Bearer {tokens['olive']}"})
        assert r.json()["role"] == "viewer"


@pytest.mark.parametrize("origin", FOREIGN)
@pytest.mark.committing
def test_a_cookie_write_from_a_foreign_origin_is_refused(client, tokens, utility_key, origin):
    alert_id = raise_alert(client, utility_key)
    sign_in(client, tokens["olive"])
    # The attack as found: a cross-origin "simple" request the browser sends without a preflight.
    r = client.post(f"/v1/alerts/{alert_id}/acknowledge", headers={"Content-Type": "text/plain", "Origin": origin})
    assert r.status_code == 403, r.text
    assert repr(origin) in r.json()["detail"] and "http://tocsin.test" in r.json()["detail"]
    assert client.get(f"/v1/alerts/{alert_id}").json()["state"] == "open"
    r = client.delete("/v1/session", headers={"Origin": origin})  # nor can another page sign us out
    assert r.status_code == 403 and client.get("/v1/session").status_code == 200


@pytest.mark.committing
def test_a_cookie_write_without_origin_or_referer_is_refused(client, tokens, utility_key):
    alert_id = raise_alert(client, utility_key)
    sign_in(client, tokens["olive"])
    r = client.post(f"/v1/alerts/{alert_id}/acknowledge")
    assert r.status_code == 403 and "needs an Origin (or Referer)" in r.json()["detail"]
    r = client.post(f"/v1/alerts/{alert_id}/acknowledge", headers={"Referer": "http://tocsin.test/?layer=nta"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"


@pytest.mark.committing
def test_the_same_origin_acts_and_reads_need_no_origin(client, tokens, utility_key):
    alert_id = raise_alert(client, utility_key)
    sign_in(client, tokens["olive"])
    assert client.get("/v1/alerts").status_code == 200  # a read: no Origin needed
    r = client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=SAME)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"


@pytest.mark.parametrize("origin", [*FOREIGN, None])
@pytest.mark.committing
def test_sign_in_from_a_foreign_origin_or_none_is_refused(client, tokens, engine, origin):
    headers = {"Origin": origin} if origin else {}
    r = client.post("/v1/session", data={"token": tokens["olive"]}, headers=headers)  # a cross-origin form
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert "Origin" in r.json()["detail"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM operator_sessions")).scalar_one() == 0


@pytest.mark.committing  # an app of its own, on its own engine
def test_allow_listed_origin_signs_in_and_writes(settings, districts, tokens, utility_key):
    from fastapi.testclient import TestClient

    from tocsin.app import create_app

    extra = "https://wall.ops.example:8443"
    with TestClient(create_app(settings.model_copy(update={"allowed_origins": [extra]}))) as c:
        alert_id = raise_alert(c, utility_key)
        assert c.post("/v1/session", json={"token": tokens["olive"]}, headers={"Origin": extra}).status_code == 200
        r = c.post(f"/v1/alerts/{alert_id}/resolve", headers={"Origin": extra})
        assert r.status_code == 200 and r.json()["state"] == "resolved"
        r = c.post(f"/v1/alerts/{alert_id}/resolve", headers={"Origin": "https://ops.example:8443"})
        assert r.status_code == 403 and extra in r.json()["detail"]


@pytest.mark.committing
def test_a_bearer_token_needs_no_origin(client, tokens, utility_key):
    alert_id = raise_alert(client, utility_key)
    bearer = {"Authorization": f"Bearer {tokens['olive']}"}
    r = client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=bearer)
    assert r.status_code == 200, r.text
    r = client.post(f"/v1/alerts/{alert_id}/resolve", headers={**bearer, "Origin": "http://evil.example"})
    assert r.status_code == 200, r.text
    r = client.get("/v1/responders", headers={"Authorization": f"Bearer {tokens['ada']}"})  # dispatch admin too
    assert r.status_code == 200, r.text


@pytest.mark.committing
def test_admin_routes_take_the_session_cookie_with_the_same_rules(client, tokens):
    sign_in(client, tokens["ada"])
    assert client.get("/v1/responders").status_code == 200
    body = {"name": "Rita", "phone": "+12125550100", "coverage": []}
    r = client.post("/v1/responders", json=body, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "'http://evil.example'" in r.json()["detail"]
    assert client.post("/v1/responders", json=body, headers=SAME).status_code == 201


@pytest.mark.committing
def test_openapi_declares_token_and_cookie_schemes(client):
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["operatorToken"]["type"] == "http" and schemes["operatorToken"]["scheme"] == "bearer"
    assert schemes["operatorSession"] == {**schemes["operatorSession"], "type": "apiKey", "in": "cookie",
                                          "name": "tocsin_session"}
    ack = spec["paths"]["/v1/alerts/{alert_id}/acknowledge"]["post"]
    assert {"operatorToken": []} in ack["security"] and {"operatorSession": []} in ack["security"]
    assert {"401", "403"} <= set(ack["responses"])
    assert "403" in spec["paths"]["/v1/session"]["post"]["responses"]
    assert "403" not in spec["paths"]["/v1/alerts"]["get"]["responses"]  # a read checks no role or Origin
