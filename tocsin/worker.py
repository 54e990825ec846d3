"""The worker process: the outbox relay, the SMS fan-out, the sweeper and the daily retention purge in supervised
threads, with clean shutdown on SIGTERM."""

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine

from alerts import sweeper as sweeper_mod
from alerts.reload import RulesProvider
from db import heartbeats
from db.heartbeats import Heartbeat
from db.outage import Backoff, describe
from db.session import libpq_dsn, make_engine, make_sessionmaker
from dispatch.relay import Relay
from dispatch.worker_metrics import WorkerMetrics
from dispatch.fanout import FanoutConfig
from dispatch.fanout_worker import FanoutWorker
from dispatch.senders.console import ConsoleSender
from dispatch.senders.sms import TwilioSender
from dispatch.senders.mqtt import MqttConfig, MqttPublisher
from tocsin import heap, models_registry, retention
from tocsin.settings import Settings

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def mqtt_config(settings: Settings, *, client_id: str | None = None) -> MqttConfig:
    return MqttConfig(
        url=settings.mqtt_url,
        client_id=client_id or settings.mqtt_client_id,
        topic_prefix=settings.mqtt_topic_prefix,
        username=settings.mqtt_username,
        password=settings.mqtt_password.get_secret_value() if settings.mqtt_password else None,
        tls=settings.mqtt_tls,
        ca_file=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
    )


def build_relay(settings: Settings, publisher: MqttPublisher, metrics: WorkerMetrics | None = None) -> Relay:
    models_registry.load()
    engine = make_engine(settings.database_url, pool_size=2)
    return Relay(
        engine, publisher,
        topic_prefix=settings.mqtt_topic_prefix, public_base_url=settings.public_base_url,
        batch_size=settings.relay_batch_size, max_attempts=settings.relay_max_attempts,
        observe_ack=metrics.observe_relay_ack if metrics else None,
    )


def build_sender(settings: Settings, metrics: WorkerMetrics | None = None) -> TwilioSender | ConsoleSender:
    """Twilio when TOCSIN_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and _FROM are set; else a console sender."""
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from:
        return TwilioSender(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
                            settings.twilio_from, base_url=settings.twilio_base_url,
                            observe_send=metrics.observe_sms_send if metrics else None)
    log.info("no Twilio credentials: SMS goes to the console sender (logger tocsin.sms)")
    return ConsoleSender()


def build_fanout(settings: Settings, rules: Callable[[], list], metrics: WorkerMetrics | None = None) -> FanoutWorker:
    models_registry.load()
    engine = make_engine(settings.database_url, pool_size=settings.sms_concurrency + 1)
    config = FanoutConfig(public_base_url=settings.public_base_url, mps=settings.sms_mps,
                          queue_ceiling_s=settings.sms_queue_ceiling_s)
    return FanoutWorker(make_sessionmaker(engine), build_sender(settings, metrics), rules=rules, config=config,
                        clock=utcnow, max_attempts=settings.sms_max_attempts, concurrency=settings.sms_concurrency,
                        gather_s=settings.sms_gather_s, sending_timeout_s=settings.sms_sending_timeout_s)


ROLES = heartbeats.WORKER_ROLES


@contextmanager
def _role_heartbeat(engine: Engine, role: str, stall_s: float) -> Iterator[Heartbeat]:
    """The role's heartbeat, marked `crashed` (with the error) if the role dies and `stopped` on a clean
    stop, then the role's engine closed. It beats several times per stall threshold, so a role is only
    reported stalled when it really missed beats."""
    heartbeat = Heartbeat(make_sessionmaker(engine), role, clock=utcnow,
                          every_s=min(heartbeats.BEAT_EVERY_S, stall_s / 4))
    try:
        yield heartbeat
    except Exception as exc:
        heartbeat("crashed", describe(exc), force=True)
        raise
    else:
        heartbeat("stopped", force=True)
    finally:
        engine.dispose()


def role_runners(settings: Settings, provider: RulesProvider, roles: tuple[str, ...],
                 metrics: WorkerMetrics | None = None) -> dict[str, Callable[[threading.Event], None]]:
    """One callable per role that builds the role's parts (engine, broker connection), runs its loop until
    `stop`, and tears the parts down; the supervisor calls it again if it dies."""
    dsn = libpq_dsn(settings.listen_url)  # LISTEN: direct, never through a transaction pooler

    def relay(stop: threading.Event) -> None:
        publisher = MqttPublisher(mqtt_config(settings))
        try:
            # A short wait, so a normal start does not count as a broker outage; a real one is logged by
            # the relay's loop, which waits it out while events stay in the outbox.
            publisher.start(wait_s=2)
            r = build_relay(settings, publisher, metrics)
            with _role_heartbeat(r.engine, "relay", settings.worker_stall_s) as beat:
                log.info("relay running: %s -> %s", settings.database_url.split("@")[-1], settings.mqtt_url)
                r.run_forever(dsn=dsn, clock=utcnow, stop=stop, poll_s=settings.relay_poll_s, heartbeat=beat)
        finally:
            publisher.stop()

    def sms(stop: threading.Event) -> None:
        fanout = build_fanout(settings, provider.current, metrics)
        with _role_heartbeat(fanout.factory.kw["bind"], "sms", settings.worker_stall_s) as beat:
            fanout.run_forever(dsn=dsn, stop=stop, poll_s=settings.relay_poll_s, heartbeat=beat)

    def sweeper(stop: threading.Event) -> None:
        models_registry.load()
        engine = make_engine(settings.database_url, pool_size=1)
        with _role_heartbeat(engine, "sweeper", settings.worker_stall_s) as beat:
            sweeper_mod.run_forever(make_sessionmaker(engine), rules=provider.current, clock=utcnow, stop=stop,
                                    interval_s=settings.sweep_interval_s, heartbeat=beat,
                                    observe=metrics.observe_sweep if metrics else None)

    def purge(stop: threading.Event) -> None:
        models_registry.load()
        engine = make_engine(settings.database_url, pool_size=1)
        with _role_heartbeat(engine, "purge", settings.worker_stall_s) as beat:
            retention.run_forever(make_sessionmaker(engine), policy=retention.Policy.from_settings(settings),
                                  clock=utcnow, stop=stop, interval_s=settings.purge_interval_s, heartbeat=beat,
                                  check_s=min(retention.CHECK_S, settings.worker_stall_s / 4))

    every = {"relay": relay, "sms": sms, "sweeper": sweeper, "purge": purge}
    return {role: every[role] for role in roles}


