"""The control room's panel in real headless Chromium: signed-out message, rings, other layers, filters and
attention, silences (issue #19)."""

import httpx
import pytest

from tests.e2e.support import post_report

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.committing, pytest.mark.heavy]


def item(alert_id: int) -> str:
    return f".alert-item[data-alert-id='{alert_id}']"


def test_signed_out_panel_says_sign_in_not_no_alerts(page_for, live_server, tokens, utility_key):
    post_report(live_server.url, utility_key, -73.975, 40.725, external_id="S1")  # an open alert exists
    page = page_for()
    empty = page.inner_text("#alerts-empty")
    assert "No unresolved alerts" not in empty
    assert "signed out" in empty and "sign in" in empty
    assert page.is_visible("#alerts-empty") and page.inner_text("#alert-count") != "0"
    assert page.is_hidden("#alert-filters") and page.is_hidden("#silences")

    # A session that ends under a signed-in page (revoked here) says so too, instead of a stale list.
    page = page_for(tokens["viewer"])
    page.wait_for_selector(".alert-item")
    assert page.evaluate("fetch('/v1/session', {method: 'DELETE'}).then(r => r.status)") == 204
    page.wait_for_function("window.tocsin.wsState === 'signed-out'", timeout=10_000)
    assert "sign in again" in page.inner_text("#alerts-empty")
    assert page.locator(".alert-item").count() == 0 and page.is_visible("#signin-form")
    assert page.errors == []


def test_uncertainty_rings_are_outlines_with_a_light_fill(page_for, live_server, tokens, utility_key):
    page = page_for(tokens["viewer"])
    post_report(live_server.url, utility_key, -73.975, 40.725, external_id="R1")
    page.wait_for_function("window.tocsin.observationCount === 1", timeout=2_000)
    obs_id = page.evaluate("[...Array(100).keys()].find(i => window.tocsin.hasObservation(i))")
    ring = page.evaluate(f"window.tocsin.uncertaintyStyle({obs_id})")
    assert ring["radius"] == 25 and ring["fill"] is True
    assert ring["fillOpacity"] <= 0.1 and ring["opacity"] >= 0.5 and ring["interactive"] is False
    # A wide ring (a geotag to a 1.7 km neighbourhood) is an outline only: it cannot tint the zoomed-in view.
    wide = page.evaluate("import('/static/map.js').then(m => m.uncertaintyStyle(1700, '#1f78b4', 1))")
    assert wide["fill"] is False and wide["opacity"] >= 0.5 and wide["weight"] >= 1
    assert page.errors == []


def test_switching_the_zone_layer_keeps_other_layers_alerts_marked(page_for, live_server, tokens, utility_key):
    page = page_for(tokens["viewer"])
    [alert_id] = post_report(live_server.url, utility_key, -73.975, 40.725, external_id="L1")["alerts_changed"]
    page.wait_for_selector(item(alert_id), timeout=2_000)
    assert page.evaluate("window.tocsin.otherLayerOutlines()") == []
    assert page.is_hidden("#other-layers")

    page.select_option("#layer-select", "precinct")
    page.wait_for_function("window.tocsin.layer() === 'precinct' && "
                           "JSON.stringify(window.tocsin.otherLayerOutlines()) === '[\"district/A\"]'", timeout=5_000)
    hint = page.inner_text("#other-layers")
    assert "1 alert is in other zone layers (district: 1)" in hint and "outlined" in hint
    assert "layer district" in page.inner_text(item(alert_id))
    assert page.locator(item(alert_id)).count() == 1  # still listed
    assert "1 alert" in page.inner_text("#layer-select option[value='district']")
    assert page.locator("#map path[stroke-dasharray='10 6']").count() == 1

    page.select_option("#layer-select", "district")
    page.wait_for_function("window.tocsin.layer() === 'district' && window.tocsin.otherLayerOutlines().length === 0 "
                           "&& window.tocsin.zoneSeverity('A') === 'critical'", timeout=5_000)
    assert page.is_hidden("#other-layers")
    assert page.errors == []


