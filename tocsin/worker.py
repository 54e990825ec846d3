"""The worker process: the outbox relay, the SMS fan-out and the sweeper, with clean shutdown on SIGTERM."""

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from alerts.reload import RulesProvider
from db.session import make_engine, make_sessionmaker
from dispatch.relay import Relay
from dispatch.fanout import FanoutConfig
from dispatch.fanout_worker import FanoutWorker
from dispatch.senders.console import ConsoleSender
from dispatch.senders.sms import TwilioSender
from dispatch.senders.mqtt import MqttConfig, MqttPublisher
from tocsin import models_registry
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


def libpq_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


def build_relay(settings: Settings, publisher: MqttPublisher) -> Relay:
    models_registry.load()
    engine = make_engine(settings.database_url, pool_size=2)
    return Relay(
        make_sessionmaker(engine), publisher,
        topic_prefix=settings.mqtt_topic_prefix, public_base_url=settings.public_base_url,
        batch_size=settings.relay_batch_size, max_attempts=settings.relay_max_attempts,
    )


def build_sender(settings: Settings) -> TwilioSender | ConsoleSender:
    """Twilio when TOCSIN_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and _FROM are set; else a console sender."""
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from:
        return TwilioSender(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
                            settings.twilio_from, base_url=settings.twilio_base_url)
    log.info("no Twilio credentials: SMS goes to the console sender (logger tocsin.sms)")
    return ConsoleSender()


def build_fanout(settings: Settings, rules: Callable[[], list]) -> FanoutWorker:
    models_registry.load()
    engine = make_engine(settings.database_url, pool_size=settings.sms_concurrency + 1)
    config = FanoutConfig(public_base_url=settings.public_base_url, mps=settings.sms_mps,
                          queue_ceiling_s=settings.sms_queue_ceiling_s)
    return FanoutWorker(make_sessionmaker(engine), build_sender(settings), rules=rules, config=config,
                        clock=utcnow, max_attempts=settings.sms_max_attempts, concurrency=settings.sms_concurrency,
                        gather_s=settings.sms_gather_s)


def build_sweeper(settings: Settings, stop: threading.Event, provider: RulesProvider) -> Callable[[], None]:
    """The alert sweeper loop, reading the rules the provider currently holds."""
    from alerts import sweeper

    models_registry.load()
    factory = make_sessionmaker(make_engine(settings.database_url, pool_size=1))
    return lambda: sweeper.run_forever(factory, rules=provider.current, clock=utcnow, stop=stop,
                                       interval_s=settings.sweep_interval_s)


ROLES = ("relay", "sms", "sweeper")


def run(settings: Settings, *, stop: threading.Event | None = None, roles: tuple[str, ...] = ROLES) -> None:
    """Run the dispatcher roles in this process: the outbox relay, the SMS fan-out and the alert sweeper.

    All three by default. Each role is safe to run in several processes at once (SKIP LOCKED), so a
    busy deployment can give the latency-critical relay a process of its own (`--roles relay`)."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"worker roles must be among {', '.join(ROLES)}; got {', '.join(roles) or 'none'}")
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    # One provider for the sweeper and the SMS fan-out: a reload (file change, SIGHUP) reaches both.
    provider = RulesProvider(settings.rules_file)
    provider.install_sighup()
    threads = []
    if "sms" in roles:
        fanout = build_fanout(settings, provider.current)
        threads.append(threading.Thread(
            target=fanout.run_forever, kwargs={"dsn": libpq_dsn(settings.database_url), "stop": stop,
                                               "poll_s": settings.relay_poll_s},
            name="sms-fanout", daemon=True))
    if "sweeper" in roles:
        threads.append(threading.Thread(target=build_sweeper(settings, stop, provider), name="alert-sweeper",
                                        daemon=True))
    for t in threads:
        t.start()
    try:
        if "relay" in roles:
            _run_relay(settings, stop)
        else:
            stop.wait()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)


def _run_relay(settings: Settings, stop: threading.Event) -> None:
    publisher = MqttPublisher(mqtt_config(settings))
    if not publisher.start(wait_s=10):
        log.warning("MQTT broker at %s not reachable yet; events wait in the outbox", settings.mqtt_url)
    relay = build_relay(settings, publisher)
    log.info("relay running: %s -> %s", settings.database_url.split("@")[-1], settings.mqtt_url)
    try:
        relay.run_forever(dsn=libpq_dsn(settings.database_url), clock=utcnow, stop=stop, poll_s=settings.relay_poll_s)
    finally:
        publisher.stop()