def supervise(runners: dict[str, Callable[[threading.Event], None]], stop: threading.Event, *,
              first_backoff_s: float = 0.5, max_backoff_s: float = 30.0, healthy_s: float = 60.0,
              check_s: float = 0.2) -> dict[str, int]:
    """Run each role in a thread until `stop`; a role whose thread ends before `stop` (an exception
    escaped its loop) is logged and started again after a backoff (reset once it has run `healthy_s`).
    Returns how many times each role was restarted."""
    threads: dict[str, threading.Thread] = {}
    started: dict[str, float] = {}
    due: dict[str, float] = {}
    backoffs = {role: Backoff(first_s=first_backoff_s, cap_s=max_backoff_s) for role in runners}
    restarts = dict.fromkeys(runners, 0)

    def guarded(role: str) -> None:
        try:
            runners[role](stop)
        except Exception:
            log.exception("worker role %s died", role)
        else:
            if not stop.is_set():
                log.error("worker role %s returned before stop", role)

    def start(role: str) -> None:
        threads[role] = threading.Thread(target=guarded, args=(role,), name=f"role-{role}", daemon=True)
        started[role] = time.monotonic()
        threads[role].start()

    for role in runners:
        start(role)
    try:
        while not stop.wait(check_s):
            for role, t in threads.items():
                if t.is_alive():
                    continue
                if role not in due:
                    if time.monotonic() - started[role] >= healthy_s:
                        backoffs[role].reset()
                    delay = backoffs[role].next_s()
                    due[role] = time.monotonic() + delay
                    log.warning("restarting worker role %s in %.1fs", role, delay)
                elif time.monotonic() >= due[role]:
                    del due[role]
                    restarts[role] += 1
                    start(role)
    finally:
        stop.set()
        for t in threads.values():
            t.join(timeout=10)
    return restarts


def validate(settings: Settings, roles: tuple[str, ...]) -> None:
    """Refuse bad configuration before starting anything: only this (and stop) ends the worker."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"worker roles must be among {', '.join(ROLES)}; got {', '.join(roles) or 'none'}")
    if "relay" in roles:
        mqtt_config(settings).host_port  # noqa: B018 - raises ValueError on a URL that is not mqtt(s)://


def run(settings: Settings, *, stop: threading.Event | None = None, roles: tuple[str, ...] = ROLES) -> None:
    """Run the dispatcher roles in this process: the outbox relay, the SMS fan-out, the alert sweeper and the
    retention purge (tocsin.retention, every TOCSIN_PURGE_INTERVAL_S).

    All four by default. Each role is safe to run in several processes at once (SKIP LOCKED), so a
    busy deployment can give the latency-critical relay a process of its own (`--roles relay`). Each
    role runs in a supervised thread (restarted if it dies) and rides out database and broker outages;
    the process ends only on SIGTERM/SIGINT (`stop`) or bad configuration."""
    validate(settings, roles)
    models_registry.load()  # here, not in the role threads: concurrent first imports can deadlock or fail
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    # One provider for the sweeper and the SMS fan-out: a reload (file change, SIGHUP) reaches both.
    provider = RulesProvider(settings.rules_file)
    provider.install_sighup()
    _prune_heartbeats(settings)
    metrics = WorkerMetrics()  # this process's own registry, served on TOCSIN_WORKER_METRICS_PORT (0: not)
    stop_serving = metrics.serve(host=settings.api_host, port=settings.worker_metrics_port)
    if settings.freeze_heap:
        heap.freeze()  # start-up's objects out of the collector's full passes (tocsin.heap)
    try:
        supervise(role_runners(settings, provider, roles, metrics), stop)
    finally:
        if stop_serving is not None:
            stop_serving()


def _prune_heartbeats(settings: Settings) -> None:
    """Drop the rows of processes long gone; best effort (the database may be down as we start)."""
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            heartbeats.prune(session, now=utcnow())
    except Exception as exc:  # noqa: BLE001 - the roles wait the outage out themselves
        log.debug("heartbeat prune skipped: %s", exc)
    finally:
        engine.dispose()
