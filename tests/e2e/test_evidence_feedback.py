"""Feedback on evidence from the alert's detail in real headless Chromium (issue #19)."""

import httpx
import pytest

from tests.e2e.support import post_report

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.committing, pytest.mark.heavy]


def test_an_operator_marks_evidence_and_the_mark_is_stored_with_who(page_for, live_server, tokens, utility_key):
    [alert_id] = post_report(live_server.url, utility_key, -73.975, 40.725, external_id="FB1")["alerts_changed"]
    page = page_for(tokens["operator"])
    page.click(f".alert-item[data-alert-id='{alert_id}']")
    evidence = "#detail-evidence li"
    page.wait_for_selector(f"{evidence} .feedback-not-incident", timeout=5_000)
    obs_id = int(page.get_attribute(evidence, "data-observation-id"))

    page.click(f"{evidence} .feedback-not-incident")
    page.wait_for_function("document.getElementById('action-status').textContent.startsWith('Marked')",
                           timeout=5_000)
    assert page.inner_text(f"{evidence} .tag.feedback") == "not an incident · operator-e2e"

    # "Wrong category" asks for the right one; the alert's own category is not offered.
    options = page.eval_on_selector_all(f"{evidence} .feedback-category option", "os => os.map(o => o.value)")
    assert "fire" in options and "gas_leak" not in options
    page.select_option(f"{evidence} .feedback-category", "hazmat")
    page.wait_for_selector(f"{evidence} .tag.feedback[data-kind='wrong_category']", timeout=5_000)
    assert "wrong category → hazmat · operator-e2e" in page.inner_text(evidence)

    # Stored with the operator, as the API lists it.
    headers = {"Authorization": f"Bearer {tokens['viewer']}"}
    stored = httpx.get(f"{live_server.url}/v1/observations/{obs_id}/feedback", headers=headers).json()
    assert [(f["kind"], f["category"], f["actor"]) for f in stored] == [
        ("wrong_category", "hazmat", "operator:operator-e2e"), ("not_incident", None, "operator:operator-e2e")]
    assert page.errors == []

    # A viewer sees the marks but no buttons.
    viewer = page_for(tokens["viewer"])
    viewer.click(f".alert-item[data-alert-id='{alert_id}']")
    viewer.wait_for_selector(f"{evidence} .tag.feedback", timeout=5_000)
    assert viewer.locator(f"{evidence} .tag.feedback").count() == 2
    assert viewer.locator(f"{evidence} .feedback-actions").count() == 0
    assert viewer.errors == []
