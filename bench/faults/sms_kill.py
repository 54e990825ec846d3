"""SMS resends after a worker is killed between the provider's send and its record.

A fresh database beside the configured one gets one zone, RECIPIENTS responders covering it and one
open alert. A real `tocsin worker --roles sms` sends through the fake Twilio (tests/fakes/twilio_server.py),
which holds the first message it receives; once it has, the worker is SIGKILLed, the fake accepts
the held message anyway (as Twilio would), and a second worker is started to finish. `measure()`
returns the SMS sent beyond one per recipient (every send in flight at the kill was committed as
`sending` first; after TOCSIN_SMS_SENDING_TIMEOUT_S the restarted worker asks Twilio whether it has
each one and sends only those it has not). Before the claim, a worker whose record failed re-sent the
same delivery on every pass.

Run on its own (with services started): .venv/bin/python -m bench.faults.sms_kill
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from bench.db import bench_database, drop_database
from bench.sms_fanout.scenario import one_alert_with_responders

REPO = Path(__file__).resolve().parents[2]
RECIPIENTS = 5
RULES = """rules:
  - name: gas_leak_report
    categories: [gas_leak]
    sources: [utility_report]
    layer: district
    immediate: true
    severity: critical
"""


def _worker(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "tocsin.cli", "worker", "--roles", "sms"], env=env,
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)


def _stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _unfinished(factory) -> int:
    with factory() as session:
        return session.execute(text(
            "SELECT count(*) FROM deliveries WHERE status IN ('pending', 'sending')")).scalar_one()


def measure(*, timeout_s: float = 90.0) -> int:
    """SMS sent beyond one per recipient after killing a worker mid-send; cleans up after itself."""
    from db.session import make_engine, make_sessionmaker
    from tests.fakes.twilio_server import run_fake_twilio
    from tocsin import models_registry
    from tocsin.settings import Settings

    settings = Settings()
    name = f"tocsin_bench_sms_kill_{os.getpid()}"
    url = bench_database(settings.database_url, name, fresh=True)
    engine = first = second = None
    try:
        with tempfile.TemporaryDirectory(prefix="tocsin-sms-kill-") as tmp:
            rules = Path(tmp) / "rules.yaml"
            rules.write_text(RULES)
            log_path = Path(tmp) / "worker.log"
            models_registry.load()
            engine = make_engine(url, pool_size=2)
            factory = make_sessionmaker(engine)
            one_alert_with_responders(factory, datetime.now(UTC), recipients=RECIPIENTS)
            with run_fake_twilio() as fake:
                fake.callbacks_enabled = False
                release = fake.hold_next()
                env = {**os.environ, "TOCSIN_DATABASE_URL": url, "TOCSIN_RULES_FILE": str(rules),
                       "TOCSIN_TWILIO_ACCOUNT_SID": fake.account_sid, "TOCSIN_TWILIO_AUTH_TOKEN": fake.auth_token,
                       "TOCSIN_TWILIO_FROM": "+15005550006", "TOCSIN_TWILIO_BASE_URL": fake.base_url,
                       "TOCSIN_SMS_MPS": "50", "TOCSIN_SMS_SENDING_TIMEOUT_S": "2",
                       "TOCSIN_PUBLIC_BASE_URL": "http://bench.test", "TOCSIN_LOG_LEVEL": "WARNING"}
                try:
                    first = _worker(env, log_path)
                    fake.wait_for_attempts(1, timeout_s=timeout_s)
                finally:
                    _stop(first, signal.SIGKILL)
                    release.set()  # the provider accepts the held message anyway
                fake.wait_idle()
                second = _worker(env, log_path)
                deadline = time.monotonic() + timeout_s
                while _unfinished(factory) and time.monotonic() < deadline:
                    time.sleep(0.2)
                _stop(second)
                fake.wait_idle()
                left = _unfinished(factory)
                if left:
                    raise RuntimeError(f"{left} deliveries still unsent after {timeout_s}s; worker log:\n"
                                       f"{log_path.read_text()[-2000:]}")
                per_recipient = Counter(m["to"] for m in fake.messages)
    finally:
        _stop(first, signal.SIGKILL)
        _stop(second)
        if engine is not None:
            engine.dispose()
        drop_database(settings.database_url, name)
    return sum(n - 1 for n in per_recipient.values())


def main() -> int:
    extra = measure()
    print(f"sms_resends_after_kill={extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
