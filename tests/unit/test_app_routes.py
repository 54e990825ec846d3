"""tocsin.app: the API's routers are included once per process and shared by every app (tocsin.app._api_routes).
Each app must still publish the same operations, and each request must still be answered with its own app's
state."""

from fastapi import FastAPI
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from tocsin.settings import Settings

# Nothing listens on port 9: these apps start without the database or the broker.
DOWN = {"database_url": "postgresql+psycopg://nobody@127.0.0.1:9/none", "mqtt_url": "mqtt://127.0.0.1:9",
        "freeze_heap": False}


def _settings(**changes) -> Settings:
    return Settings(**DOWN, **changes)


def test_every_operation_is_documented_as_when_the_app_included_each_router_itself():
    from alerts import api as alerts_api
    from db.openapi import error_responses
    from dispatch import api as dispatch_api
    from dispatch import metrics_api, twilio_api
    from geo import api as geo_api
    from ingest.posts import api as posts_api
    from ingest.reports import api as ingest_api
    from ingest.reports import open311_api
    from tocsin import feedback_api
    from tocsin.app import APP_RESPONSES, create_app

    reference = FastAPI(responses=APP_RESPONSES)
    for router, responses in ((ingest_api.router, None), (posts_api.router, None), (open311_api.router, None),
                              (geo_api.router, None), (alerts_api.router, error_responses(503)),
                              (dispatch_api.router, None), (twilio_api.router, error_responses(503)),
                              (metrics_api.router, None), (feedback_api.router, error_responses(503))):
        reference.include_router(router, responses=responses)
    expected = reference.openapi()

    first, second = create_app(_settings()).openapi(), create_app(_settings()).openapi()
    assert len(expected["paths"]) > 20
    for path, operations in expected["paths"].items():
        assert first["paths"].get(path) == operations, path
        assert second["paths"].get(path) == operations, path
    for name, schema in expected["components"]["schemas"].items():
        assert first["components"]["schemas"].get(name) == schema, name


def test_two_apps_in_one_process_each_answer_with_their_own_settings():
    """The same shared route, signed for one app's Twilio token: that app goes on to the (absent) database, the
    other refuses the signature, and an app without a token says webhooks are off."""
    from tocsin.app import create_app

    apps = {token: create_app(_settings(twilio_auth_token=token, public_base_url="http://tocsin.test"))
            for token in ("token-one", "token-two")}
    apps[None] = create_app(_settings(public_base_url="http://tocsin.test"))
    form = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
    signature = RequestValidator("token-one").compute_signature("http://tocsin.test/v1/twilio/status", form)

    answers = {}
    for token, app in apps.items():
        with TestClient(app) as client:
            answers[token] = client.post("/v1/twilio/status", data=form, headers={"X-Twilio-Signature": signature})
    assert answers["token-one"].status_code == 503, answers["token-one"].text  # signature good; no database
    assert answers["token-two"].status_code == 403
    assert "is not valid for http://tocsin.test/v1/twilio/status" in answers["token-two"].json()["detail"]
    assert answers[None].status_code == 403
    assert "TOCSIN_TWILIO_AUTH_TOKEN is not set" in answers[None].json()["detail"]
