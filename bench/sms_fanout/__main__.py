"""SMS fan-out: one alert to 1,000 responders through the fake Twilio at a configured messages-per-second.

A fresh database on the local PostGIS gets one zone, 1,000 responders covering it and one open
alert with its outbox event; the real FanoutWorker (planner + paced sender threads) sends with the
real twilio client to tests/fakes/twilio_server.py. The achieved rate is measured between the first
and the last accepted send. Prints `sms_rate=<achieved> configured=<mps> lost=<n>` last; lost must be 0.

Run: .venv/bin/python -m bench.sms_fanout [MPS]     (default 100)
"""

import os
import sys
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import text

from bench.db import drop_database, fresh_or_skip
from bench.sms_fanout.scenario import one_alert_with_responders

RECIPIENTS = 1000
DB_NAME = f"tocsin_bench_sms_{os.getpid()}"


class TimedSender:
    """The real TwilioSender, with the time of each accepted send recorded."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.times: list[float] = []
        self._lock = threading.Lock()

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        sid = self.inner.send(to, body, status_callback=status_callback)
        with self._lock:
            self.times.append(time.monotonic())
        return sid


def main() -> int:
    from alerts.rules import Rule
    from db import migrate
    from db.session import make_engine, make_sessionmaker
    from dispatch.fanout import FanoutConfig
    from dispatch.fanout_worker import FanoutWorker
    from dispatch.senders.sms import TwilioSender
    from tests.fakes.twilio_server import run_fake_twilio
    from tocsin import models_registry
    from tocsin.settings import Settings
    from tocsin.worker import libpq_dsn

    mps = float(sys.argv[1]) if len(sys.argv) > 1 else 100.0
    settings = Settings()
    if (url := fresh_or_skip(settings.database_url, DB_NAME)) is None:
        return 0
    engine = None
    try:
        migrate.upgrade(url)
        models_registry.load()
        engine = make_engine(url, pool_size=8)
        factory = make_sessionmaker(engine)
        now = datetime.now(UTC)
        one_alert_with_responders(factory, now, recipients=RECIPIENTS)
        rule = Rule(name="gas_leak_report", categories=("gas_leak",), layer="district", immediate=True)
        with run_fake_twilio() as fake:
            fake.callbacks_enabled = False
            sender = TimedSender(TwilioSender(fake.account_sid, fake.auth_token, "+15005550006",
                                              base_url=fake.base_url))
            worker = FanoutWorker(factory, sender, rules=lambda: [rule],
                                  config=FanoutConfig(public_base_url="http://bench.test", mps=mps),
                                  clock=lambda: datetime.now(UTC), concurrency=8)
            stop = threading.Event()
            thread = threading.Thread(target=worker.run_forever, kwargs={"dsn": libpq_dsn(url), "stop": stop,
                                                                         "poll_s": 0.5}, daemon=True)
            thread.start()
            deadline = time.monotonic() + RECIPIENTS / mps * 3 + 30
            while len(sender.times) < RECIPIENTS and time.monotonic() < deadline:
                time.sleep(0.05)
            stop.set()
            thread.join(15)
            fake.wait_idle()
            received = {m["to"] for m in fake.messages}
        with factory() as session:
            statuses = dict(session.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status")).all())
    finally:
        if engine is not None:
            engine.dispose()
        drop_database(settings.database_url, DB_NAME)
    times = sorted(sender.times)
    achieved = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    lost = RECIPIENTS - len(received)
    print(f"deliveries by status: {statuses}; fake Twilio received {len(fake.messages)} messages for "
          f"{len(received)} recipients")
    print(f"sms_rate={achieved:.1f} configured={mps:g} lost={lost}")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
