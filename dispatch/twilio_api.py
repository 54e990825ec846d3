"""Twilio webhooks: delivery status callbacks and inbound SMS, both checked with X-Twilio-Signature."""

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from twilio.twiml.messaging_response import MessagingResponse

from db.api import SessionDep
from db.errors import Forbidden, InvalidInput
from db.openapi import Problem, error_responses
from dispatch import acks, deliveries
from dispatch.twilio_signature import validate_twilio_signature

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/twilio", tags=["twilio webhooks"],
                   responses=error_responses(413, 422, 503, _422="A required form field is missing or empty"))
_FORBIDDEN = {403: {"description": "X-Twilio-Signature missing or not valid for this URL and body", "model": Problem}}


def _signed_form(fields: dict[str, str]) -> dict[str, object]:
    """OpenAPI for a webhook: Twilio's form fields, signed with X-Twilio-Signature (read by _verified_form)."""
    return {
        "parameters": [{"name": "X-Twilio-Signature", "in": "header", "required": True, "schema": {"type": "string"},
                        "description": "HMAC-SHA1 of the public URL and the sorted form fields, base64, keyed with "
                                       "TOCSIN_TWILIO_AUTH_TOKEN; anything else is 403"}],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object", "properties": {k: {"type": "string", "description": v} for k, v in fields.items()},
            "required": list(fields)}}}},
    }


async def _verified_form(request: Request) -> dict[str, str]:
    """The POSTed form, once its X-Twilio-Signature matches the public URL Twilio called."""
    settings = request.app.state.settings
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
    if not token:
        raise Forbidden("Twilio webhooks are disabled: TOCSIN_TWILIO_AUTH_TOKEN is not set")
    form = await request.form()
    url = settings.public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("X-Twilio-Signature")
    if not validate_twilio_signature(url, form, signature, token):
        shown = f"{signature[:12]}..." if signature else "(none)"
        raise Forbidden(f"X-Twilio-Signature {shown} is not valid for {url}")
    return {k: str(v) for k, v in form.items()}


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise InvalidInput(f"form field {name!r} is missing or empty", field=name)
    return value


@router.post("/status", status_code=204, responses=_FORBIDDEN,
             openapi_extra=_signed_form({"MessageSid": "The SID of a message Tocsin sent",
                                         "MessageStatus": "queued, sent, delivered, undelivered or failed"}))
async def status_callback(request: Request, session: SessionDep) -> Response:
    """Twilio's delivery status for a message we sent; updates its delivery row."""
    form = await _verified_form(request)
    deliveries.record_status(session, sid=_required(form, "MessageSid"),
                             twilio_status=_required(form, "MessageStatus"),
                             error_code=form.get("ErrorCode") or None, now=datetime.now(UTC))
    session.commit()
    return Response(status_code=204)


@router.post("/inbound", responses={**_FORBIDDEN, 200: {"content": {"application/xml": {"schema": {"type": "string"}}},
                                                          "description": "TwiML with the reply"}},
             openapi_extra=_signed_form({"From": "The responder's phone (E.164)",
                                         "Body": "ACK <code>, <code>, STOP, START or HELP"}))
async def inbound(request: Request, session: SessionDep) -> Response:
    """A responder's reply: ACK <code>, <code>, STOP, START or HELP; answered with TwiML."""
    form = await _verified_form(request)
    result = acks.handle_inbound(session, from_phone=_required(form, "From"), body=form.get("Body", ""),
                                 now=datetime.now(UTC), rules=request.app.state.rules())
    session.commit()
    twiml = MessagingResponse()
    twiml.message(result.reply)
    return Response(content=str(twiml), media_type="application/xml")
