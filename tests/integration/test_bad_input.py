"""Bad input gets a 4xx that names the field and the problem, never a 5xx (issue #15).

Each case here was a 5xx or an unhelpful answer on main; all go through the real app and PostGIS
(and the responders CSV through the real `tocsin responders import` command).
"""

from datetime import UTC, datetime

import pytest
from reports_support import auth, make_client, report  # noqa: F401  (make_client is a fixture)
from typer.testing import CliRunner

from db.session import transaction

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


@pytest.fixture
def admin(session_factory):
    from accounts import operators

    with transaction(session_factory) as session:
        _, token = operators.add_operator(session, name="root", role="admin", now=NOW)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def partner_key(session_factory):
    from accounts import keys

    with transaction(session_factory) as session:
        return keys.issue_key(session, role="partner", label="test partner")


def raw_json_with(field_json: str) -> bytes:
    """A report body whose description is `field_json` verbatim (a JSON escape the client library would not send)."""
    return ('{"type": "Feature", "geometry": {"type": "Point", "coordinates": [-73.975, 40.725]}, '
            '"properties": {"external_id": "S1", "category": "gas_leak", "description": ' + field_json + '}}').encode()


@pytest.mark.committing
def test_lone_surrogate_in_a_report_description_is_422_naming_the_field(client, utility_key):
    r = client.post("/v1/reports", content=raw_json_with('"leak \\ud800 here"'),
                    headers={**auth(utility_key), "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "description" in r.text and "surrogate" in r.text


@pytest.mark.committing
def test_lone_surrogate_in_a_report_patch_is_422(client, utility_key):
    created = client.post("/v1/reports", json=report(), headers=auth(utility_key))
    assert created.status_code == 201, created.text
    r = client.patch(f"/v1/reports/{created.json()['id']}", content=b'{"properties": {"cause": "\\udfff"}}',
                     headers={**auth(utility_key), "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "cause" in r.text and "surrogate" in r.text


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.committing
def test_nul_in_a_responder_name_is_422_naming_the_field(client, admin, method):
    if method == "POST":
        r = client.post("/v1/responders", json={"name": "Ana\x00", "phone": "2125550101"}, headers=admin)
    else:
        created = client.post("/v1/responders", json={"name": "Ana", "phone": "2125550101"}, headers=admin)
        assert created.status_code == 201, created.text
        r = client.patch(f"/v1/responders/{created.json()['id']}", json={"name": "A\x00na"}, headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "body.name"
    assert "NUL" in r.text


@pytest.mark.committing
def test_nul_in_a_coverage_layer_is_422(client, admin):
    r = client.post("/v1/responders", json={"name": "Ana", "phone": "2125550101",
                                            "coverage": [{"layer": "dis\x00trict"}]}, headers=admin)
    assert r.status_code == 422, r.text
    assert "layer" in r.json()["field"] and "NUL" in r.text


@pytest.mark.committing  # the CLI opens its own engine
def test_nul_in_the_responders_csv_names_the_line_and_field(session_factory, districts, database_url, tmp_path):
    from tocsin.cli import app

    path = tmp_path / "responders.csv"
    path.write_text("name,phone,coverage,tier,on_call\n"
                    "Ana,2125550101,district:A,1,\n"
                    "B\x00en,2125550102,district:B,1,\n")
    result = CliRunner().invoke(app, ["responders", "import", str(path)],
                                env={"TOCSIN_DATABASE_URL": database_url, "TOCSIN_LOG_LEVEL": "WARNING"})
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert f"{path}:3: name" in result.output and "NUL" in result.output


@pytest.mark.parametrize("url, field", [
    ("/v1/responders/1267650600228229401496703205376", "responder_id"),
    ("/v1/responders/2147483648", "responder_id"),  # one past the int4 column
    ("/v1/responders?offset=9223372036854775808", "offset"),
    ("/v1/outbox/9223372036854775808/retry", "outbox_id"),
])
@pytest.mark.committing
def test_ids_and_offsets_out_of_column_range_are_422(client, admin, url, field):
    method = "POST" if url.endswith("/retry") else "GET"
    r = client.request(method, url, headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["field"].endswith(field)
    assert "less than or equal" in r.text


@pytest.mark.committing
def test_nul_in_an_open311_request_id_is_400_naming_the_parameter(client, utility_key):
    r = client.get("/open311/v2/requests/%00.json", params={"api_key": utility_key})
    assert r.status_code == 400, r.text
    assert "service_request_id" in r.json()[0]["description"]


@pytest.mark.committing
def test_nul_in_an_open311_query_parameter_is_400(client, utility_key):
    r = client.get("/open311/v2/requests.json", params={"api_key": utility_key, "service_request_id": "a\x00b"})
    assert r.status_code == 400, r.text
    assert "service_request_id" in r.json()[0]["description"]


@pytest.mark.committing
def test_deep_nesting_to_posts_batch_is_400_saying_so(client, partner_key):
    r = client.post("/v1/posts:batch", content=b"[" * 200_000,
                    headers={**auth(partner_key), "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "JSON nested deeper than 64 levels" in r.json()["detail"]


@pytest.mark.committing
def test_deep_nesting_in_ndjson_is_400(client, partner_key):
    body = b'{"a": 1}\n' + b'{"a": ' * 100 + b"1" + b"}" * 100 + b"\n"
    r = client.post("/v1/posts:batch", content=body,
                    headers={**auth(partner_key), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 400, r.text
    assert "JSON nested deeper than 64 levels" in r.json()["detail"]


@pytest.mark.committing
def test_deep_nesting_to_a_report_is_400_saying_so(client, utility_key):
    body = raw_json_with("[" * 65 + "]" * 65)
    r = client.post("/v1/reports", content=body, headers={**auth(utility_key), "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "JSON nested deeper than 64 levels" in r.json()["detail"]
    # 64 levels in all is fine to parse (the schema then refuses the list where a string belongs).
    ok = client.post("/v1/reports", content=raw_json_with("[" * 61 + "]" * 61),
                     headers={**auth(utility_key), "Content-Type": "application/json"})
    assert ok.status_code == 422, ok.text


@pytest.mark.committing
def test_deep_nesting_to_open311_is_400_in_its_format(client, utility_key):
    r = client.post("/open311/v2/requests.json", content=b'{"description": ' + b"[" * 1000 + b"}",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "JSON nested deeper than 64 levels" in r.json()[0]["description"]


@pytest.mark.committing
def test_invalid_utf8_is_400_saying_so(client, utility_key):
    body = raw_json_with('"cafX"').replace(b"cafX", b"caf\xe9")  # Latin-1, not UTF-8
    r = client.post("/v1/reports", content=body, headers={**auth(utility_key), "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "not valid UTF-8" in r.json()["detail"] and "0xe9" in r.json()["detail"]


@pytest.mark.committing
def test_malformed_json_is_400_naming_the_position(client, utility_key):
    r = client.post("/v1/reports", content=b'{"type": "Feature",, }',
                    headers={**auth(utility_key), "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["detail"].startswith("request body is not valid JSON") and "position 19" in r.json()["detail"]


@pytest.mark.committing
def test_chunked_body_over_the_limit_is_413(make_client, utility_key):
    c = make_client(max_body_bytes=1000)

    def chunks():
        for _ in range(10):
            yield b" " * 500

    r = c.post("/v1/reports", content=chunks(), headers={**auth(utility_key), "Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413, r.text
    assert "exceeds the limit of 1000 bytes" in r.json()["detail"]
    # A chunked body within the limit still gets through to the route.
    small = c.post("/v1/reports", content=iter([raw_json_with('"ok"')]),
                   headers={**auth(utility_key), "Content-Type": "application/json"})
    assert small.status_code == 201, small.text
