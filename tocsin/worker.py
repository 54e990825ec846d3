"""The worker process: the outbox relay (and, later, the sweeper), with clean shutdown on SIGTERM."""

import logging
import signal
import threading
from datetime import UTC, datetime

from db.session import make_engine, make_sessionmaker
from dispatch.relay import Relay
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


def run(settings: Settings, *, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    publisher = MqttPublisher(mqtt_config(settings))
    if not publisher.start(wait_s=10):
        log.warning("MQTT broker at %s not reachable yet; events wait in the outbox", settings.mqtt_url)
    relay = build_relay(settings, publisher)
    log.info("relay running: %s -> %s", settings.database_url.split("@")[-1], settings.mqtt_url)
    try:
        relay.run_forever(dsn=libpq_dsn(settings.database_url), clock=utcnow, stop=stop, poll_s=settings.relay_poll_s)
    finally:
        publisher.stop()
