"""The control-room map in real headless Chromium against the real server, database and broker."""

import json
import time
from datetime import datetime

import httpx
import pytest

from tests.e2e.support import ARTIFACTS, post_report

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.committing, pytest.mark.heavy]

CRITICAL_FILL = "#b2182b"  # map.js SEVERITY_STYLE.critical.fillColor
NO_ALERT_FILL = "#6b8fb3"


def zone_count(base_url: str, layer: str) -> int:
    r = httpx.get(f"{base_url}/v1/zones", params={"layer": layer}, timeout=10)
    assert r.status_code == 200, r.text
    return len(r.json()["features"])


def test_page_loads_with_every_zone_of_the_layer(page_for, live_server):
    page = page_for()  # anonymous: the map still draws zones, and offers sign-in
    expected = zone_count(live_server.url, "district")
    assert expected == 3
    assert page.evaluate("window.tocsin.zoneCount") == expected
    assert page.get_attribute("#map", "data-zone-count") == str(expected)
    assert page.locator("#map path.leaflet-interactive").count() >= expected
    assert page.is_visible("#signin-form")
    assert page.evaluate("window.tocsin.zoneFill('A')") == NO_ALERT_FILL

    # The shipped modules' pure parts: fading with age, and the panel's order (severity, then age).
    assert page.evaluate("import('/static/map.js').then(m => [m.fade(0), m.fade(3 * 3600), m.fade(48 * 3600)])") \
        == [1, 0.5, 0.15]
    order = page.evaluate("""import('/static/panel.js').then(m => m.sortAlerts([
        {id: 1, severity: 'minor', opened_at: '2026-11-25T10:00:00Z'},
        {id: 2, severity: 'critical', opened_at: '2026-11-25T12:00:00Z'},
        {id: 3, severity: 'major', opened_at: '2026-11-25T09:00:00Z'},
        {id: 4, severity: 'critical', opened_at: '2026-11-25T11:00:00Z'}]).map(a => a.id))""")
    assert order == [4, 2, 3, 1]

    page.select_option("#layer-select", "precinct")
    page.wait_for_function("window.tocsin.layer() === 'precinct' && window.tocsin.zoneCount === 1")
    assert page.errors == []


def test_report_appears_on_map_and_panel_within_2s(page_for, live_server, tokens, utility_key):
    page = page_for(tokens["operator"])
    assert page.evaluate("window.tocsin.zoneFill('A')") == NO_ALERT_FILL
    assert page.inner_text("#alert-count") == "0"

    started = time.monotonic()
    created = post_report(live_server.url, utility_key, -73.975, 40.725, external_id="E1",
                          description="gas smell at the corner")
    [alert_id] = created["alerts_changed"]
    page.wait_for_function(
        f"window.tocsin.alertIds().includes({alert_id}) && window.tocsin.zoneFill('A') === '{CRITICAL_FILL}' "
        f"&& window.tocsin.observationCount === 1", timeout=2_000)
    assert time.monotonic() - started < 2.5  # the POST's own round trip plus the 2 s budget

    item = page.locator(f".alert-item[data-alert-id='{alert_id}']")
    text = item.inner_text()
    assert "critical" in text.lower() and "District A (A)" in text and "open" in text and "1 evidence" in text
    assert page.evaluate("window.tocsin.zoneSeverity('A')") == "critical"
    assert page.evaluate("window.tocsin.zoneFill('B')") == NO_ALERT_FILL
    obs_id = page.evaluate("[...Array(100).keys()].find(i => window.tocsin.hasObservation(i))")
    assert page.evaluate(f"window.tocsin.uncertaintyRadiusM({obs_id})") == 25  # metres, drawn to scale

    # A polygon footprint (an outage over part of zone B) is drawn as a polygon, not a point.
    r = httpx.post(f"{live_server.url}/v1/reports", headers={"Authorization": f"Bearer {utility_key}"}, timeout=10,
                   json={"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[
                       [-73.94, 40.71], [-73.92, 40.71], [-73.92, 40.73], [-73.94, 40.73], [-73.94, 40.71]]]},
                         "properties": {"external_id": "E1-area", "category": "power_outage",
                                        "customers_affected": 40}})
    assert r.status_code == 201, r.text
    page.wait_for_function("window.tocsin.footprintCount() === 1 && window.tocsin.observationCount === 2",
                           timeout=2_000)

    # Clicking it shows its evidence (the report's details) and history.
    item.click()
    page.wait_for_selector("#alert-detail:not([hidden]) #detail-evidence li")
    assert "gas smell at the corner" in page.inner_text("#detail-evidence")
    assert "open" in page.inner_text("#detail-history")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "map-live-alert.png"))
    assert page.errors == []


