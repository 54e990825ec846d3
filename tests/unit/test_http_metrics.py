"""The HTTP metrics middleware on a small Starlette app: labels are route templates, never raw paths; an
exception that escapes the app is a 500; each ApiMetrics has a registry of its own."""

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from tocsin.http_metrics import UNMATCHED, ApiMetrics, HttpMetrics


def boom(request):
    raise RuntimeError("boom")


def app_with(metrics: ApiMetrics) -> Starlette:
    item = Route("/items/{item_id:int}", lambda request: PlainTextResponse("item"))
    files = Mount("/files", app=PlainTextResponse("file"))
    app = Starlette(routes=[item, Route("/boom", boom), files])
    app.add_middleware(HttpMetrics, metrics=metrics)
    return app


def counts(metrics: ApiMetrics) -> dict[tuple[str, str, str], float]:
    return {(s.labels["method"], s.labels["route"], s.labels["status"]): s.value
            for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())
            for s in f.samples if s.name == "tocsin_http_request_duration_seconds_count"}


def test_requests_are_counted_by_method_route_template_and_status():
    metrics = ApiMetrics(writer=lambda: None, pid=7)
    with TestClient(app_with(metrics), raise_server_exceptions=False) as client:
        for i in (1, 2, 3):
            assert client.get(f"/items/{i}").status_code == 200
        assert client.post("/items/1").status_code == 405
        assert client.get("/files/a/b.txt").status_code == 200
        assert client.get("/items/not-a-number").status_code == 404
        assert client.request("BREW", "/items/1").status_code == 405
        assert client.get("/boom").status_code == 500
    assert counts(metrics) == {
        ("GET", "/items/{item_id}", "200"): 3,
        ("POST", "/items/{item_id}", "405"): 1,
        ("GET", "/files/{path}", "200"): 1,
        ("GET", UNMATCHED, "404"): 1,
        ("other", "/items/{item_id}", "405"): 1,  # a method outside the standard ones: not a label of its own
        ("GET", "/boom", "500"): 1,
    }


def test_each_api_metrics_has_its_own_registry():
    first, second = ApiMetrics(writer=lambda: None, pid=1), ApiMetrics(writer=lambda: None, pid=1)
    first.observe_request(method="GET", route="/healthz", status=200, seconds=0.01)
    assert counts(first) == {("GET", "/healthz", "200"): 1} and counts(second) == {}


@pytest.mark.parametrize("seconds", [0.0, 0.3])
def test_report_commits_land_in_their_histogram(seconds):
    metrics = ApiMetrics(writer=lambda: None, pid=3)
    metrics.observe_report_commit(seconds)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    by_name = {s.name: s for s in families["tocsin_report_commit_seconds"].samples if s.name.endswith(("_count",
                                                                                                       "_sum"))}
    assert by_name["tocsin_report_commit_seconds_count"].value == 1
    assert by_name["tocsin_report_commit_seconds_sum"].value == pytest.approx(seconds)
    assert by_name["tocsin_report_commit_seconds_count"].labels == {"pid": "3"}
    assert "tocsin_report_batches" not in families  # no writer yet (the lifespan builds it): no series
