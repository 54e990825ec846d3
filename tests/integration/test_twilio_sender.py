"""The real twilio client against the fake Twilio server (no external services needed)."""

import logging
import re
import threading

import httpx
import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.base.exceptions import TwilioRestException

from dispatch.senders.base import DeliveryError
from dispatch.senders.console import ConsoleSender
from dispatch.senders.sms import TwilioSender, classify
from dispatch.twilio_signature import compute_twilio_signature, validate_twilio_signature
from tests.fakes.http_thread import serve_in_thread

FROM = "+15005550006"
TO = "+15558675310"
SID = re.compile(r"^SM[0-9a-f]{32}$")


@pytest.fixture
def sender(fake):
    return TwilioSender(fake.account_sid, fake.auth_token, FROM, base_url=fake.base_url, timeout_s=1)


def test_send_returns_sid_and_fake_records_message(fake, sender):
    body = "TOCSIN MAJOR flood, Astoria (QN0101): 7 reports/10m. Reply ACK K7Q. https://x/a/123"
    sid = sender.send(TO, body)
    assert SID.match(sid)
    [message] = fake.messages
    assert (message["sid"], message["to"], message["from"], message["body"]) == (sid, TO, FROM, body)
    assert message["status"] == "queued" and message["direction"] == "outbound-api"


def test_messaging_service_sid_instead_of_from(fake):
    service = "MG" + "ab" * 16
    sender = TwilioSender(fake.account_sid, fake.auth_token, service, base_url=fake.base_url)
    sender.send(TO, "hi")
    assert fake.messages[-1]["messaging_service_sid"] == service
    assert fake.messages[-1]["from"] is None


def test_fetch_message(fake, sender):
    sid = sender.send(TO, "hi")
    url = f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages/{sid}.json"
    fetched = httpx.get(url, auth=(fake.account_sid, fake.auth_token))
    assert fetched.status_code == 200
    assert (fetched.json()["sid"], fetched.json()["to"], fetched.json()["body"]) == (sid, TO, "hi")
    missing = httpx.get(url.replace(sid, "SM" + "0" * 32), auth=(fake.account_sid, fake.auth_token))
    assert (missing.status_code, missing.json()["code"]) == (404, 20404)
    assert httpx.get(url).status_code == 401


def test_error_body_follows_twilio(fake):
    url = f"{fake.base_url}/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    bad = httpx.post(url, data={"To": "12", "From": FROM, "Body": "x"}, auth=(fake.account_sid, fake.auth_token))
    assert bad.status_code == 400
    assert bad.json() == {
        "code": 21211,
        "message": "The 'To' number 12 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400,
    }
    unauth = httpx.post(url, data={"To": TO, "From": FROM, "Body": "x"}, auth=(fake.account_sid, "wrong"))
    assert (unauth.status_code, unauth.json()["code"]) == (401, 20003)


@pytest.mark.parametrize(
    "arrange, to, code",
    [
        (lambda fake: None, "5558675310", 21211),  # not E.164
        (lambda fake: fake.numbers_opted_out.add(TO), TO, 21610),
        (lambda fake: fake.unreachable.add(TO), TO, 21614),
    ],
)
def test_permanent_errors_not_retryable(fake, sender, arrange, to, code):
    arrange(fake)
    with pytest.raises(DeliveryError) as info:
        sender.send(to, "hi")
    assert (info.value.retryable, info.value.code, info.value.status) == (False, code, 400)
    assert fake.messages == []


def test_bad_credentials_not_retryable(fake):
    sender = TwilioSender(fake.account_sid, "not-the-token", FROM, base_url=fake.base_url)
    with pytest.raises(DeliveryError) as info:
        sender.send(TO, "hi")
    assert (info.value.retryable, info.value.code, info.value.status) == (False, 20003, 401)


@pytest.mark.parametrize(
    "status, code",
    [(500, None), (503, None), (429, 20429)],
)
def test_transient_errors_retryable_then_succeed(fake, sender, status, code):
    fake.fail_next(1, status=status, code=code)
    with pytest.raises(DeliveryError) as info:
        sender.send(TO, "hi")
    assert info.value.retryable is True
    assert info.value.status == status
    assert SID.match(sender.send(TO, "hi"))  # the retry goes through
    assert fake.attempts == 2 and len(fake.messages) == 1


def test_timeout_is_retryable(fake):
    sender = TwilioSender(fake.account_sid, fake.auth_token, FROM, base_url=fake.base_url, timeout_s=0.3)
    fake.delay_next(1.0)
    with pytest.raises(DeliveryError) as info:
        sender.send(TO, "hi")
    assert info.value.retryable is True and info.value.status is None
    # The stalled request was still accepted: a retry after a timeout can duplicate an SMS.
    fake.wait_idle()
    assert len(fake.messages) == 1


def test_connection_refused_is_retryable():
    with serve_in_thread(Starlette()) as url:
        pass  # the port is closed again now
    sender = TwilioSender("AC" + "0" * 32, "token", FROM, base_url=url, timeout_s=1)
    with pytest.raises(DeliveryError) as info:
        sender.send(TO, "hi")
    assert info.value.retryable is True


