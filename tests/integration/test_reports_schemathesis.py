"""Property-based: schemathesis drives the report endpoints from the app's own OpenAPI document.

Every generated request, valid (positive) and deliberately invalid (negative), must get a non-5xx
answer whose status code, content type and body match what the OpenAPI document declares.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from reports_support import auth, report, square
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance, not_a_server_error, response_schema_conformance, status_code_conformance,
)

# The app, on the engine its lifespan opens.
pytestmark = [pytest.mark.integration, pytest.mark.committing, pytest.mark.heavy]

# Per operation and mode; 5 operations x (40 + 25) = 325 cases at most (simple parameters can exhaust earlier).
# test_api_schemathesis covers these operations too, and bench.schemathesis searches deeper.
EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 25}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPERATIONS = {("POST", "/v1/reports"), ("GET", "/v1/reports"), ("GET", "/v1/reports/{report_id}"),
              ("PATCH", "/v1/reports/{report_id}"), ("POST", "/v1/reports:batch")}


def test_report_endpoints_never_5xx_and_match_their_schema(settings, districts, utility_key):
    from fastapi.testclient import TestClient

    from tocsin.app import create_app

    app = create_app(settings.model_copy(update={"rate_limit_per_min": 0}))
    calls: list[tuple[str, str, int]] = []
    with TestClient(app) as c:  # runs the lifespan, which opens the engine on app.state
        # A few stored reports, so generated ids 1..3 exist and GET/PATCH reach the service.
        for i, geom in enumerate([None, square(-73.99, 40.71, -73.94, 40.72), None]):
            r = c.post("/v1/reports", json=report(geom, external_id=f"S{i}"), headers=auth(utility_key))
            assert r.status_code == 201, r.text
        schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=r"^/v1/reports")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {(op.method.upper(), op.path) for op in operations} == OPERATIONS

        for op in operations:
            for mode, n in EXAMPLES.items():
                @given(case=op.as_strategy(generation_mode=mode))
                @hypothesis_settings(max_examples=n, deadline=None, derandomize=True, database=None,
                                     suppress_health_check=list(HealthCheck))
                def run(case):
                    response = case.call_and_validate(headers=auth(utility_key), checks=CHECKS)
                    calls.append((op.method.upper(), op.path, response.status_code))

                run()

    assert len(calls) >= 300, len(calls)
    assert {(m, p) for m, p, _ in calls} == OPERATIONS
    assert any(code in (200, 201) for _, _, code in calls), "no generated request was accepted"
