"""Sessions in a real browser: revocation reaches an open map, and a page on another port gets nowhere."""

import http.server
import threading
from datetime import UTC, datetime

import httpx
import pytest

from tests.e2e.conftest import free_port
from tests.e2e.support import post_report

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.committing, pytest.mark.heavy]


def test_disabling_the_operator_signs_their_open_map_out(page_for, live_server, tokens, session_factory):
    from accounts import operators

    page = page_for(tokens["operator"], with_form=True)  # the page's own sign-in form, then its reload
    assert page.evaluate("window.tocsin.wsState") == "connected"
    assert page.is_hidden("#signin-form") and page.inner_text("#whoami") == "operator-e2e (operator)"
    with session_factory.begin() as session:
        operators.disable_operator(session, name="operator-e2e", now=datetime.now(UTC))
    page.wait_for_function("window.tocsin.wsState === 'signed-out'", timeout=15_000)  # a bound, not a timing
    assert page.evaluate("fetch('/v1/session').then(r => r.status)") == 401
    assert page.errors == []


EVIL_PAGE = """<!doctype html><title>not the control room</title><script>
window.result = {};
const target = "%(target)s";
// The attack as found: a "simple" cross-origin POST (no preflight) that carries the cookie.
fetch(target + "/v1/alerts/%(alert_id)s/acknowledge", {method: "POST", credentials: "include", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}})
  .then(() => { window.result.fetched = true; }, (e) => { window.result.fetched = String(e); });
const ws = new WebSocket(target.replace("http", "ws") + "/v1/live");
ws.onclose = (ev) => { window.result.wsCode = ev.code; window.result.wsReason = ev.reason; };
ws.onmessage = (ev) => { window.result.wsMessage = ev.data; };
</script>"""


class _Evil(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args) -> None:
        pass


def test_a_page_on_another_port_of_the_same_host_cannot_use_the_cookie(page_for, live_server, tokens, utility_key):
    [alert_id] = post_report(live_server.url, utility_key, -73.975, 40.725, external_id="X1")["alerts_changed"]
    page = page_for(tokens["operator"])  # signed in: the browser holds the cookie for 127.0.0.1
    handler = type("Evil", (_Evil,), {"page": (EVIL_PAGE % {"target": live_server.url,
                                                             "alert_id": alert_id}).encode()})
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=evil.serve_forever, daemon=True)
    thread.start()
    try:
        # Same host, other port: the same *site*, so SameSite=Strict still sends the cookie.
        other = page.context.new_page()
        other.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
        other.wait_for_function("window.result.fetched !== undefined && window.result.wsCode !== undefined",
                                timeout=15_000)
        result = other.evaluate("window.result")
    finally:
        evil.shutdown()
        evil.server_close()
    # 4403 (not 4401 "missing operator token") shows the browser did send the cookie, and it was refused.
    assert result["wsCode"] == 4403, result
    assert "wsMessage" not in result
    r = httpx.get(f"{live_server.url}/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {tokens['viewer']}"},
                  timeout=10)
    assert r.json()["state"] == "open"  # the forged acknowledge did nothing
    # The map's own page, same origin, still can.
    status = page.evaluate(f"fetch('/v1/alerts/{alert_id}/acknowledge', {{method: 'POST'}}).then(r => r.status)")
    assert status == 200
