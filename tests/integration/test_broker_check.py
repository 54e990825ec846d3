"""The readiness probe of the MQTT broker: the real Mosquitto accepts it; scripted brokers on a loopback socket
(the network edge) refuse, hang up, stay silent or answer something else, each named in the answer; the
answer is cached, so a storm of /readyz probes opens one connection per cache period."""

import socket
import threading
from contextlib import contextmanager

import pytest

from dispatch.broker_check import BrokerCheck, CachedBrokerCheck, connect_packet
from tests.integration.dispatch_support import free_port

pytestmark = pytest.mark.integration


@contextmanager
def scripted_broker(reply: bytes | None, *, hang_up: bool = False):
    """A socket that accepts connections, reads the CONNECT and answers `reply` (None: nothing, until the
    client leaves); yields (port, what each connection sent)."""
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    done = threading.Event()

    def serve():
        server.settimeout(0.1)
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    received.append(conn.recv(1024))
                    if hang_up:
                        continue
                    if reply is not None:
                        conn.sendall(reply)
                    while conn.recv(1024):  # until the client closes (after its DISCONNECT)
                        pass
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        done.set()
        thread.join(5)
        server.close()


def test_connect_packet_is_mqtt_3_1_1_with_a_clean_session():
    assert connect_packet("c", keepalive_s=10) == b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x0a\x00\x01c"
    with_login = connect_packet("c", username="u", password="p", keepalive_s=10)
    assert with_login == b"\x10\x13\x00\x04MQTT\x04\xc2\x00\x0a\x00\x01c\x00\x01u\x00\x01p"
    long = connect_packet("x" * 200)  # a remaining length over 127 takes two bytes
    assert long[1:3] == bytes([(212 & 0x7F) | 0x80, 212 >> 7]) and len(long) == 3 + 212


def test_the_real_broker_accepts(mqtt_url):
    check = BrokerCheck.for_url(mqtt_url)
    check.probe()  # raises BrokerDown otherwise
    assert CachedBrokerCheck(check).problem() is None


@pytest.mark.parametrize("reply, hang_up, cause", [
    (b"\x20\x02\x00\x00", False, None),
    (b"\x20\x02\x00\x05", False, "refused the connection: not authorized (CONNACK code 5)"),
    (b"\x20\x02\x00\x04", False, "refused the connection: bad user name or password (CONNACK code 4)"),
    (b"\x30\x02\x00\x00", False, "answered with packet type 3 instead of CONNACK"),
    (None, True, "closed the connection before CONNACK"),
    (None, False, "unreachable: no answer within 0.3s"),
])
def test_each_way_a_broker_can_fail_is_named(reply, hang_up, cause):
    with scripted_broker(reply, hang_up=hang_up) as (port, received):
        check = BrokerCheck("127.0.0.1", port, username="tocsin", password="secret", timeout_s=0.3)
        expected = None if cause is None else f"mqtt broker 127.0.0.1:{port} {cause}"
        assert CachedBrokerCheck(check).problem() == expected
    assert len(received) == 1 and received[0].startswith(b"\x10") and b"\x00\x06tocsin\x00\x06secret" in received[0]


def test_a_closed_port_is_connection_refused():
    port = free_port()
    assert CachedBrokerCheck(BrokerCheck("127.0.0.1", port)).problem() == \
        f"mqtt broker 127.0.0.1:{port} unreachable: connection refused"


def test_the_answer_is_cached_up_or_down():
    now = [100.0]
    with scripted_broker(b"\x20\x02\x00\x00") as (port, received):
        check = CachedBrokerCheck(BrokerCheck("127.0.0.1", port), cache_s=5.0, monotonic=lambda: now[0])
        assert [check.problem() for _ in range(20)] == [None] * 20
        assert check.probes == 1
        now[0] += 4.9
        check.problem()
        assert check.probes == 1
        now[0] += 0.1
        check.problem()
        assert check.probes == 2
    assert len(received) == 2
    down = CachedBrokerCheck(BrokerCheck("127.0.0.1", free_port()), cache_s=5.0, monotonic=lambda: now[0])
    answers = {down.problem() for _ in range(10)}
    assert len(answers) == 1 and "connection refused" in answers.pop() and down.probes == 1
