"""Every SMS send is bounded and idempotent per delivery (issue #15).

A delivery is claimed (`sending`, attempt counted) and committed before the provider is called, and
the result recorded afterwards; whatever fails in between, it is never sent more than max_attempts
times. Real PostGIS, the real twilio client against the fake Twilio, and for the kill test a real
`tocsin worker --roles sms` process.
"""

import logging
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from db.session import transaction
from dispatch import deliveries as delivery_service
from dispatch import metrics
from dispatch.fanout_worker import FanoutWorker
from dispatch.fanout import FanoutConfig
from dispatch.senders.console import ConsoleSender
from tests.conftest import TEST_RULES
from tests.integration.dispatch_support import REPO, T0, deliveries, open_alert, wait_until
from tests.integration.test_dispatch_fanout import ANA, BEN, RULE, Clock, add, make_worker, zone

pytestmark = pytest.mark.integration


@pytest.fixture
def clock():
    return Clock(T0)


def _insert_delivery(factory, alert_id: int, responder_id: int | None, *, status: str, attempts: int,
                     claimed_at=None, sid=None, event: str | None = None) -> int:
    with transaction(factory) as session:
        return session.execute(text(
            "INSERT INTO deliveries (event_id, alert_id, responder_id, body, status, attempts, claimed_at, "
            "provider_sid, next_attempt_at, created_at, updated_at) "
            "VALUES (coalesce(CAST(:ev AS uuid), gen_random_uuid()), :a, :r, 'hello', :s, :n, :c, :sid, :t, :t, :t) "
            "RETURNING id"),
            {"ev": event, "a": alert_id, "r": responder_id, "s": status, "n": attempts, "c": claimed_at,
             "sid": sid, "t": T0}).scalar_one()


def _row(factory, delivery_id: int) -> dict:
    with factory() as session:
        return dict(session.execute(text("SELECT * FROM deliveries WHERE id = :i"), {"i": delivery_id})
                    .mappings().one())


# --- (a) a provider SID that cannot be stored never re-sends -------------------------------------

def test_colliding_sid_is_sent_once_and_recorded_never_looped(session_factory, districts, fake, clock):
    """The bug on main: a restarted console sender handed out CONSOLE-1 again, the unique index on
    provider_sid rolled the update back, and the SMS went out every second. Here the provider (the
    fake Twilio) answers with a SID another delivery already holds."""
    ana = add(session_factory, "Ana", ANA, zone("A"))
    earlier = open_alert(session_factory, code="B", now=T0)
    _insert_delivery(session_factory, earlier.id, ana, status="sent", attempts=1, sid="CONSOLE-1")
    worker = make_worker(session_factory, fake, clock)
    open_alert(session_factory, code="A", now=T0)
    fake.reuse_sids("CONSOLE-1")

    assert worker.drain() == 1
    for minutes in (1, 10, 60):  # later passes, with every backoff long expired: nothing more goes out
        clock.now = T0 + timedelta(minutes=minutes)
        assert worker.drain() == 0
    assert fake.attempts == 1 and len(fake.messages) == 1
    new = [d for d in deliveries(session_factory) if d["alert_id"] != earlier.id]
    assert [(d["status"], d["attempts"], d["provider_sid"]) for d in new] == [("sent", 1, None)]
    assert "'CONSOLE-1' could not be stored" in new[0]["last_error"]


def test_overlong_sid_is_recorded_without_it(session_factory, districts, fake, clock):
    add(session_factory, "Ana", ANA, zone("A"))
    worker = make_worker(session_factory, fake, clock)
    open_alert(session_factory, now=T0)
    fake.reuse_sids("SM" + "f" * 100)  # longer than provider_sid's varchar(64)
    worker.drain()
    clock.now = T0 + timedelta(hours=1)
    worker.drain()
    [d] = deliveries(session_factory)
    assert (d["status"], d["attempts"], d["provider_sid"]) == ("sent", 1, None)
    assert fake.attempts == 1


def test_console_senders_of_two_processes_never_collide(session_factory, districts, clock):
    """Two console senders (a worker and its restart) sending into one database: every SID is stored."""
    for i in range(6):
        add(session_factory, f"R{i}", f"+1212555020{i}", zone("A"))
    config = FanoutConfig(public_base_url="http://tocsin.test", mps=1000.0)
    first = FanoutWorker(session_factory, ConsoleSender(), rules=lambda: [RULE], config=config, clock=clock)
    open_alert(session_factory, now=T0)
    first.plan_once()
    for _ in range(3):
        first.send_once()
    restarted = FanoutWorker(session_factory, ConsoleSender(), rules=lambda: [RULE], config=config, clock=clock)
    restarted.drain()
    rows = deliveries(session_factory)
    assert [d["status"] for d in rows] == ["sent"] * 6 and all(d["attempts"] == 1 for d in rows)
    assert len({d["provider_sid"] for d in rows}) == 6 and all(d["provider_sid"] for d in rows)


