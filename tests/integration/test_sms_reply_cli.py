"""`tocsin sms reply` against a live server: the command signs the reply as Twilio would, the real webhook
checks the signature and acknowledges the alert, and the command prints the answer a phone would get."""

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from db.session import transaction
from dispatch import responders as responder_service
from dispatch.schemas import CoverageSpec
from tests.integration.dispatch_support import T0, open_alert

pytestmark = [pytest.mark.integration, pytest.mark.committing]
TOKEN = "e" * 32
ANA = "+12125550101"


@pytest.fixture
def live_server(settings, districts):
    """The real app under uvicorn on a free loopback port, in a thread; yields its base URL and settings."""
    import uvicorn

    from tocsin.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    live = settings.model_copy(update={"twilio_auth_token": SecretStr(TOKEN), "public_base_url": base})
    server = uvicorn.Server(uvicorn.Config(create_app(live), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the test server did not start"
    yield base, live
    server.should_exit = True
    thread.join(10)


def _reply(base, live, *args, token=TOKEN):
    env = {**os.environ, "TOCSIN_DATABASE_URL": live.database_url, "TOCSIN_PUBLIC_BASE_URL": base,
           "TOCSIN_TWILIO_AUTH_TOKEN": token, "TOCSIN_RULES_FILE": str(live.rules_file)}
    return subprocess.run([sys.executable, "-m", "tocsin.cli", "sms", "reply", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_reply_played_from_the_command_line_acknowledges_the_alert(live_server, session_factory):
    base, live = live_server
    with transaction(session_factory) as session:
        responder_service.create_responder(session, name="Ana", phone=ANA, now=T0,
                                           coverage=[CoverageSpec(layer="district", zone="A")])
    alert = open_alert(session_factory, now=T0)
    done = _reply(base, live, ANA, f"ACK {alert.ack_code}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Acknowledged gas leak alert {alert.ack_code}. Thank you, Ana."
    with session_factory() as session:
        state, by = session.execute(text("SELECT state, acknowledged_by FROM alerts WHERE id = :id"),
                                    {"id": alert.id}).one()
    assert state == "acknowledged" and "Ana" in by


def test_a_wrong_token_is_refused_by_the_webhook_and_said_plainly(live_server):
    base, live = live_server
    done = _reply(base, live, ANA, "HELP", token="not-the-servers-token")
    assert done.returncode == 2
    assert "answered 403" in done.stderr and "X-Twilio-Signature" in done.stderr


def test_bad_phone_and_missing_token_fail_before_sending(live_server):
    base, live = live_server
    done = _reply(base, live, "2125550101", "HELP")
    assert done.returncode == 2 and "not E.164" in done.stderr
    done = _reply(base, live, ANA, "HELP", token="")
    assert done.returncode == 2 and "TOCSIN_TWILIO_AUTH_TOKEN is not set" in done.stderr
