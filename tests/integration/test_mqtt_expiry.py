"""A published event's Message Expiry Interval: the bytes Tocsin packs itself are MQTT v5's, and a subscriber
gets the interval from a real Mosquitto."""

import contextlib
import json
import queue
import uuid
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dispatch.senders.mqtt import ExpiryProperties, MqttConfig, MqttPublisher

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("seconds", [1, 127, 128, 300, 65_535, 86_400 * 7, 2**32 - 1])
def test_the_packed_expiry_is_what_paho_packs(seconds):
    theirs = Properties(PacketTypes.PUBLISH)
    theirs.MessageExpiryInterval = seconds
    assert ExpiryProperties(seconds).pack() == theirs.pack()


def test_an_expiry_beyond_four_bytes_is_clamped_to_the_largest_interval():
    assert ExpiryProperties(2**40).pack() == ExpiryProperties(2**32 - 1).pack()
    assert ExpiryProperties(2**40).seconds == 2**32 - 1


@contextlib.contextmanager
def subscribed(mqtt_url: str, topics: str):
    """A real subscriber to `topics` and a started MqttPublisher: yields (publisher, the messages received)."""
    u = urlparse(mqtt_url)
    got: queue.Queue = queue.Queue()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"exp-{uuid.uuid4().hex[:8]}",
                      protocol=mqtt.MQTTv5)
    sub.on_message = lambda c, ud, msg: got.put(msg)
    subscribed = queue.Queue()
    sub.on_subscribe = lambda *a: subscribed.put(True)
    sub.connect(u.hostname, u.port)
    sub.loop_start()
    publisher = MqttPublisher(MqttConfig(url=mqtt_url, client_id=f"exp-pub-{uuid.uuid4().hex[:8]}",
                                         topic_prefix="unused"))
    try:
        sub.subscribe(topics, qos=1)
        subscribed.get(timeout=5)
        assert publisher.start(), f"no MQTT broker at {mqtt_url}"
        yield publisher, got
    finally:
        publisher.stop()
        sub.loop_stop()
        sub.disconnect()


def test_a_subscriber_gets_the_events_expiry_from_the_broker(mqtt_url, topic_prefix):
    with subscribed(mqtt_url, f"{topic_prefix}/expiry/#") as (publisher, got):
        publisher.publish(f"{topic_prefix}/expiry/a", {"n": 1}, expiry_s=120)
        publisher.publish(f"{topic_prefix}/expiry/b", {"n": 2})
        first, second = got.get(timeout=5), got.get(timeout=5)
        # The broker forwards what is left of the interval: at most 120 s, and not gone in this test's time.
        assert 100 <= first.properties.MessageExpiryInterval <= 120
        assert first.payload == b'{"n":1}'
        assert not hasattr(second.properties, "MessageExpiryInterval")  # no expiry asked, none sent


def test_any_json_payload_goes_out_whole(mqtt_url, topic_prefix):
    # orjson writes the bodies, and refuses an integer beyond 64 bits (an event row written by hand can hold
    # one): the standard library's writer takes over, and the message still goes out.
    payloads = [{"zone": {"name": "Bedford-Stuyvesant (Ouest) \u2013 Café"}, "n": 2**63 - 1, "w": 0.1},
                {"n": 10**30, "nested": [{"x": -(2**64)}]}, {1: "a non-string key"}]
    with subscribed(mqtt_url, f"{topic_prefix}/bodies/#") as (publisher, got):
        for i, payload in enumerate(payloads):
            publisher.publish(f"{topic_prefix}/bodies/{i}", payload)
        received = [json.loads(got.get(timeout=5).payload) for _ in payloads]
    assert received == [json.loads(json.dumps(p)) for p in payloads]
