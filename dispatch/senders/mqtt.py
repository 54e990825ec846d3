"""Publish alert events to MQTT with paho-mqtt 2.x: QoS 1, persistent session, Last Will."""

import json
import logging
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dispatch.senders.base import DeliveryError

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
_MAX_U32 = 2**32 - 1


def _json(payload: dict[str, Any]) -> bytes:
    """The message body: orjson's, or the standard library's for what orjson refuses (an integer beyond 64 bits,
    from a payload written by hand), so that no payload stops the relay."""
    try:
        return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(payload, separators=(",", ":")).encode()


class ExpiryProperties:
    """A PUBLISH's MQTT v5 properties when its only one is Message Expiry Interval (property 0x02, a
    four-byte integer): the six bytes paho sends, packed once. paho reads nothing of a PUBLISH's
    properties but pack() (and str() in its debug log); its own Properties class spent about 0.1 ms
    of Python building them, by reflection over every property name, for each event the relay sends."""

    __slots__ = ("seconds", "_packed")

    def __init__(self, seconds: int) -> None:
        self.seconds = max(0, min(int(seconds), _MAX_U32))
        self._packed = b"\x05\x02" + self.seconds.to_bytes(4, "big")  # length 5, id 2, value

    def pack(self) -> bytes:
        return self._packed

    def __str__(self) -> str:
        return f"[MessageExpiryInterval : {self.seconds}]"


@dataclass(frozen=True)
class MqttConfig:
    url: str  # mqtt://host:port or mqtts://host:port
    client_id: str
    topic_prefix: str = "tocsin/v1"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        u = urlparse(self.url)
        if u.scheme not in ("mqtt", "mqtts", "tcp"):
            raise ValueError(f"MQTT URL {self.url!r} must start with mqtt:// or mqtts://")
        return u.hostname or "127.0.0.1", u.port or (8883 if u.scheme == "mqtts" else 1883)


class MqttPublisher:
    """One long-lived connection; publish() returns only after the broker acknowledged (PUBACK)."""

    def __init__(self, config: MqttConfig, *, ack_timeout_s: float = 10.0) -> None:
        self.config = config
        self.ack_timeout_s = ack_timeout_s
        self._connected = threading.Event()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=config.client_id, protocol=mqtt.MQTTv5
        )
        # A raising callback must be logged, not kill the network thread.
        client.suppress_exceptions = True
        client.enable_logger(logging.getLogger("tocsin.mqtt.paho"))
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(0)
        # Up to 100 unacknowledged publishes (Mosquitto's max_inflight_messages): a batch pipelines its PUBACKs.
        client.max_inflight_messages_set(100)
        if config.username:
            client.username_pw_set(config.username, config.password)
        if config.tls or config.url.startswith("mqtts://"):
            client.tls_set(ca_certs=config.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        client.will_set(self.status_topic, payload="offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._client = client

    @property
    def status_topic(self) -> str:
        return f"{self.config.topic_prefix}/status"

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("MQTT connect refused: %s", reason_code)
            return
        log.info("MQTT connected to %s (session present=%s)", self.config.url, flags.session_present)
        client.publish(self.status_topic, payload="online", qos=1, retain=True)
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connected.clear()
        log.warning("MQTT disconnected: %s; paho reconnects on its own", reason_code)

    def start(self, *, wait_s: float = 10.0) -> bool:
        host, port = self.config.host_port
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        self._client.connect_async(host, port, keepalive=30, clean_start=False, properties=props)
        self._client.loop_start()
        return self._connected.wait(wait_s)

    def stop(self) -> None:
        if self._connected.is_set():
            self._client.publish(self.status_topic, payload="offline", qos=1, retain=True).wait_for_publish(2)
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        """Block until the broker connection is up (or `timeout_s` passed); returns whether it is."""
        return self._connected.wait(timeout_s)

    def publish(self, topic: str, payload: dict[str, Any] | bytes | None, *, retain: bool = False,
                expiry_s: int | None = None) -> None:
        """Publish at QoS 1 and wait for PUBACK; raise a retryable DeliveryError otherwise."""
        self.confirm(self.publish_nowait(topic, payload, retain=retain, expiry_s=expiry_s))

    def publish_nowait(self, topic: str, payload: dict[str, Any] | bytes | None, *, retain: bool = False,
                       expiry_s: int | None = None) -> tuple[str, mqtt.MQTTMessageInfo]:
        """Send at QoS 1 without waiting; pass the ticket to confirm(). Lets a batch share its PUBACK waits."""
        if not self._connected.is_set():
            raise DeliveryError("MQTT broker not connected", retryable=True)
        body = _json(payload) if isinstance(payload, dict) else payload or b""
        props = ExpiryProperties(expiry_s) if expiry_s is not None and expiry_s > 0 else None
        return topic, self._client.publish(topic, body, qos=1, retain=retain,
                                           properties=props)  # type: ignore[arg-type]  # paho calls pack()

    def confirm(self, ticket: tuple[str, mqtt.MQTTMessageInfo], *, timeout_s: float | None = None) -> None:
        """Wait for the PUBACK of a publish_nowait(); raise a retryable DeliveryError when none comes."""
        topic, info = ticket
        timeout_s = self.ack_timeout_s if timeout_s is None else max(0.0, timeout_s)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise DeliveryError(f"MQTT publish to {topic} failed: {exc}", retryable=True) from exc
        if not info.is_published():
            raise DeliveryError(f"MQTT publish to {topic} not acknowledged within {timeout_s:.1f}s",
                                retryable=True)
