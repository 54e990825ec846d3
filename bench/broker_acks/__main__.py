"""How long the MQTT broker takes to acknowledge a batch of QoS 1 publishes, sent as the relay sends them.

The relay publishes a batch of events back to back and then awaits their PUBACKs (dispatch.relay). A broker
with Nagle's algorithm on (Mosquitto's default, `set_tcp_nodelay false`) holds every PUBACK after the
first until the client's delayed ACK, 40 ms on Linux: a batch of two or more then takes 40 ms or more
instead of about a millisecond. The project's broker sets `set_tcp_nodelay true` (scripts/mosquitto.conf.in);
run this against your own broker (TOCSIN_MQTT_URL) to check it.

Prints, per batch size, `batch= p50_ms= p90_ms= max_ms=` over BENCH_ROUNDS rounds (default 40) with the
product's publisher (dispatch.senders.mqtt.MqttPublisher: QoS 1, MQTT 5), 1.5 kB per message, on topics
under `<prefix>/bench/broker_acks/`. Last line: batch=10. Expect p50 of a few ms; 40 ms or more means
Nagle's algorithm is on at the broker.

Run: .venv/bin/python -m bench.broker_acks
"""

import os
import sys
import time
import uuid

BATCHES = (1, 2, 10)


def main() -> int:
    from bench.latency.load import percentile
    from dispatch.senders.mqtt import MqttPublisher
    from tocsin.settings import Settings
    from tocsin.worker import mqtt_config

    settings = Settings()
    rounds = int(os.environ.get("BENCH_ROUNDS", "40"))
    publisher = MqttPublisher(mqtt_config(settings, client_id=f"bench-acks-{uuid.uuid4().hex[:8]}"))
    if not publisher.start(wait_s=10):
        print(f"broker at {settings.mqtt_url} not reachable: start it (scripts/services.sh start)")
        return 1
    topic = f"{settings.mqtt_topic_prefix}/bench/broker_acks"
    payload = b"x" * 1500
    try:
        for batch in BATCHES:
            took = []
            for _ in range(rounds):
                start = time.perf_counter()
                tickets = [publisher.publish_nowait(f"{topic}/{i}", payload) for i in range(batch)]
                for ticket in tickets:
                    publisher.confirm(ticket)
                took.append(1000 * (time.perf_counter() - start))
                time.sleep(0.02)  # the next batch starts from a quiet connection, as the relay's often does
            print(f"batch={batch} p50_ms={percentile(took, 0.5):.1f} p90_ms={percentile(took, 0.9):.1f} "
                  f"max_ms={max(took):.1f}", flush=True)
    finally:
        publisher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