@pytest.fixture(scope="module")
def receiver():
    """A tiny webhook endpoint that keeps what it is sent, with the signature verdict."""
    got: list[dict] = []
    lock = threading.Lock()
    state = {"token": None, "base": None}

    async def status(request: Request) -> Response:
        form = await request.form()
        url = str(request.url)  # what the fake called: no proxy in between here
        ok = validate_twilio_signature(url, form, request.headers.get("X-Twilio-Signature"), state["token"])
        with lock:
            got.append({"url": url, "params": dict(form), "valid": ok})
        return Response(status_code=204 if ok else 403)

    app = Starlette(routes=[Route("/v1/twilio/status", status, methods=["POST"])])
    with serve_in_thread(app) as base:
        state["base"] = base
        yield got, state


def test_signed_status_callbacks_arrive_and_validate(fake, sender, receiver):
    got, state = receiver
    got.clear()
    state["token"] = fake.auth_token
    callback = f"{state['base']}/v1/twilio/status?delivery=42"
    sid = sender.send(TO, "hi", status_callback=callback)
    fake.wait_for_callbacks(3)
    assert [c["params"]["MessageStatus"] for c in got] == ["queued", "sent", "delivered"]
    assert all(c["valid"] for c in got)
    assert all(c["params"]["MessageSid"] == sid and c["url"] == callback for c in got)
    assert [c["result"] for c in fake.callbacks] == [204, 204, 204]
    assert fake.messages[0]["status"] == "delivered"


def test_undelivered_callback_carries_error_code(fake, sender, receiver):
    got, state = receiver
    got.clear()
    state["token"] = fake.auth_token
    fake.undelivered.add(TO)
    sender.send(TO, "hi", status_callback=f"{state['base']}/v1/twilio/status")
    fake.wait_for_callbacks(3)
    assert got[-1]["params"]["MessageStatus"] == "undelivered"
    assert got[-1]["params"]["ErrorCode"] == "30003"


def test_callbacks_can_be_disabled(fake, sender, receiver):
    got, state = receiver
    got.clear()
    fake.callbacks_enabled = False
    sender.send(TO, "hi", status_callback=f"{state['base']}/v1/twilio/status")
    fake.wait_for_callbacks(0)
    assert got == [] and fake.callbacks == []


def test_forged_callback_fails_validation(fake, receiver):
    got, state = receiver
    got.clear()
    state["token"] = fake.auth_token
    url = f"{state['base']}/v1/twilio/status"
    params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "To": TO}
    signed_by_someone_else = compute_twilio_signature(url, params, "attacker-token")
    tampered = {**params, "MessageStatus": "failed"}
    real = compute_twilio_signature(url, params, fake.auth_token)

    assert httpx.post(url, data=params, headers={"X-Twilio-Signature": signed_by_someone_else}).status_code == 403
    assert httpx.post(url, data=tampered, headers={"X-Twilio-Signature": real}).status_code == 403
    assert httpx.post(url, data=params).status_code == 403
    assert httpx.post(url, data=params, headers={"X-Twilio-Signature": real}).status_code == 204
    assert [c["valid"] for c in got] == [False, False, False, True]


@pytest.mark.parametrize(
    "url, params, token, expected",
    [
        ("https://t.example/v1/twilio/status", {"a": "1"}, "tok", True),
        ("https://t.example:443/v1/twilio/status", {"a": "1"}, "tok", True),  # Twilio may sign with or without port
        ("https://t.example/v1/twilio/status", {"a": "2"}, "tok", False),
        ("https://t.example/v1/twilio/status?x=1", {"a": "1"}, "tok", False),
        ("https://t.example/v1/twilio/status", {"a": "1"}, "other", False),
    ],
)
def test_validate_twilio_signature_table(url, params, token, expected):
    signature = compute_twilio_signature("https://t.example/v1/twilio/status", {"a": "1"}, "tok")
    assert validate_twilio_signature(url, params, signature, token) is expected


def test_validate_rejects_missing_signature():
    assert validate_twilio_signature("https://t.example/", {}, None, "tok") is False
    assert validate_twilio_signature("https://t.example/", {}, "", "tok") is False


def test_console_sender_logs_text_and_masks_phone(caplog):
    sender = ConsoleSender()
    with caplog.at_level(logging.INFO, logger="tocsin.sms"):
        first = sender.send("+15558675310", "TOCSIN MAJOR flood. Reply ACK K7Q.")
        second = sender.send("+15558675311", "x")
    # Random, not a counter: a restarted or second process must never reuse a stored SID.
    assert re.fullmatch(r"CONSOLE-[0-9a-f]{32}", first) and first != second
    assert first != ConsoleSender().send("+15558675310", "x")
    text = caplog.text
    assert "TOCSIN MAJOR flood. Reply ACK K7Q." in text
    assert "+*********10" in text and "5558675310" not in text


@pytest.mark.parametrize(
    "exc, retryable",
    [
        (TwilioRestException(400, "/m", "bad to", code=21211), False),
        (TwilioRestException(400, "/m", "opted out", code=21610), False),
        (TwilioRestException(400, "/m", "landline", code=21614), False),
        (TwilioRestException(400, "/m", "other 4xx", code=21408), False),
        (TwilioRestException(404, "/m", "html 404", code=404), False),
        (TwilioRestException(429, "/m", "slow down", code=20429), True),
        (TwilioRestException(429, "/m", "no code"), True),
        (TwilioRestException(408, "/m", "request timeout"), True),
        (TwilioRestException(500, "/m", "boom", code=20500), True),
        (TwilioRestException(502, "/m", "proxy html", code=502), True),
        (requests.ConnectTimeout("connect timeout"), True),
        (requests.ReadTimeout("read timeout"), True),
        (requests.ConnectionError("refused"), True),
    ],
)
def test_classify_table(exc, retryable):
    assert classify(exc).retryable is retryable
