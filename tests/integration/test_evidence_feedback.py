"""Operators' feedback on evidence over HTTP against the real PostGIS (POST/GET /v1/observations/{id}/feedback,
GET /v1/feedback), and `tocsin classifier feedback-export` writing it as labelled posts."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.integration.operators_support import auth, tokens  # noqa: F401  (tokens is a fixture)
from tests.integration.posts_support import entries

pytestmark = [pytest.mark.integration, pytest.mark.committing]
DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def partner_key(session_factory):
    from db.session import transaction
    from geo import gazetteer_store
    from accounts import keys

    with transaction(session_factory) as session:
        gazetteer_store.save_entries(session, entries=entries())
        return keys.issue_key(session, role="partner", label="test partner")


def add_posts(client, partner_key, *items) -> list[int]:
    """Posts as (external_id, text, lang); their observation ids."""
    created = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    body = [{"source": "partner", "external_id": ext, "author": f"author-{ext}", "text": text, "lang": lang,
             "created_at": created} for ext, text, lang in items]
    r = client.post("/v1/posts:batch", json=body, headers=auth(partner_key))
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["created"] * len(items), r.text
    return [x["id"] for x in r.json()["results"]]


def mark(client, token, obs_id, **body):
    return client.post(f"/v1/observations/{obs_id}/feedback", json=body, headers=auth(token))


def test_feedback_is_stored_with_the_operator_and_time_and_listed(client, tokens, partner_key):
    fire, smoke = add_posts(client, partner_key, ("1", "Street flooding in Alphaville, cars stuck", "en"),
                            ("2", "Smoke and flames at Betaburg Station", "en"))
    before = datetime.now(UTC)
    r = mark(client, tokens["olive"], fire, kind="wrong_category", category="water_main", note="a burst main")
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["observation_id"], got["kind"], got["category"], got["note"], got["actor"]) == (
        fire, "wrong_category", "water_main", "a burst main", "operator:olive")
    assert datetime.fromisoformat(got["created_at"]) >= before - timedelta(seconds=1)
    assert r.headers["location"] == f"/v1/observations/{fire}/feedback"
    assert mark(client, tokens["ada"], smoke, kind="wrong_place").status_code == 201
    assert mark(client, tokens["ada"], fire, kind="not_incident").status_code == 201

    # Viewers read: one observation's marks, newest first, and every mark with filters.
    r = client.get(f"/v1/observations/{fire}/feedback", headers=auth(tokens["vera"]))
    assert r.status_code == 200, r.text
    assert [(f["kind"], f["actor"]) for f in r.json()] == [("not_incident", "operator:ada"),
                                                           ("wrong_category", "operator:olive")]
    every = client.get("/v1/feedback", headers=auth(tokens["vera"])).json()
    assert [f["observation_id"] for f in every] == [fire, smoke, fire]
    by_kind = client.get("/v1/feedback?kind=wrong_place", headers=auth(tokens["vera"])).json()
    assert [(f["observation_id"], f["category"]) for f in by_kind] == [(smoke, None)]
    by_actor = client.get("/v1/feedback", params={"actor": "operator:olive"}, headers=auth(tokens["vera"])).json()
    assert [f["kind"] for f in by_actor] == ["wrong_category"]
    by_ids = client.get(f"/v1/feedback?observation_ids={smoke},999", headers=auth(tokens["vera"])).json()
    assert [f["observation_id"] for f in by_ids] == [smoke]
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert client.get("/v1/feedback", params={"since": later}, headers=auth(tokens["vera"])).json() == []


def test_bad_feedback_gets_a_4xx_naming_the_problem(client, tokens, partner_key):
    [obs] = add_posts(client, partner_key, ("1", "Smoke and flames at Betaburg Station", "en"))
    r = mark(client, tokens["olive"], 987654, kind="not_incident")
    assert r.status_code == 404 and "observation 987654 does not exist" in r.json()["detail"]

    r = mark(client, tokens["olive"], obs, kind="duplicate")
    assert r.status_code == 422 and "not_incident" in r.text and "wrong_place" in r.text

    r = mark(client, tokens["olive"], obs, kind="wrong_category")
    assert r.status_code == 422
    assert r.json()["field"] == "category" and "needs the right category" in r.json()["detail"]

    r = mark(client, tokens["olive"], obs, kind="wrong_category", category="alien_invasion")
    assert r.status_code == 422 and "'alien_invasion' is not one of" in r.json()["detail"]

    r = mark(client, tokens["olive"], obs, kind="wrong_place", category="fire")
    assert r.status_code == 422 and "only for kind 'wrong_category'" in r.json()["detail"]

    r = mark(client, tokens["olive"], obs, kind="not_incident", extra="x")
    assert r.status_code == 422 and "extra" in r.text

    # A viewer reads but does not mark; nobody unauthenticated does either.
    r = mark(client, tokens["vera"], obs, kind="not_incident")
    assert r.status_code == 403 and "role 'operator'" in r.json()["detail"]
    assert client.post(f"/v1/observations/{obs}/feedback", json={"kind": "not_incident"}).status_code == 401
    assert client.get("/v1/feedback").status_code == 401
    assert client.get("/v1/feedback?kind=nope", headers=auth(tokens["vera"])).status_code == 422

    # None of the refused marks was stored.
    assert client.get("/v1/feedback", headers=auth(tokens["vera"])).json() == []


def test_feedback_is_in_the_openapi_document_with_its_errors(client):
    doc = client.get("/openapi.json").json()
    post = doc["paths"]["/v1/observations/{observation_id}/feedback"]["post"]
    assert {"201", "401", "403", "404", "422", "503"} <= set(post["responses"])
    assert "get" in doc["paths"]["/v1/feedback"]


def test_feedback_export_writes_labelled_posts_for_the_development_set(client, tokens, partner_key, database_url,
                                                                        tmp_path):
    flood, fire, elsewhere, corrected = add_posts(
        client, partner_key, ("1", "Street flooding in Alphaville, cars stuck", "en"),
        ("2", "Humo y llamas en Betaburg Station", "es"), ("3", "Power is out at Betaburg Station", "en"),
        ("4", "Smoke at Betaburg Station, just a barbecue", None))
    assert mark(client, tokens["olive"], flood, kind="not_incident").status_code == 201
    assert mark(client, tokens["olive"], fire, kind="wrong_category", category="hazmat").status_code == 201
    assert mark(client, tokens["olive"], elsewhere, kind="wrong_place").status_code == 201
    # Two marks on one post: the later one is the label.
    assert mark(client, tokens["olive"], corrected, kind="wrong_category", category="fire").status_code == 201
    assert mark(client, tokens["ada"], corrected, kind="not_incident").status_code == 201

    from tocsin.cli import app

    out = tmp_path / "feedback.jsonl"
    result = CliRunner().invoke(app, ["classifier", "feedback-export", str(out)],
                                env={"TOCSIN_DATABASE_URL": database_url, "TOCSIN_LOG_LEVEL": "WARNING"})
    assert result.exit_code == 0, result.output
    assert "wrote 3 labelled post(s)" in result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(rows, key=lambda r: r["text"]) == [
        {"text": "Humo y llamas en Betaburg Station", "category": "hazmat", "lang": "es"},
        {"text": "Smoke at Betaburg Station, just a barbecue", "category": "none", "lang": "en"},
        {"text": "Street flooding in Alphaville, cars stuck", "category": "none", "lang": "en"},
    ]
    # The same shape as the development set it is meant to extend.
    dev = json.loads((DATA / "classify_dev.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert all(set(r) == set(dev) for r in rows)
