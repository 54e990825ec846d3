"""Check the X-Twilio-Signature header on Twilio webhooks."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator


def validate_twilio_signature(url: str, params: Mapping[str, str], signature: str | None, auth_token: str) -> bool:
    """Whether `signature` is Twilio's HMAC-SHA1 over `url` (as Twilio requested it) and the POST `params`.

    `url` must be the public URL Twilio called, query string included, not the one the app
    sees behind a proxy.
    """
    if not signature or not auth_token:
        return False
    # Keep multi-valued forms (Starlette FormData has getlist) intact; RequestValidator reads them.
    values = params if hasattr(params, "getlist") else dict(params)
    return RequestValidator(auth_token).validate(url, values, signature)


def compute_twilio_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """The signature Twilio would send for a POST of `params` to `url`."""
    return RequestValidator(auth_token).compute_signature(url, dict(params))
