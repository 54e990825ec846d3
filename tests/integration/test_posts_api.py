"""POST /v1/posts:batch through the real app and PostGIS: partner keys, JSON and NDJSON, per-item results."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.posts_support import entries

pytestmark = [pytest.mark.integration, pytest.mark.committing]


@pytest.fixture
def partner_key(session_factory):
    from db.session import transaction
    from geo import gazetteer_store
    from accounts import keys

    with transaction(session_factory) as session:
        gazetteer_store.save_entries(session, entries=entries())
        return keys.issue_key(session, role="partner", label="test partner")


def post(ext, text, **extra):
    created = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    return {"source": "partner", "external_id": ext, "author": f"author-{ext}", "text": text,
            "created_at": created, **extra}


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def test_json_array_with_good_bad_and_repeated_items(client, partner_key):
    body = [
        post("1", "Street flooding in Alphaville, cars stuck"),
        post("2", "Smoke and flames at Betaburg Station", coordinates=[40.725, -73.925]),  # swapped
        {"source": "partner", "external_id": "3", "text": "no author, no time"},
        "not an object",
        post("4", "Power is out on the whole block", created_at="2026-11-25T21:00:00"),  # naive time
        post("1", "Street flooding in Alphaville, cars stuck"),
        post("6", "Smoke at the corner", coordinates=[-73.925, 140.7]),
    ]
    r = client.post("/v1/posts:batch", json=body, headers=auth(partner_key))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["created"], out["duplicate"], out["rejected"]) == (1, 1, 5)
    res = out["results"]
    assert [x["index"] for x in res] == [0, 1, 2, 3, 4, 5, 6]
    assert [x["status"] for x in res] == ["created", "rejected", "rejected", "rejected", "rejected", "duplicate",
                                          "rejected"]
    assert res[0]["category"] == "flood" and res[0]["located"] is True
    assert res[5]["id"] == res[0]["id"]
    assert "[40.725, -73.925] is outside the jurisdiction" in res[1]["error"]
    assert "[longitude, latitude]" in res[1]["error"]
    assert "latitude 140.7 is outside [-90, 90]" in res[6]["error"]
    assert "author" in res[2]["error"] and "created_at" in res[2]["error"]
    assert "JSON object" in res[3]["error"]
    assert "created_at" in res[4]["error"] and "2026-11-25T21:00:00" in res[4]["error"]


def test_a_nul_character_rejects_its_item_alone(client, partner_key):
    """PostgreSQL stores no NUL in text or JSON: such an item is rejected by name, the rest of the batch stored."""
    body = [post("z1", "Street flooding in Alphaville"), post("z2", "fire\u0000 at Cedar Hill"),
            post("z3", "Smoke at Betaburg Station", place={"name": "corner\u0000"})]
    r = client.post("/v1/posts:batch", content=json.dumps(body).encode(),
                    headers={**auth(partner_key), "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["status"] for x in res] == ["created", "rejected", "rejected"]
    assert "text: contains a NUL character" in res[1]["error"]
    assert "place.name: contains a NUL character" in res[2]["error"]


def test_ndjson_with_a_malformed_line(client, partner_key):
    lines = [json.dumps(post("n1", "Basement flooded on my street")), "{not json", "",
             json.dumps(post("n2", "Huge fire at Cedar Hill, flames everywhere"))]
    r = client.post("/v1/posts:batch", content="\n".join(lines).encode(),
                    headers={**auth(partner_key), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [(x["index"], x["status"]) for x in res] == [(0, "created"), (1, "rejected"), (2, "created")]
    assert "line 2 is not valid JSON" in res[1]["error"]
    assert res[2]["category"] == "fire" and res[2]["located"] is True


def test_utility_key_is_forbidden(client, utility_key):
    r = client.post("/v1/posts:batch", json=[post("u1", "flooding")], headers=auth(utility_key))
    assert r.status_code == 403
    assert "partner API key" in r.json()["detail"]


def test_missing_key_is_unauthorized(client):
    assert client.post("/v1/posts:batch", json=[]).status_code == 401


@pytest.mark.parametrize("body, content_type, message", [
    (b'{"source": "x"}', "application/json", "must be a JSON array"),
    (b"[1, 2", "application/json", "not valid JSON"),
    (b"[]", "text/csv", "'text/csv'"),
])
def test_unusable_bodies_get_422_naming_the_problem(client, partner_key, body, content_type, message):
    r = client.post("/v1/posts:batch", content=body, headers={**auth(partner_key), "Content-Type": content_type})
    assert r.status_code == 422
    assert message in r.json()["detail"]


def test_more_than_10000_posts_is_refused(client, partner_key):
    body = ("{}\n" * 10_001).encode()
    r = client.post("/v1/posts:batch", content=body,
                    headers={**auth(partner_key), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 422
    assert "10001 posts; the limit is 10000" in r.json()["detail"]


def test_a_full_size_batch_is_accepted(client, partner_key):
    """10,000 posts (about 2 MB) pass the body limit that guards the other endpoints (1 MB)."""
    body = [post(f"big{i}", f"Street flooding in Alphaville, report {i}") for i in range(10_000)]
    r = client.post("/v1/posts:batch", json=body, headers=auth(partner_key))
    assert r.status_code == 200, r.text[:300]
    assert r.json()["created"] == 10_000
