"""SMS through Twilio's REST API with the official `twilio` client."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base import values
from twilio.base import exceptions as twilio_exceptions
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from dispatch.senders.base import DeliveryError, mask_phone

log = logging.getLogger(__name__)

# Twilio errors that no retry can fix: invalid 'To' number, recipient opted out (STOP),
# 'To' is not a mobile number.
PERMANENT_CODES = frozenset({21211, 21610, 21614})
# Twilio's "too many requests" (account concurrency / rate limit).
RETRYABLE_CODES = frozenset({20429})
# find_sent: how many of a number's latest messages to look through, and the clock difference between
# us and Twilio that a message's date_created may show (it is also only to the second).
LOOKUP_MESSAGES = 20
LOOKUP_SKEW = timedelta(seconds=60)

# RFC 9457 problem-details errors arrived in later 9.x releases; older ones only raise TwilioRestException.
_API_ERRORS = tuple(
    e for e in (TwilioRestException, getattr(twilio_exceptions, "TwilioServiceException", None)) if e is not None
)


class RewritingHttpClient(TwilioHttpClient):
    """TwilioHttpClient that sends requests for *.twilio.com to `base_url` instead (tests, fakes)."""

    def __init__(self, base_url: str, **kwargs) -> None:
        super().__init__(**kwargs)
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url {base_url!r} is not an http(s) URL")
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path.rstrip("/")

    def request(self, method: str, url: str, *args, **kwargs) -> Response:
        parts = urlsplit(url)
        if parts.hostname and (parts.hostname == "twilio.com" or parts.hostname.endswith(".twilio.com")):
            url = urlunsplit((self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment))
        return super().request(method, url, *args, **kwargs)


def classify(exc: TwilioException | requests.RequestException) -> DeliveryError:
    """Turn a failure from the twilio client into a DeliveryError that says whether to retry."""
    if isinstance(exc, _API_ERRORS):
        status, code = exc.status, exc.code
        detail = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", "")
        if code in PERMANENT_CODES:
            retryable = False
        elif code in RETRYABLE_CODES or status in (408, 429) or (status is not None and status >= 500):
            retryable = True
        else:
            retryable = not (status is not None and 400 <= status < 500)
        return DeliveryError(f"twilio HTTP {status} code {code}: {detail}", retryable=retryable, code=code, status=status)
    if isinstance(exc, requests.Timeout):
        # The request may have reached Twilio; a retry can send the SMS twice, which beats not at all.
        return DeliveryError(f"twilio request timed out: {exc}", retryable=True)
    if isinstance(exc, requests.RequestException):
        return DeliveryError(f"twilio unreachable: {exc}", retryable=True)
    # Any other TwilioException (an unparseable response, say): the message may still go through.
    return DeliveryError(f"twilio client error: {exc}", retryable=True)


class TwilioSender:
    """Send SMS with the real twilio client.

    `from_number` is an E.164 sender or a Messaging Service SID (``MG...``); a messaging
    service may also be given explicitly. `base_url` points the client at another host
    (the fake Twilio in tests) while keeping Twilio's paths.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        *,
        messaging_service_sid: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 10,
        observe_send: Callable[[float, str], None] | None = None,
    ) -> None:
        if from_number and from_number.startswith("MG") and not messaging_service_sid:
            from_number, messaging_service_sid = None, from_number
        if not from_number and not messaging_service_sid:
            raise ValueError("TwilioSender needs from_number or messaging_service_sid")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s {timeout_s} must be positive")
        self._from = from_number
        self._service = messaging_service_sid
        # Called with each send's seconds and outcome (accepted, retryable, permanent), for the worker's /metrics.
        self._observe_send = observe_send
        if base_url:
            http_client: TwilioHttpClient = RewritingHttpClient(base_url, timeout=timeout_s)
        else:
            http_client = TwilioHttpClient(timeout=timeout_s)
        # environment={} keeps TWILIO_EDGE / TWILIO_REGION from silently redirecting requests.
        self._client = Client(account_sid, auth_token, http_client=http_client, environment={})

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        started = time.perf_counter()
        try:
            message = self._client.messages.create(
                to=to,
                body=body,
                from_=self._from or values.unset,
                messaging_service_sid=self._service or values.unset,
                status_callback=status_callback or values.unset,
            )
        except (TwilioException, requests.RequestException) as exc:
            error = classify(exc)
            self._observed(started, "retryable" if error.retryable else "permanent")
            log.warning(
                "sms to %s failed (retryable=%s, code=%s, status=%s)",
                mask_phone(to), error.retryable, error.code, error.status,
            )
            raise error from exc
        self._observed(started, "accepted")
        log.info("sms %s accepted for %s", message.sid, mask_phone(to))
        return message.sid

    def _observed(self, started: float, outcome: str) -> None:
        if self._observe_send is not None:
            self._observe_send(time.perf_counter() - started, outcome)

    def find_sent(self, to: str, body: str, *, since: datetime) -> str | None:
        """The SID of a message with this exact body that Twilio has for `to` since `since`, if any.

        Asked before re-sending a delivery whose earlier send was interrupted (the worker died or
        lost the database before recording Twilio's answer): if Twilio has it, it is not sent again."""
        try:
            recent = self._client.messages.list(to=to, from_=self._from or values.unset, limit=LOOKUP_MESSAGES)
        except (TwilioException, requests.RequestException) as exc:
            raise classify(exc) from exc
        for message in recent:
            created = message.date_created
            if (message.body == body and (message.direction or "").startswith("outbound")
                    and created is not None and created >= since - LOOKUP_SKEW):
                return message.sid
        return None