def test_filters_and_a_cue_for_a_new_critical_alert(page_for, live_server, tokens, utility_key):
    page = page_for(tokens["operator"])
    base_title = page.title()
    assert not base_title.startswith("(")
    assert page.get_attribute("#mute-toggle", "aria-pressed") == "false"
    post_report(live_server.url, utility_key, -73.925, 40.725, external_id="F1", category="power_outage")
    [minor] = post_report(live_server.url, utility_key, -73.926, 40.726, external_id="F2",
                          category="power_outage")["alerts_changed"]
    page.wait_for_selector(item(minor), timeout=2_000)
    assert page.evaluate("window.tocsin.cues()") == 0 and page.title() == base_title  # minor: no cue

    [critical] = post_report(live_server.url, utility_key, -73.975, 40.725, external_id="F3")["alerts_changed"]
    page.wait_for_selector(item(critical), timeout=2_000)
    page.wait_for_function("window.tocsin.cues() === 1")
    assert page.title() == f"(1) {base_title}"
    assert page.evaluate("window.tocsin.beeps()") == 1

    page.select_option("#filter-severity", "critical")
    assert page.locator(".alert-item").count() == 1 and page.locator(item(critical)).count() == 1
    assert page.inner_text("#alert-count") == "1 of 2"
    page.select_option("#filter-severity", "")
    page.select_option("#filter-category", "power_outage")
    assert page.locator(".alert-item").count() == 1 and page.locator(item(minor)).count() == 1
    page.select_option("#filter-severity", "major")
    assert page.locator(".alert-item").count() == 0
    assert "No alerts match the filters (2 hidden)" in page.inner_text("#alerts-empty")
    page.select_option("#filter-category", "")
    page.select_option("#filter-severity", "")
    assert page.locator(".alert-item").count() == 2

    # Acknowledging it clears the title's count.
    r = httpx.post(f"{live_server.url}/v1/alerts/{critical}/acknowledge", timeout=10,
                   headers={"Authorization": f"Bearer {tokens['operator']}"})
    assert r.status_code == 200, r.text
    page.wait_for_function(f"document.title === {base_title!r}", timeout=2_000)

    # Mute is remembered across a reload; a muted page still counts the cue in the title but does not beep.
    page.click("#mute-toggle")
    assert page.get_attribute("#mute-toggle", "aria-pressed") == "true"
    page.reload()
    page.wait_for_function("window.tocsin && window.tocsin.ready === true", timeout=10_000)
    assert page.evaluate("window.tocsin.muted()") is True
    assert page.get_attribute("#mute-toggle", "aria-pressed") == "true"
    [another] = post_report(live_server.url, utility_key, -73.95, 40.775, external_id="F4")["alerts_changed"]
    page.wait_for_selector(item(another), timeout=2_000)
    page.wait_for_function("window.tocsin.cues() === 1")
    assert page.evaluate("window.tocsin.beeps()") == 0
    assert page.title() == f"(1) {base_title}"
    assert page.errors == []


def test_silences_list_badge_and_unsilence(page_for, live_server, tokens, utility_key):
    auth = {"Authorization": f"Bearer {tokens['operator']}"}
    page = page_for(tokens["operator"])
    assert page.is_visible("#silences") and page.is_visible("#silences-empty")
    [alert_id] = post_report(live_server.url, utility_key, -73.925, 40.725, external_id="Q1")["alerts_changed"]
    page.click(item(alert_id), timeout=2_000)
    page.wait_for_selector("#silence-button")
    assert page.locator(f"{item(alert_id)} .tag.silenced").count() == 0

    page.select_option("#silence-duration", "240")
    page.fill("#action-note", "crew on site")
    page.click("#silence-button")
    page.wait_for_function("document.getElementById('action-status').textContent === 'Silenced'", timeout=5_000)
    assert page.input_value("#silence-duration") == "240"  # the picker keeps its choice after the action
    [silence] = httpx.get(f"{live_server.url}/v1/silences", headers=auth, timeout=10).json()
    row = page.locator(f"#silence-list li[data-silence-id='{silence['id']}']")
    text = row.inner_text()
    assert "layer district, zone B, rule gas_leak_report" in text
    assert "by operator-e2e" in text and "crew on site" in text and "until" in text
    assert page.locator(f"{item(alert_id)} .tag.silenced").inner_text() == "silenced"
    assert "crew on site" in page.inner_text("#detail-facts")

    row.locator("button.unsilence").click()
    page.wait_for_function("document.querySelectorAll('#silence-list li').length === 0", timeout=5_000)
    assert page.locator(f"{item(alert_id)} .tag.silenced").count() == 0
    assert httpx.get(f"{live_server.url}/v1/silences", headers=auth, timeout=10).json() == []
    assert page.errors == []

    # A viewer sees the list but no unsilence button.
    httpx.post(f"{live_server.url}/v1/silences", headers=auth, timeout=10, json={
        "matchers": {"category": "gas_leak"}, "ends_at": "2099-01-01T00:00:00Z", "comment": "drill"})
    viewer = page_for(tokens["viewer"])
    viewer.wait_for_selector("#silence-list li")
    assert "drill" in viewer.inner_text("#silence-list") and viewer.locator("button.unsilence").count() == 0


