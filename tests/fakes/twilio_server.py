"""A fake Twilio Messages API (2010-04-01) for tests, with injectable faults and signed status callbacks.

Follows ../shared/data/twilio-oai/twilio_api_v2010_messages_subset.json for paths, form
fields, the Message resource and error bodies:

    with run_fake_twilio() as fake:
        sender = TwilioSender(fake.account_sid, fake.auth_token, "+15005550006", base_url=fake.base_url)
        fake.fail_next(1, status=500)
        fake.numbers_opted_out.add("+15551230000")
        release = fake.hold_next()   # hold the next send once received, until release.set()

The fake is itself the ASGI app; its fault knobs are plain attributes and methods, safe to
call from the test thread while uvicorn serves from another.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import format_datetime
from datetime import datetime, timezone

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from tests.fakes.http_thread import serve_in_thread

API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")

# code -> (HTTP status, message), as Twilio words them.
ERRORS = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource {path} was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
    20503: (503, "Service is unavailable. Please try again"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21602: (400, "Message body is required."),
    21603: (400, "The 'From' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
}


def error_body(code: int | None, status: int, message: str) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}" if code else None,
        "status": status,
    }


def _error(code: int, **fmt) -> JSONResponse:
    status, message = ERRORS[code]
    return JSONResponse(error_body(code, status, message.format(**fmt)), status_code=status)


def _rfc2822(dt: datetime) -> str:
    return format_datetime(dt, usegmt=False).replace("-0000", "+0000")


@dataclass
class _Fault:
    status: int
    code: int | None


class FakeTwilio:
    """ASGI app standing in for api.twilio.com's Messages resource."""

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.base_url: str | None = None  # set by run_fake_twilio
        self.messages: list[dict] = []  # accepted messages, as Message resources (+ "status_callback")
        self.attempts = 0  # every POST to Messages.json, accepted or not
        self.lookups = 0  # every GET of the Messages list
        self.callbacks: list[dict] = []  # status callbacks sent: url, params, signature, response status
        self.numbers_opted_out: set[str] = set()  # -> 21610
        self.unreachable: set[str] = set()  # -> 21614
        self.undelivered: set[str] = set()  # accepted, then status callbacks end in undelivered/30003
        self.callbacks_enabled = True
        self.callback_delay_s = 0.0
        self._faults: list[_Fault] = []
        self._delays: list[float] = []
        self._holds: list[threading.Event] = []
        self._sids: list[str] = []
        self._lock = threading.Lock()
        self._callbacks_done = threading.Condition(self._lock)
        self._pending_callbacks = 0
        self._inflight = 0  # sends being handled (a stalled one may still land after its client gave up)
        base = "/2010-04-01/Accounts/{AccountSid}"
        self._app = Starlette(
            routes=[
                Route(base + "/Messages.json", self._create, methods=["POST"]),
                Route(base + "/Messages.json", self._list, methods=["GET"]),
                Route(base + "/Messages/{Sid}.json", self._fetch, methods=["GET"]),
            ]
        )

    async def __call__(self, scope, receive, send) -> None:
        await self._app(scope, receive, send)

    # --- fault injection (call from the test thread) -------------------------------------------

    def fail_next(self, n: int = 1, *, status: int = 500, code: int | None = None) -> None:
        """Answer the next `n` sends with `status` and Twilio error `code` (default 20500/20503/...)."""
        if code is None:
            code = {429: 20429, 500: 20500, 503: 20503}.get(status)
        with self._lock:
            self._faults.extend(_Fault(status, code) for _ in range(n))

    def delay_next(self, seconds: float, n: int = 1) -> None:
        """Stall the next `n` sends by `seconds` before handling them (they still succeed after)."""
        with self._lock:
            self._delays.extend([seconds] * n)

    def hold_next(self) -> threading.Event:
        """Hold the next send, once received (counted in `attempts`), until the returned event is set;
        it is then accepted as usual, whether or not its client is still there (as Twilio would)."""
        release = threading.Event()
        with self._lock:
            self._holds.append(release)
        return release

    def reuse_sids(self, *sids: str) -> None:
        """Answer the next accepted sends with these SIDs (a provider handing out a SID already seen)."""
        with self._lock:
            self._sids.extend(sids)

    def wait_for_attempts(self, n: int, timeout_s: float = 30.0) -> None:
        """Block until at least `n` sends were received (accepted or not)."""
        deadline = time.monotonic() + timeout_s
        with self._callbacks_done:
            while self.attempts < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.attempts} of {n} sends received after {timeout_s}s")
                self._callbacks_done.wait(left)

    def reset(self) -> None:
        """Forget messages, callbacks and faults; waits for in-flight work so none lands afterwards."""
        with self._lock:
            for release in self._holds:  # a held send would otherwise keep the fake busy for ever
                release.set()
        self.wait_idle()
        with self._lock:
            self._holds.clear()
            self._sids.clear()
            self.messages.clear()
            self.callbacks.clear()
            self.numbers_opted_out.clear()
            self.unreachable.clear()
            self.undelivered.clear()
            self._faults.clear()
            self._delays.clear()
            self.attempts = 0
            self.lookups = 0
            self.callbacks_enabled = True
            self.callback_delay_s = 0.0

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Block until no send is being handled and no status callback is in flight."""
        deadline = time.monotonic() + timeout_s
        with self._callbacks_done:
            while self._inflight or self._pending_callbacks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"fake Twilio still busy after {timeout_s}s")
                self._callbacks_done.wait(left)

    def wait_for_callbacks(self, count: int, timeout_s: float = 5.0) -> list[dict]:
        """Block until at least `count` status callbacks were sent and none is in flight."""
        deadline = time.monotonic() + timeout_s
        with self._callbacks_done:
            while len(self.callbacks) < count or self._pending_callbacks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.callbacks)} of {count} status callbacks after {timeout_s}s")
                self._callbacks_done.wait(left)
            return list(self.callbacks)

    # --- handlers ------------------------------------------------------------------------------

    def _authorised(self, request: Request, account_sid: str) -> bool:
        auth = request.headers.get("authorization", "")
        scheme, _, encoded = auth.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (
            secrets.compare_digest(user, self.account_sid)
            and secrets.compare_digest(password, self.auth_token)
            and account_sid == self.account_sid
        )

    async def _create(self, request: Request) -> JSONResponse:
        with self._lock:
            self._inflight += 1
        try:
            return await self._handle_create(request)
        finally:
            with self._lock:
                self._inflight -= 1
                self._callbacks_done.notify_all()

    async def _handle_create(self, request: Request) -> JSONResponse:
        account_sid = request.path_params["AccountSid"]
        # Read the whole request first: a stalled send was still received, and is still
        # accepted after the stall, as with a real provider (the client that timed out cannot know).
        form = await request.form()
        with self._lock:
            self.attempts += 1
            self._callbacks_done.notify_all()
            delay = self._delays.pop(0) if self._delays else 0.0
            hold = self._holds.pop(0) if self._holds else None
        if delay:
            await asyncio.sleep(delay)
        if hold is not None:
            await asyncio.to_thread(hold.wait)
        if not self._authorised(request, account_sid):
            return _error(20003)
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault:
            message = ERRORS.get(fault.code, (fault.status, "Injected fault"))[1].format(to="", path="")
            return JSONResponse(error_body(fault.code, fault.status, message), status_code=fault.status)

        to = str(form.get("To", ""))
        from_ = form.get("From")
        service = form.get("MessagingServiceSid")
        body = form.get("Body")
        callback = form.get("StatusCallback")
        if not E164.match(to):
            return _error(21211, to=to)
        if not from_ and not (service and SERVICE_SID.match(str(service))):
            return _error(21603)
        if not body:
            return _error(21602)
        if to in self.numbers_opted_out:
            return _error(21610)
        if to in self.unreachable:
            return _error(21614)

        now = _rfc2822(datetime.now(timezone.utc))
        with self._lock:
            sid = self._sids.pop(0) if self._sids else "SM" + uuid.uuid4().hex
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        resource = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": str(body),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": str(from_) if from_ else None,
            "messaging_service_sid": str(service) if service else None,
            "num_media": "0",
            # Approximate: GSM-7 vs UCS-2 is not told apart here.
            "num_segments": str(1 if len(str(body)) <= 160 else math.ceil(len(str(body)) / 153)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
        }
        with self._lock:
            self.messages.append({**resource, "status_callback": str(callback) if callback else None})
        task = None
        if callback and self.callbacks_enabled:
            with self._lock:
                self._pending_callbacks += 1
            task = BackgroundTask(self._send_callbacks, dict(resource), str(callback))
        return JSONResponse(resource, status_code=201, background=task)

    async def _list(self, request: Request) -> JSONResponse:
        """Messages, most recent first, filtered by To and From; one page (PageSize, default 50)."""
        account_sid = request.path_params["AccountSid"]
        if not self._authorised(request, account_sid):
            return _error(20003)
        q = request.query_params
        try:
            page_size = int(q.get("PageSize", "50"))
        except ValueError:
            page_size = 50
        with self._lock:
            self.lookups += 1
            found = [m for m in reversed(self.messages)
                     if (not q.get("To") or m["to"] == q["To"]) and (not q.get("From") or m["from"] == q["From"])]
        page = [{k: v for k, v in m.items() if k != "status_callback"} for m in found[:page_size]]
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json?PageSize={page_size}&Page=0"
        return JSONResponse({"messages": page, "page": 0, "page_size": page_size, "start": 0,
                             "end": max(0, len(page) - 1), "uri": uri, "first_page_uri": uri,
                             "next_page_uri": None, "previous_page_uri": None})

    async def _fetch(self, request: Request) -> JSONResponse:
        account_sid, sid = request.path_params["AccountSid"], request.path_params["Sid"]
        if not self._authorised(request, account_sid):
            return _error(20003)
        with self._lock:
            found = next((m for m in self.messages if m["sid"] == sid), None)
        if found is None:
            return _error(20404, path=request.url.path)
        return JSONResponse({k: v for k, v in found.items() if k != "status_callback"})

    # --- status callbacks ----------------------------------------------------------------------

    async def _send_callbacks(self, resource: dict, url: str) -> None:
        """POST queued -> sent -> delivered (or undelivered) to `url`, signed like Twilio signs."""
        final = "undelivered" if resource["to"] in self.undelivered else "delivered"
        validator = RequestValidator(self.auth_token)
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                for status in ("queued", "sent", final):
                    if self.callback_delay_s:
                        await asyncio.sleep(self.callback_delay_s)
                    params = {
                        "AccountSid": resource["account_sid"],
                        "ApiVersion": API_VERSION,
                        "From": resource["from"] or "",
                        "MessageSid": resource["sid"],
                        "MessageStatus": status,
                        "SmsSid": resource["sid"],
                        "SmsStatus": status,
                        "To": resource["to"],
                    }
                    if resource["messaging_service_sid"]:
                        params["MessagingServiceSid"] = resource["messaging_service_sid"]
                    if status == "undelivered":
                        params["ErrorCode"] = "30003"
                    signature = validator.compute_signature(url, params)
                    self._set_status(resource["sid"], status)
                    try:
                        response = await client.post(url, data=params, headers={"X-Twilio-Signature": signature})
                        result: int | str = response.status_code
                    except httpx.HTTPError as exc:  # Twilio does not retry status callbacks either
                        result = f"error: {exc!r}"
                    with self._lock:
                        self.callbacks.append({"url": url, "params": params, "signature": signature, "result": result})
                        self._callbacks_done.notify_all()
        finally:
            with self._lock:
                self._pending_callbacks -= 1
                self._callbacks_done.notify_all()

    def _set_status(self, sid: str, status: str) -> None:
        with self._lock:
            for m in self.messages:
                if m["sid"] == sid:
                    m["status"] = status
                    m["date_updated"] = _rfc2822(datetime.now(timezone.utc))
                    if status == "sent":
                        m["date_sent"] = m["date_updated"]
                    if status == "undelivered":
                        m["error_code"], m["error_message"] = 30003, "Unreachable destination handset"


@contextlib.contextmanager
def run_fake_twilio(account_sid: str | None = None, auth_token: str | None = None) -> Iterator[FakeTwilio]:
    """Start a FakeTwilio on a free loopback port; `fake.base_url` is where to point the client."""
    fake = FakeTwilio(account_sid, auth_token)
    with serve_in_thread(fake) as base_url:
        fake.base_url = base_url
        yield fake