# --- (c) retryable failures, and a failing record, stop at max_attempts --------------------------

@pytest.mark.parametrize("status", [429, 500])
def test_retryable_failure_every_time_stops_at_exactly_max_attempts(session_factory, districts, fake, clock,
                                                                    status):
    add(session_factory, "Ana", ANA, zone("A"))
    worker = make_worker(session_factory, fake, clock, max_attempts=4)
    fake.fail_next(100, status=status)
    open_alert(session_factory, now=T0)
    for minutes in range(0, 120, 5):  # far more passes than attempts, every backoff expired in between
        clock.now = T0 + timedelta(minutes=minutes)
        worker.drain()
    [d] = deliveries(session_factory)
    assert (d["status"], d["attempts"]) == ("failed", 4)
    assert fake.attempts == 4


@pytest.mark.parametrize("sender", ["twilio", "console"])
@pytest.mark.committing  # the test changes the table on another connection
def test_a_record_that_always_fails_is_bounded(session_factory, districts, fake, clock, engine, caplog, sender):
    """The provider accepts every send, but recording the result fails every time (here: a trigger
    refusing it). Each attempt was committed before its send, so the claims left `sending` are
    recovered into retries until the attempts are spent, then `unknown`. Twilio is asked before each
    retry and has the first message, so it is sent once; the console sender cannot be asked, so it
    sends max_attempts times, never more."""
    add(session_factory, "Ana", ANA, zone("A"))
    worker = make_worker(session_factory, fake, clock, max_attempts=3)
    if sender == "console":
        worker.sender = ConsoleSender()
    worker.sending_timeout_s = 60
    open_alert(session_factory, now=T0)
    with engine.begin() as conn:
        conn.execute(text(
            "CREATE FUNCTION test_refuse_sent() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.status = 'sent' THEN RAISE EXCEPTION 'recording refused'; END IF; RETURN NEW; END $$"))
        conn.execute(text("CREATE TRIGGER test_refuse_sent BEFORE UPDATE ON deliveries FOR EACH ROW "
                          "EXECUTE FUNCTION test_refuse_sent()"))
    try:
        worker.plan_once()
        with caplog.at_level(logging.INFO, logger="tocsin.sms"):
            for minutes in range(0, 30):
                clock.now = T0 + timedelta(minutes=minutes)
                try:
                    worker.send_once()
                except Exception as exc:  # the sender loop logs this and carries on
                    assert "recording refused" in str(exc)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER test_refuse_sent ON deliveries"))
            conn.execute(text("DROP FUNCTION test_refuse_sent()"))
    [d] = deliveries(session_factory)
    assert (d["status"], d["attempts"]) == ("unknown", 3)
    assert "may or may not have sent it" in d["last_error"]
    console_sends = [r for r in caplog.records if r.name == "tocsin.sms" and r.getMessage().startswith("SMS ")]
    if sender == "twilio":
        assert fake.attempts == 1 and len(fake.messages) == 1 and not console_sends
    else:
        assert len(console_sends) == 3 and fake.attempts == 0


# --- (d) the recovery pass, with chosen `now` ----------------------------------------------------

def test_recovery_retries_a_stuck_claim_or_marks_it_unknown(session_factory, districts):
    ana = add(session_factory, "Ana", ANA, zone("A"))
    ben = add(session_factory, "Ben", BEN, zone("A"))
    alert = open_alert(session_factory, now=T0)
    claimed = T0 + timedelta(seconds=10)
    retry = _insert_delivery(session_factory, alert.id, ana, status="sending", attempts=2, claimed_at=claimed)
    spent = _insert_delivery(session_factory, alert.id, ben, status="sending", attempts=3, claimed_at=claimed)

    def recover(now):
        with transaction(session_factory) as session:
            return delivery_service.recover_stuck(session, timeout_s=120, max_attempts=3, now=now)

    assert recover(claimed + timedelta(seconds=119)) == []  # within the timeout: maybe still in flight
    assert _row(session_factory, retry)["status"] == "sending"

    later = claimed + timedelta(seconds=120)
    assert sorted((r.delivery_id, r.status) for r in recover(later)) == [(retry, "pending"), (spent, "unknown")]
    r, s = _row(session_factory, retry), _row(session_factory, spent)
    assert (r["status"], r["attempts"], r["next_attempt_at"]) == ("pending", 2, later)  # due at once
    assert "attempt 2 recorded no result within 120 s" in r["last_error"]
    assert (s["status"], s["attempts"]) == ("unknown", 3)
    assert "attempt 3 of 3 recorded no result" in s["last_error"] and "not retried" in s["last_error"]
    assert recover(later + timedelta(hours=1)) == []  # nothing is recovered twice
    with session_factory() as session:
        assert metrics.counters(session)[metrics.SMS_CLAIMS_RECOVERED] == 2
        assert metrics.delivery_statuses(session)["unknown"] == 1