def test_acknowledge_from_panel_changes_api_and_publishes_mqtt(page_for, live_server, tokens, utility_key, relay,
                                                               subscriber_factory, topic_prefix):
    sub = subscriber_factory(f"{topic_prefix}/alerts/#")
    page = page_for(tokens["operator"])
    [alert_id] = post_report(live_server.url, utility_key, -73.925, 40.725, external_id="E2")["alerts_changed"]
    page.wait_for_selector(f".alert-item[data-alert-id='{alert_id}']", timeout=2_000)

    # Keyboard only: focus the list item, Enter opens it, then the Acknowledge button.
    page.focus(f".alert-item[data-alert-id='{alert_id}']")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ack-button")
    page.fill("#action-note", "crew on the way")
    page.focus("#ack-button")
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"[...document.querySelectorAll('.alert-item[data-alert-id=\"{alert_id}\"] .state')]"
        ".some(e => e.textContent === 'acknowledged')", timeout=5_000)

    r = httpx.get(f"{live_server.url}/v1/alerts/{alert_id}",
                  headers={"Authorization": f"Bearer {tokens['operator']}"}, timeout=10)
    assert r.json()["state"] == "acknowledged"
    assert r.json()["acknowledged_by"] == "operator:operator-e2e"
    events = {}
    deadline = time.monotonic() + 10
    while "acknowledged" not in events and time.monotonic() < deadline:
        for topic, payload in sub.drain(wait=0.5):
            event = json.loads(payload)
            events[event["kind"]] = (topic, event)
    topic, event = events["acknowledged"]
    assert topic == f"{topic_prefix}/alerts/district/B/gas_leak" and event["alert_id"] == alert_id

    # Silence the zone's rule for an hour from the same panel.
    page.select_option("#silence-duration", "60")
    page.click("#silence-button")
    page.wait_for_function("document.getElementById('action-status').textContent === 'Silenced'", timeout=5_000)
    [silence] = httpx.get(f"{live_server.url}/v1/silences", timeout=10,
                          headers={"Authorization": f"Bearer {tokens['operator']}"}).json()
    assert silence["matchers"] == {"layer": "district", "zone": "B", "rule": "gas_leak_report"}
    starts, ends = (datetime.fromisoformat(silence[k]) for k in ("starts_at", "ends_at"))
    length_s = (ends - starts).total_seconds()
    assert 3590 <= length_s <= 3610
    assert page.errors == []


def test_viewer_sees_no_action_buttons_and_a_forged_action_gets_403(page_for, live_server, tokens, utility_key):
    page = page_for(tokens["viewer"])
    [alert_id] = post_report(live_server.url, utility_key, -73.975, 40.775, external_id="E3")["alerts_changed"]
    page.click(f".alert-item[data-alert-id='{alert_id}']", timeout=2_000)
    page.wait_for_selector("#alert-detail:not([hidden]) #detail-evidence li")
    assert page.locator("#detail-actions button").count() == 0
    assert page.locator("#ack-button, #resolve-button, #silence-button").count() == 0

    # The same request the operator's button sends, from the viewer's signed-in page (cookie auth).
    status, body = page.evaluate(
        """async (id) => { const r = await fetch(`/v1/alerts/${id}/acknowledge`, {method: 'POST',
             headers: {'Content-Type': 'application/json'}, body: JSON.stringify({note: 'forged'})});
           return [r.status, await r.text()]; }""", alert_id)
    assert status == 403 and "viewer" in body
    r = httpx.get(f"{live_server.url}/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {tokens['viewer']}"})
    assert r.json()["state"] == "open"

    # Sign out: the cookie is gone, the form is back, the map still shows the zones.
    page.click("#signout")
    page.wait_for_selector("#signin-form:not([hidden])")
    page.wait_for_function("window.tocsin && window.tocsin.ready === true")
    assert page.evaluate("fetch('/v1/session').then(r => r.status)") == 401
    assert page.evaluate("window.tocsin.zoneCount") == 3 and page.is_hidden("#signout")


def test_websocket_reconnects_and_backfills_what_happened_while_down(page_for, live_server, tokens, utility_key,
                                                                     client):
    page = page_for(tokens["operator"])
    assert page.evaluate("window.tocsin.observationCount") == 0

    # Server-side drop (the ops/test hook): the page reconnects on its own.
    live_server.app.state.live_hub.drop_all_threadsafe()
    page.wait_for_function("window.tocsin.wsState === 'reconnecting'", timeout=5_000)
    page.wait_for_function("window.tocsin.wsState === 'connected'", timeout=10_000)

    # A full server restart, with a report accepted (by another API process) while it is down.
    live_server.stop()
    page.wait_for_function("window.tocsin.wsState === 'reconnecting'", timeout=5_000)
    r = client.post("/v1/reports", headers={"Authorization": f"Bearer {utility_key}"}, json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.95, 40.775]},
        "properties": {"external_id": "E4", "category": "gas_leak"}})
    assert r.status_code == 201, r.text
    [alert_id] = r.json()["alerts_changed"]
    live_server.start()
    page.wait_for_function(
        f"window.tocsin.wsState === 'connected' && window.tocsin.alertIds().includes({alert_id}) "
        f"&& window.tocsin.observationCount === 1 && window.tocsin.zoneFill('C') === '{CRITICAL_FILL}'",
        timeout=15_000)
    assert page.inner_text("#conn-status") == "Live: connected"
    # While the server was down the browser logged refused connections; nothing else went wrong.
    assert [e for e in page.errors if "ERR_CONNECTION_REFUSED" not in e] == []


def test_alert_link_from_sms_opens_the_map_on_that_alert(page_for, live_server, tokens, utility_key):
    page = page_for(tokens["viewer"])
    [alert_id] = post_report(live_server.url, utility_key, -73.925, 40.725, external_id="E-link")["alerts_changed"]
    r = httpx.get(f"{live_server.url}/a/{alert_id}")
    assert r.status_code == 303 and r.headers["location"] == f"/?alert={alert_id}"
    page.goto(f"{live_server.url}/a/{alert_id}")
    page.wait_for_selector("#alert-detail:not([hidden]) #detail-evidence li", timeout=5_000)
    assert page.locator(f".alert-item[data-alert-id='{alert_id}'][aria-current='true']").count() == 1
