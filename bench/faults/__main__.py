"""The fault bench: what a PostgreSQL restart during a burst of alerts costs, and what killing a worker
mid-send costs the SMS side.

db_restart_lost: a private PostgreSQL cluster (bench/faults/stack.py) behind a real `tocsin serve` and
`tocsin worker`; reports that each open an alert are sent one after another, PostgreSQL is stopped in the
middle and started again, and the reports keep coming. It counts the alerts whose reports were accepted
(201) that never reached an MQTT subscriber, with no restart of anything. worker_restarts_needed is 1 when
the worker process did not survive the outage (someone would have had to restart it), else 0.
sms_resends_after_kill comes from bench/faults/sms_kill.py (`measure()`), NA while it does not exist.

Run with services started: .venv/bin/python -m bench.faults   (last line: the three figures)
"""

from __future__ import annotations

import sys

from bench.faults.stack import Burst, outage_stack

BEFORE, DURING, AFTER = 60, 20, 60  # reports accepted before the outage, 503s during it, accepted after


def measure_db_restart(mqtt_url: str) -> tuple[int, int]:
    """(accepted alerts never published, worker restarts that would have been needed)."""
    with outage_stack(mqtt_url) as (pg, procs, key, arrivals):
        procs.start_api()
        procs.start_worker()
        if not procs.wait_roles_up(("relay", "sms", "sweeper")):
            raise RuntimeError(f"the worker did not come up: {procs.log('worker')[-2000:]}")
        burst = Burst(procs.base, key, gap_s=0.02).start()
        try:
            burst.wait_statuses(201, BEFORE)
            pg.stop()
            burst.wait_statuses(503, DURING)
            pg.start()
            recovered = burst.wait_statuses(201, AFTER)
        finally:
            burst.stop()
        answers = {s: burst.count(s) for s in sorted(set(burst.statuses))}
        print(f"  answers by status (0 = no answer): {answers}; API recovered on its own: {recovered}", flush=True)
        missing = arrivals.wait_for(burst.accepted_alerts, timeout_s=60)
        died = procs.worker.poll() is not None
        print(f"  accepted alerts {len(burst.accepted_alerts)}, reached MQTT {len(burst.accepted_alerts) - len(missing)};"
              f" worker {'exited' if died else 'alive'}", flush=True)
        return len(missing), int(died)


def sms_resends_after_kill() -> int:
    """The other half of the bench: SMS sent again after the worker is killed mid-send."""
    from bench.faults import sms_kill

    return sms_kill.measure()


def main() -> int:
    from tocsin.settings import Settings

    mqtt_url = Settings().mqtt_url
    lost, restarts = measure_db_restart(mqtt_url)
    resends = sms_resends_after_kill()
    print(f"db_restart_lost={lost} worker_restarts_needed={restarts} sms_resends_after_kill={resends}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
