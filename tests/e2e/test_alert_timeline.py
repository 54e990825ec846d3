"""The selected alert's timeline chart (evidence per bucket, state band) in real headless Chromium (issue #19)."""

import httpx
import pytest

from tests.e2e.support import post_report

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.committing]


def test_timeline_counts_the_evidence_and_shows_each_state(page_for, live_server, tokens, utility_key):
    [alert_id] = post_report(live_server.url, utility_key, -73.975, 40.725, external_id="T1")["alerts_changed"]
    post_report(live_server.url, utility_key, -73.976, 40.726, external_id="T2")
    detail = httpx.get(f"{live_server.url}/v1/alerts/{alert_id}",
                       headers={"Authorization": f"Bearer {tokens['viewer']}"}).json()
    evidence = len(detail["evidence"])
    assert evidence >= 2

    page = page_for(tokens["operator"])
    page.click(f".alert-item[data-alert-id='{alert_id}']")
    page.wait_for_selector("#detail-timeline svg .bar", timeout=5_000)
    counts = page.eval_on_selector_all("#detail-timeline svg .bar", "bs => bs.map(b => Number(b.dataset.count))")
    assert sum(counts) == evidence
    assert page.eval_on_selector_all("#detail-timeline .state", "s => s.map(x => x.dataset.state)") == ["open"]
    assert "per 5 min" in page.inner_text("#detail-timeline figcaption")

    page.click("#ack-button")
    page.wait_for_function("document.getElementById('action-status').textContent === 'Acknowledged'", timeout=5_000)
    states = page.eval_on_selector_all("#detail-timeline .state", "s => s.map(x => x.dataset.state)")
    assert states == ["open", "acknowledged"]
    # The acknowledgement's live event re-renders the panel, sometimes after the action's own refresh: the
    # outcome stays in view.
    page.evaluate("window.tocsin.refreshPanel()")
    assert page.inner_text("#action-status") == "Acknowledged"
    assert page.errors == []


def test_timeline_buckets_widen_for_a_long_alert(page_for, live_server):
    page = page_for()
    data = page.evaluate("""import('/static/timeline.js').then(m => m.timelineData({
        opened_at: '2026-12-01T10:02:00Z', resolved_at: '2026-12-01T16:00:00Z',
        evidence: [{observed_at: '2026-12-01T10:01:00Z'}, {observed_at: '2026-12-01T10:03:00Z'},
                   {observed_at: '2026-12-01T15:59:00Z'}],
        history: [{at: '2026-12-01T10:02:00Z', to_state: 'open'}, {at: '2026-12-01T16:00:00Z', to_state: 'resolved'}],
    }))""")
    # Six hours in 5-minute bars would be 72 bars: 15-minute ones instead (at most 48).
    assert data["bucketMs"] == 15 * 60_000 and len(data["counts"]) <= 48
    assert sum(data["counts"]) == 3 and data["counts"][0] == 2 and data["counts"][-1] == 1
    assert [s["state"] for s in data["states"]] == ["open", "resolved"]
    # A young alert still shows the half hour before it, in 5-minute bars.
    young = page.evaluate("""import('/static/timeline.js').then(m => m.timelineData({
        opened_at: '2026-12-01T10:02:00Z', evidence: [{observed_at: '2026-12-01T10:01:00Z'}],
        history: [{at: '2026-12-01T10:02:00Z', to_state: 'open'}]}, Date.parse('2026-12-01T10:03:00Z')))""")
    assert young["bucketMs"] == 5 * 60_000 and len(young["counts"]) >= 6 and young["counts"][-1] == 1
