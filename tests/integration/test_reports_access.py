"""A utility sees and changes only its own reports; others' reports are 404 with no existence leak."""

import pytest
from reports_support import add_utility, auth, report

pytestmark = [pytest.mark.integration, pytest.mark.committing]


@pytest.fixture
def two_utilities(client, utility_key, session_factory):
    other = add_utility(session_factory, "Other Gas")
    mine = client.post("/v1/reports", json=report(), headers=auth(utility_key))
    theirs = client.post("/v1/reports", json=report(external_id="THEIRS"), headers=auth(other))
    assert (mine.status_code, theirs.status_code) == (201, 201)
    return utility_key, other, mine.json()["id"], theirs.json()["id"]


def test_get_of_another_utilitys_report_is_the_same_404_as_a_missing_one(client, two_utilities):
    key, _, _, theirs = two_utilities
    other = client.get(f"/v1/reports/{theirs}", headers=auth(key))
    missing = client.get("/v1/reports/999999", headers=auth(key))
    assert (other.status_code, missing.status_code) == (404, 404)
    assert other.json()["detail"] == f"report {theirs} does not exist"
    assert missing.json()["detail"] == "report 999999 does not exist"


def test_patch_of_another_utilitys_report_is_404_and_changes_nothing(client, two_utilities):
    key, other, _, theirs = two_utilities
    r = client.patch(f"/v1/reports/{theirs}", json={"properties": {"status": "cancelled"}}, headers=auth(key))
    assert r.status_code == 404
    still = client.get(f"/v1/reports/{theirs}", headers=auth(other)).json()
    assert (still["status"], still["version"]) == ("reported", 1)


def test_list_shows_only_own_reports(client, two_utilities):
    key, other, mine, theirs = two_utilities
    assert [i["id"] for i in client.get("/v1/reports", headers=auth(key)).json()["items"]] == [mine]
    assert [i["id"] for i in client.get("/v1/reports", headers=auth(other)).json()["items"]] == [theirs]


def test_same_external_id_is_independent_per_utility(client, two_utilities, session_factory):
    key, other, mine, _ = two_utilities
    # "X1" exists for the first utility; the second may use it for its own report.
    r = client.post("/v1/reports", json=report(), headers=auth(other))
    assert r.status_code == 201 and r.json()["id"] != mine


def test_revoked_key_is_401_and_rotated_key_works(client, utility_key, session_factory):
    from datetime import UTC, datetime

    from db.session import transaction
    from accounts import keys

    with transaction(session_factory) as session:
        caller = keys.authenticate(session, key=utility_key)
        second = keys.issue_key(session, role="utility", utility_id=caller.utility_id, label="backup")
        rotated = keys.rotate_key(session, key_id=caller.key_id, now=datetime.now(UTC))
        assert len(keys.list_keys(session, utility_id=caller.utility_id)) == 3
    assert client.get("/v1/reports", headers=auth(utility_key)).status_code == 401
    assert client.get("/v1/reports", headers=auth(rotated)).status_code == 200
    assert client.get("/v1/reports", headers=auth(second)).status_code == 200


def test_post_with_a_key_revoked_since_its_last_post_is_401(client, utility_key, session_factory):
    # POST /v1/reports looks its key up outside the request's transaction (accounts.api.released_utility):
    # every request asks the database, so a revocation counts from the next request on.
    from datetime import UTC, datetime

    from db.session import transaction
    from accounts import keys

    assert client.post("/v1/reports", json=report(external_id="BEFORE"), headers=auth(utility_key)).status_code == 201
    with transaction(session_factory) as session:
        caller = keys.authenticate(session, key=utility_key)
        keys.revoke_key(session, key_id=caller.key_id, now=datetime.now(UTC))
    r = client.post("/v1/reports", json=report(external_id="AFTER"), headers=auth(utility_key))
    assert r.status_code == 401 and r.json()["detail"] == "invalid or revoked API key"
    assert r.headers["WWW-Authenticate"] == "Bearer"


def _revoke(session_factory, key):
    from datetime import UTC, datetime

    from db.session import transaction
    from accounts import keys

    with transaction(session_factory) as session:
        keys.revoke_key(session, key_id=keys.authenticate(session, key=key).key_id, now=datetime.now(UTC))


def test_a_known_key_is_not_looked_up_again_and_its_revocation_still_counts(client, utility_key, session_factory,
                                                                             monkeypatch):
    # accounts.key_cache: a key's second POST is served without a lookup. Once the key is revoked, its next
    # POST is 401 all the same, whether the insert refuses it (here a retry of a stored report, which would
    # otherwise be 200) or the API refuses the report first (outside the bounds: 422 for a live key).
    from db.session import transaction
    from accounts import keys

    with transaction(session_factory) as session:
        other = keys.issue_key(session, role="utility", utility_id=keys.authenticate(session, key=utility_key).utility_id)
    lookups = []
    real = keys.authenticate_outside
    monkeypatch.setattr(keys, "authenticate_outside", lambda engine, key: lookups.append(key) or real(engine, key=key))
    first = report(external_id="FIRST")
    outside = report({"type": "Point", "coordinates": [2.35, 48.85]}, external_id="PARIS")
    for key, body in ((utility_key, first), (other, report(external_id="OTHER"))):
        assert client.post("/v1/reports", json=body, headers=auth(key)).status_code == 201
    assert client.post("/v1/reports", json=report(external_id="SECOND"), headers=auth(utility_key)).status_code == 201
    assert client.post("/v1/reports", json=outside, headers=auth(other)).status_code == 422
    assert lookups == [utility_key, other]
    _revoke(session_factory, utility_key)
    _revoke(session_factory, other)
    for key, body in ((utility_key, first), (other, outside)):
        r = client.post("/v1/reports", json=body, headers=auth(key))
        assert (r.status_code, r.json()["detail"]) == (401, "invalid or revoked API key"), body
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert lookups == [utility_key, other]  # both refused without a lookup, and forgotten:
    assert client.post("/v1/reports", json=report(external_id="THIRD"), headers=auth(utility_key)).status_code == 401
    assert lookups == [utility_key, other, utility_key]


def test_post_with_a_partner_key_is_403(client, session_factory):
    from db.session import transaction
    from accounts import keys

    with transaction(session_factory) as session:
        partner = keys.issue_key(session, role="partner", label="news desk")
    r = client.post("/v1/reports", json=report(), headers=auth(partner))
    assert r.status_code == 403 and r.json()["detail"] == "this endpoint needs a utility API key"


def test_post_checks_the_key_before_the_body(client, utility_key):
    # A bad key with a bad body is 401, not 422: nothing about the body is answered to an unknown caller.
    r = client.post("/v1/reports", json={"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 200]}},
                    headers=auth("tk_not-a-real-key"))
    assert r.status_code == 401 and r.json()["detail"] == "invalid or revoked API key"
    assert client.post("/v1/reports", json={"type": "Feature"}).status_code == 401


def test_openapi_names_the_utility_key_scheme_on_post_reports(client):
    doc = client.get("/openapi.json").json()
    assert doc["paths"]["/v1/reports"]["post"]["security"] == [{"utilityKey": []}]
    assert doc["paths"]["/v1/reports"]["get"]["security"] == [{"utilityKey": []}]
    assert doc["components"]["securitySchemes"]["utilityKey"] == {
        "type": "http", "scheme": "bearer", "description": "A utility API key from `tocsin utilities add`."}
