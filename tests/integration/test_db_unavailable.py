"""With no database to reach, every endpoint that needs one answers 503 with Retry-After and a JSON detail
naming the cause, and the live websocket closes with 1013 (try again later): never a 500 or a reset."""

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.conftest import TEST_RULES
from tests.integration.dispatch_support import free_port
from tocsin.app import create_app
from tocsin.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def client():
    # A real connection attempt to a port nothing listens on: refused, as when PostgreSQL is stopped.
    settings = Settings(database_url=f"postgresql+psycopg://tocsin:tocsin@127.0.0.1:{free_port()}/tocsin",
                        rules_file=TEST_RULES, warm_post_caches=False)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/alerts"), ("GET", "/v1/zones/layers"), ("GET", "/metrics"), ("GET", "/v1/observations"),
    ("POST", "/v1/reports"), ("GET", "/open311/v2/requests.json"), ("GET", "/v1/responders/1"),
])
def test_endpoints_answer_503_with_retry_after(client, method, path):
    r = client.request(method, path, headers={"Authorization": "Bearer some-key"},
                       json={"type": "Feature"} if method == "POST" else None)
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["detail"].startswith("database unavailable: ") and "retry later" in r.json()["detail"]


def test_readyz_says_503_and_the_process_stays_up(client):
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "unavailable" and r.headers["retry-after"]
    assert client.get("/healthz").status_code == 200


def test_the_live_websocket_closes_with_try_again_later(client):
    with pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect("/v1/live", headers={"Authorization": "Bearer some-token"}) as ws:
            ws.receive_text()
    assert closed.value.code == 1013 and "database unavailable" in closed.value.reason
    assert client.get("/healthz").status_code == 200
