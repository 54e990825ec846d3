"""A published event's Message Expiry Interval: the bytes Tocsin packs itself are MQTT v5's, and a subscriber
gets the interval from a real Mosquitto."""

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


def test_a_subscriber_gets_the_events_expiry_from_the_broker(mqtt_url, topic_prefix):
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
                                         topic_prefix=topic_prefix))
    try:
        sub.subscribe(f"{topic_prefix}/expiry/#", qos=1)
        subscribed.get(timeout=5)
        assert publisher.start(), f"no MQTT broker at {mqtt_url}"
        publisher.publish(f"{topic_prefix}/expiry/a", {"n": 1}, expiry_s=120)
        publisher.publish(f"{topic_prefix}/expiry/b", {"n": 2})
        first, second = got.get(timeout=5), got.get(timeout=5)
        # The broker forwards what is left of the interval: at most 120 s, and not gone in this test's time.
        assert 100 <= first.properties.MessageExpiryInterval <= 120
        assert first.payload == b'{"n":1}'
        assert not hasattr(second.properties, "MessageExpiryInterval")  # no expiry asked, none sent
    finally:
        publisher.stop()
        sub.loop_stop()
        sub.disconnect()
