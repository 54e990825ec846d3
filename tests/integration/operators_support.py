"""Operators for the control-room API tests: a viewer, an operator and an admin, their bearer header, and signing
in from the map's own origin (the tests' public_base_url is http://tocsin.test)."""

from datetime import UTC, datetime

import pytest


@pytest.fixture
def tokens(session_factory) -> dict[str, str]:
    """vera (viewer), olive (operator) and ada (admin), committed; their bearer tokens by name."""
    from accounts import operators
    from db.session import transaction

    now = datetime.now(UTC)
    out = {}
    with transaction(session_factory) as session:
        for name, role in (("vera", "viewer"), ("olive", "operator"), ("ada", "admin")):
            _, out[name] = operators.add_operator(session, name=name, role=role, now=now)
    return out


def auth(token: str) -> dict[str, str]:
    """The Authorization header for an operator token (or any API key)."""
    return {"Authorization": f"Bearer {token}"}


SAME = {"Origin": "http://tocsin.test"}  # what a browser on the map sends


def sign_in(client, token: str) -> str:
    """Sign in from the map's origin; returns the session cookie."""
    r = client.post("/v1/session", json={"token": token}, headers=SAME)
    assert r.status_code == 200, r.text
    return client.cookies["tocsin_session"]
