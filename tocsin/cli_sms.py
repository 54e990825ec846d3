"""`tocsin sms reply`: play a responder's SMS reply locally, signed as Twilio signs it.

The inbound webhook (POST /v1/twilio/inbound) only takes requests whose X-Twilio-Signature is the HMAC of
the public URL and the form, keyed with TOCSIN_TWILIO_AUTH_TOKEN. This command builds that request from
the same settings as the server, so a demo (or an operator checking a deployment) can acknowledge an
alert by "texting" from the command line and see the reply a phone would get.
"""

from __future__ import annotations

import re
import uuid
from html import unescape
from typing import Annotated

import typer

from tocsin import cli_common as common

sms_app = typer.Typer(help="SMS: play a responder's reply to the inbound webhook.", no_args_is_help=True)
INBOUND_PATH = "/v1/twilio/inbound"
_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.DOTALL)


def register(app: typer.Typer) -> None:
    app.add_typer(sms_app, name="sms")


def signed_inbound(*, public_base_url: str, auth_token: str, from_phone: str, body: str,
                   to_phone: str | None = None) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL, form and headers of the inbound webhook call Twilio would make for this SMS."""
    from dispatch.twilio_signature import compute_twilio_signature

    url = public_base_url.rstrip("/") + INBOUND_PATH
    form = {"From": from_phone, "Body": body, "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": "AC" + "0" * 32, "NumMedia": "0"}
    if to_phone:
        form["To"] = to_phone
    return url, form, {"X-Twilio-Signature": compute_twilio_signature(url, form, auth_token)}


@sms_app.command("reply")
def sms_reply(
    from_phone: Annotated[str, typer.Argument(help="The responder's phone, E.164 (+12125550101)")],
    body: Annotated[str, typer.Argument(help='The SMS text: "ACK K7Q", "K7Q", STOP, START or HELP')],
) -> None:
    """Send a responder's reply to this Tocsin's inbound webhook, signed as Twilio would, and print the
    answer a phone would get. Uses TOCSIN_PUBLIC_BASE_URL and TOCSIN_TWILIO_AUTH_TOKEN (`make demo` sets both)."""
    import httpx

    settings = common.settings()
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
    if not token:
        common.fail("TOCSIN_TWILIO_AUTH_TOKEN is not set: the inbound webhook refuses unsigned replies "
                    "(make demo sets one for the demo)")
    if not re.fullmatch(r"\+[1-9]\d{6,14}", from_phone):
        common.fail(f"phone {from_phone!r} is not E.164, e.g. +12125550101")
    url, form, headers = signed_inbound(public_base_url=settings.public_base_url, auth_token=token,
                                        from_phone=from_phone, body=body, to_phone=settings.twilio_from)
    try:
        response = httpx.post(url, data=form, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        common.fail(f"could not reach {url}: {exc} (is `tocsin serve` running at TOCSIN_PUBLIC_BASE_URL?)")
    if response.status_code != 200:
        detail = response.text[:300]
        common.fail(f"{url} answered {response.status_code}: {detail}")
    found = _MESSAGE.search(response.text)
    typer.echo(unescape(found.group(1)) if found else response.text)