def test_worker_recovers_on_its_timer_and_resends_within_the_limit(session_factory, districts, fake, clock):
    ana = add(session_factory, "Ana", ANA, zone("A"))
    alert = open_alert(session_factory, now=T0)
    worker = make_worker(session_factory, fake, clock, max_attempts=3)
    worker.plan_once()
    with transaction(session_factory) as session:  # the outbox event was planned; drop its own delivery
        session.execute(text("DELETE FROM deliveries"))
    stuck = _insert_delivery(session_factory, alert.id, ana, status="sending", attempts=1, claimed_at=T0)
    assert worker.drain() == 0 and fake.attempts == 0  # T0: not timed out
    clock.now = T0 + timedelta(seconds=worker.sending_timeout_s)
    assert worker.drain() == 1
    d = _row(session_factory, stuck)
    assert (d["status"], d["attempts"]) == ("sent", 2) and d["provider_sid"].startswith("SM")
    assert d["interrupted_at"] == T0
    assert fake.lookups == 1 and fake.attempts == 1  # Twilio was asked first, and had nothing


def test_interrupted_send_that_twilio_has_is_not_sent_again(session_factory, districts, fake, clock):
    ana = add(session_factory, "Ana", ANA, zone("A"))
    alert = open_alert(session_factory, now=T0)
    worker = make_worker(session_factory, fake, clock, max_attempts=3)
    worker.plan_once()
    with transaction(session_factory) as session:
        session.execute(text("DELETE FROM deliveries"))
    stuck = _insert_delivery(session_factory, alert.id, ana, status="sending", attempts=1, claimed_at=T0)
    sid = worker.sender.send(ANA, "hello")  # the interrupted attempt's request, which Twilio accepted
    clock.now = T0 + timedelta(seconds=worker.sending_timeout_s)
    worker.drain()
    d = _row(session_factory, stuck)
    assert (d["status"], d["provider_sid"], d["attempts"]) == ("sent", sid, 2)
    assert "not sent again" in d["last_error"]
    assert fake.attempts == 1 and len(fake.messages) == 1


def test_find_sent_matches_body_recipient_and_time(fake):
    from dispatch.senders.sms import TwilioSender

    sender = TwilioSender(fake.account_sid, fake.auth_token, "+15005550006", base_url=fake.base_url)
    sid = sender.send(ANA, "TOCSIN CRITICAL gas_leak, District A")
    sender.send(BEN, "something else")
    now = datetime.now(UTC)
    assert sender.find_sent(ANA, "TOCSIN CRITICAL gas_leak, District A", since=now - timedelta(minutes=5)) == sid
    assert sender.find_sent(ANA, "TOCSIN CRITICAL gas_leak, District B", since=now - timedelta(minutes=5)) is None
    assert sender.find_sent(BEN, "TOCSIN CRITICAL gas_leak, District A", since=now - timedelta(minutes=5)) is None
    assert sender.find_sent(ANA, "TOCSIN CRITICAL gas_leak, District A", since=now + timedelta(hours=1)) is None


def test_late_result_after_recovery_still_records_and_stale_one_is_dropped(session_factory, districts):
    ana = add(session_factory, "Ana", ANA, zone("A"))
    alert = open_alert(session_factory, now=T0)
    did = _insert_delivery(session_factory, alert.id, ana, status="sending", attempts=1, claimed_at=T0)
    later = T0 + timedelta(minutes=5)
    with transaction(session_factory) as session:
        delivery_service.recover_stuck(session, timeout_s=120, max_attempts=3, now=later)
    claim = delivery_service.Claim(did, ANA, "hello", attempt=1)
    with transaction(session_factory) as session:  # the slow worker's answer arrives: better than a guess
        result = delivery_service.record_result(session, claim, delivery_service.Outcome(sid="SM" + "1" * 32),
                                                max_attempts=3, now=later)
    assert result.status == "sent"
    row = _row(session_factory, did)
    assert (row["status"], row["provider_sid"]) == ("sent", "SM" + "1" * 32)

    other = _insert_delivery(session_factory, alert.id, None, status="sending", attempts=2, claimed_at=later)
    stale = delivery_service.Claim(other, ANA, "hello", attempt=1)  # attempt 2 was claimed since
    with transaction(session_factory) as session:
        result = delivery_service.record_result(session, stale, delivery_service.Outcome(sid="SM" + "2" * 32),
                                                max_attempts=3, now=later)
    assert result.status == "stale" and _row(session_factory, other)["status"] == "sending"