def test_detail_shows_who_was_notified_and_escalate_records_the_operator(page_for, live_server, tokens, utility_key,
                                                                         session_factory):
    from datetime import UTC, datetime

    from sqlalchemy import text

    from db.session import transaction
    from dispatch import responders

    [alert_id] = post_report(live_server.url, utility_key, -73.975, 40.725, external_id="N1")["alerts_changed"]
    now = datetime.now(UTC)
    with transaction(session_factory) as session:
        ana = responders.create_responder(session, name="Ana Ruiz", phone="+12125550111", coverage=[], now=now)
        session.flush()
        session.execute(text(
            "INSERT INTO deliveries (event_id, alert_id, responder_id, channel, tier, body, status, attempts, "
            "next_attempt_at, created_at, updated_at) SELECT event_id, alert_id, :r, 'sms', 1, 'Gas leak', "
            "'delivered', 1, :now, :now, :now FROM outbox_events WHERE alert_id = :a ORDER BY id LIMIT 1"),
            {"r": ana.id, "now": now, "a": alert_id})

    page = page_for(tokens["operator"])
    page.click(item(alert_id))
    page.wait_for_selector("#detail-notified:not([hidden]) #detail-deliveries li", timeout=5_000)
    text_ = page.inner_text("#detail-deliveries")
    assert "Ana Ruiz · sms · tier 1 · delivered" in text_ and "acknowledged" not in text_
    assert page.is_hidden("#deliveries-empty")

    page.fill("#action-note", "tier 1 silent")
    page.click("#escalate-button")
    page.wait_for_function("document.getElementById('action-status').textContent === 'Escalated'", timeout=5_000)
    history = page.inner_text("#detail-history")
    assert "by operator:operator-e2e: escalated to tier 2: tier 1 silent" in history
    assert page.errors == []

    # A viewer sees neither the deliveries nor the button.
    viewer = page_for(tokens["viewer"])
    viewer.click(item(alert_id))
    viewer.wait_for_selector("#alert-detail:not([hidden]) #detail-evidence li")
    assert viewer.is_hidden("#detail-notified") and viewer.locator("#escalate-button").count() == 0
    assert viewer.errors == []


WATER = "rgb(170, 211, 223)"  # app.css #map.water
LAND = "#f2efe9"  # map.js LAND_COLOUR


def test_land_over_water_legend_clear_of_the_south_west_and_labels_never_overlap(page_for, live_server, tokens,
                                                                                 utility_key):
    page = page_for(tokens["viewer"])
    # Land from the layer with the fewest zones (no `borough` here): precinct's one zone, under the districts.
    assert page.evaluate("window.tocsin.landLayer") == "precinct" and page.evaluate("window.tocsin.landCount()") == 1
    assert page.evaluate("getComputedStyle(document.getElementById('map')).backgroundColor") == WATER
    land = page.locator(".leaflet-land-pane path")
    assert land.count() == 1 and land.get_attribute("fill") == LAND and land.get_attribute("fill-opacity") == "1"
    assert page.evaluate("""import('/static/map.js').then(m => [
        m.landLayer([{name: 'nta', zones: 262}, {name: 'borough', zones: 5}, {name: 'x', zones: 1}]),
        m.landLayer([{name: 'nta', zones: 262}, {name: 'cd', zones: 59}])])""") == ["borough", "cd"]

    # The legend sits top right, clear of the south-west zone (where Staten Island is in New York).
    legend = page.locator("#legend").bounding_box()
    sw = page.evaluate("""(() => { const m = document.getElementById('map').getBoundingClientRect();
        return {left: m.left, bottom: m.bottom, right: m.right, top: m.top}; })()""")
    assert legend["y"] < sw["top"] + 20 and legend["x"] + legend["width"] > sw["right"] - 20
    assert legend["y"] + legend["height"] < (sw["top"] + sw["bottom"]) / 2  # the upper half only

    # Three alerting zones side by side: at city zoom out, their labels would overlap; none do.
    for code, lon, lat in (("A", -73.975, 40.725), ("B", -73.925, 40.725), ("C", -73.95, 40.775)):
        post_report(live_server.url, utility_key, lon, lat, external_id=f"W{code}")
    page.wait_for_function("window.tocsin.alertCount === 3", timeout=3_000)
    for zoom in (13, 11, 9, 8):
        page.evaluate(f"window.tocsin.setZoom({zoom})")
        page.wait_for_function(f"window.tocsin.zoom() === {zoom}")
        labels = page.evaluate("window.tocsin.visibleLabels()")
        assert labels, zoom
        for i, a in enumerate(labels):
            for b in labels[i + 1:]:
                overlap = a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] \
                    and b["top"] < a["bottom"]
                assert not overlap, (zoom, a, b)
    assert page.evaluate("window.tocsin.hiddenLabelCount()") >= 1  # at zoom 8 some had to give way
    page.evaluate("window.tocsin.setZoom(13)")
    page.wait_for_function("window.tocsin.zoom() === 13 && window.tocsin.hiddenLabelCount() === 0")
    assert page.errors == []
