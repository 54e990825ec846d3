"""Property-based, every operation: schemathesis drives the whole API from its own OpenAPI document.

Each operation is called with the credential its `security` declares (tests/integration/api_fuzz.py);
every generated request, valid and deliberately invalid, must get a non-5xx answer whose status,
content type and body the document declares. About 700 cases in all, most of the time spent generating
them (hypothesis), not in the app; `python -m bench.schemathesis` runs the same with more examples per
operation, for a deeper search.
"""

import pytest
from api_fuzz import fuzz, seed_credentials
from pydantic import SecretStr

# The app, on the engine its lifespan opens.
pytestmark = [pytest.mark.integration, pytest.mark.committing, pytest.mark.heavy]

POSITIVE, NEGATIVE = 15, 8  # examples per operation and mode (parameterless operations exhaust at 1)


def test_every_operation_never_5xx_and_matches_its_schema(settings, districts, session_factory):
    from fastapi.testclient import TestClient

    from tocsin.app import create_app

    # Rate limits off; a Twilio token, so webhooks reach the signature check (which generated cases fail).
    app = create_app(settings.model_copy(update={"rate_limit_per_min": 0,
                                                 "twilio_auth_token": SecretStr("fuzz-auth-token")}))
    credentials = seed_credentials(session_factory)
    with TestClient(app):  # runs the lifespan, which opens the engine on app.state
        result = fuzz(app, credentials, positive=POSITIVE, negative=NEGATIVE)

    assert result.server_errors == 0, [(k, result.samples[k]) for k in result.statuses if k[1] >= 500]
    assert result.failures == [], "\n".join(result.failures)
    assert result.cases >= 600, result.cases
    operations = {label for label, _ in result.statuses}
    assert len(operations) >= 35, sorted(operations)
    # The credentials worked: operations of each kind of caller got past authentication.
    for label in ("GET /v1/reports", "POST /v1/posts:batch", "GET /open311/v2/requests.{fmt}",
                  "GET /v1/responders", "GET /v1/alerts"):
        assert any(code < 400 for (op, code) in result.statuses if op == label), (label, result.statuses)
    twilio = {code for (op, code) in result.statuses if op.startswith("POST /v1/twilio")}
    assert 403 in twilio and twilio <= {400, 403, 413}, twilio