def test_status_callback_settles_an_unknown_delivery(session_factory, districts):
    ana = add(session_factory, "Ana", ANA, zone("A"))
    alert = open_alert(session_factory, now=T0)
    did = _insert_delivery(session_factory, alert.id, ana, status="unknown", attempts=3, sid="SM" + "3" * 32)
    with transaction(session_factory) as session:
        assert delivery_service.record_status(session, sid="SM" + "3" * 32, twilio_status="delivered",
                                              error_code=None, now=T0) == "delivered"
    assert _row(session_factory, did)["status"] == "delivered"


def test_out_of_attempts_pending_delivery_fails_without_a_send(session_factory, districts, fake, clock):
    """A pending row already at the limit (TOCSIN_SMS_MAX_ATTEMPTS lowered) is never sent again."""
    ana = add(session_factory, "Ana", ANA, zone("A"))
    alert = open_alert(session_factory, now=T0)
    worker = make_worker(session_factory, fake, clock, max_attempts=2)
    worker.plan_once()
    with transaction(session_factory) as session:
        session.execute(text("DELETE FROM deliveries"))
    did = _insert_delivery(session_factory, alert.id, ana, status="pending", attempts=2)
    worker.drain()
    assert (_row(session_factory, did)["status"], fake.attempts) == ("failed", 0)


# --- (b) a real worker process killed between the provider's send and its record -----------------

def _sms_worker(database_url: str, fake, log_path, *, max_attempts: int) -> subprocess.Popen:
    env = {**os.environ, "TOCSIN_DATABASE_URL": database_url, "TOCSIN_RULES_FILE": str(TEST_RULES),
           "TOCSIN_TWILIO_ACCOUNT_SID": fake.account_sid, "TOCSIN_TWILIO_AUTH_TOKEN": fake.auth_token,
           "TOCSIN_TWILIO_FROM": "+15005550006", "TOCSIN_TWILIO_BASE_URL": fake.base_url,
           "TOCSIN_PUBLIC_BASE_URL": "http://tocsin.test", "TOCSIN_SMS_MPS": "100",
           "TOCSIN_SMS_MAX_ATTEMPTS": str(max_attempts), "TOCSIN_SMS_SENDING_TIMEOUT_S": "1",
           "TOCSIN_RELAY_POLL_S": "0.5", "TOCSIN_LOG_LEVEL": "WARNING"}
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "tocsin.cli", "worker", "--roles", "sms"], env=env,
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)


@pytest.mark.parametrize("max_attempts, final, attempts", [(1, "unknown", 1), (3, "sent", 2)])
@pytest.mark.committing  # worker processes
def test_worker_killed_between_send_and_record(session_factory, districts, fake, database_url, tmp_path,
                                               max_attempts, final, attempts):
    """Killed while Twilio holds its request: the claim stays `sending`; the restarted worker recovers
    it, and either asks Twilio, finds the message and records it without sending again (attempts
    left), or marks it `unknown` (none left). Either way Twilio got the SMS exactly once."""
    add(session_factory, "Ana", ANA, zone("A"))
    fake.callbacks_enabled = False
    release = fake.hold_next()
    open_alert(session_factory, now=datetime.now(UTC))
    log_path = tmp_path / "worker.log"
    first = _sms_worker(database_url, fake, log_path, max_attempts=max_attempts)
    try:
        fake.wait_for_attempts(1, timeout_s=60)  # Twilio has the message; the worker awaits its answer
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; worker log:\n{log_path.read_text()[-3000:]}") from None
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    release.set()  # Twilio accepts it all the same
    fake.wait_idle()
    assert len(fake.messages) == 1
    [d] = deliveries(session_factory)
    assert (d["status"], d["attempts"]) == ("sending", 1)  # the attempt was committed before the send

    second = _sms_worker(database_url, fake, log_path, max_attempts=max_attempts)
    try:
        wait_until(lambda: deliveries(session_factory)[0]["status"] not in ("sending", "pending"), timeout=60,
                   interval=0.1, what="the delivery recorded")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; worker log:\n{log_path.read_text()[-3000:]}") from None
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(15)
    fake.wait_idle()
    [d] = deliveries(session_factory)
    assert [m["to"] for m in fake.messages] == [ANA]
    assert fake.attempts == 1
    assert (d["status"], d["attempts"]) == (final, attempts)
    if final == "sent":
        assert d["provider_sid"] == fake.messages[0]["sid"]
