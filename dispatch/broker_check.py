"""Is the MQTT broker up? A TCP connect and an MQTT 3.1.1 CONNECT answered by CONNACK, within a short timeout,
the answer cached for a few seconds (for /readyz: a storm of probes must not become a storm of connections)."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

TIMEOUT_S = 1.0
CACHE_S = 5.0
# CONNACK return codes of MQTT 3.1.1 (section 3.2.2.3).
REFUSALS = {1: "unacceptable protocol version", 2: "client identifier rejected", 3: "server unavailable",
            4: "bad user name or password", 5: "not authorized"}


class BrokerDown(Exception):
    """The broker did not accept an MQTT connection; the message says why."""


def parse_url(url: str) -> tuple[str, int, bool]:
    """Host, port and whether TLS is implied, of an mqtt:// or mqtts:// URL."""
    u = urlparse(url)
    if u.scheme not in ("mqtt", "mqtts", "tcp"):
        raise ValueError(f"MQTT URL {url!r} must start with mqtt:// or mqtts://")
    return u.hostname or "127.0.0.1", u.port or (8883 if u.scheme == "mqtts" else 1883), u.scheme == "mqtts"


def _string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, *, username: str | None = None, password: str | None = None,
                   keepalive_s: int = 10) -> bytes:
    """An MQTT 3.1.1 CONNECT with a clean session (nothing is left on the broker)."""
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive_s) + _string(client_id)
    body += (_string(username) if username is not None else b"") + (_string(password) if password is not None else b"")
    length, encoded = len(body), b""
    while True:  # the remaining length: 7 bits a byte, high bit set while more follow
        length, digit = divmod(length, 128)
        encoded += bytes([digit | (0x80 if length else 0)])
        if not length:
            break
    return b"\x10" + encoded + body


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise BrokerDown("closed the connection before CONNACK")
        data += chunk
    return data


@dataclass(frozen=True)
class BrokerCheck:
    """Probe one broker; `problem()` is None when it is up, else a sentence naming it and the cause."""

    host: str
    port: int
    tls: bool = False
    ca_file: str | None = None
    username: str | None = None
    password: str | None = None
    timeout_s: float = TIMEOUT_S

    @classmethod
    def for_url(cls, url: str, *, tls: bool = False, **kwargs) -> BrokerCheck:
        host, port, implied_tls = parse_url(url)
        return cls(host, port, tls=tls or implied_tls, **kwargs)

    @property
    def name(self) -> str:
        return f"mqtt broker {self.host}:{self.port}"

    def probe(self) -> None:
        """Connect, send CONNECT, wait for CONNACK, disconnect; raise BrokerDown on any failure."""
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout_s) as raw:
                sock = raw
                if self.tls:
                    context = ssl.create_default_context(cafile=self.ca_file)
                    sock = context.wrap_socket(raw, server_hostname=self.host)
                sock.sendall(connect_packet(f"tocsin-readyz-{uuid.uuid4().hex[:12]}", username=self.username,
                                            password=self.password))
                kind, length = _read(sock, 2)
                if kind != 0x20 or length != 2:
                    raise BrokerDown(f"answered with packet type {kind >> 4} instead of CONNACK")
                _, code = _read(sock, 2)
                if code != 0:
                    raise BrokerDown(f"refused the connection: {REFUSALS.get(code, 'unknown reason')} "
                                     f"(CONNACK code {code})")
                sock.sendall(b"\xe0\x00")  # DISCONNECT: a clean goodbye, no will message
        except BrokerDown:
            raise
        except ConnectionRefusedError as exc:
            raise BrokerDown("unreachable: connection refused") from exc
        except TimeoutError as exc:
            raise BrokerDown(f"unreachable: no answer within {self.timeout_s:g}s") from exc
        except socket.gaierror as exc:
            raise BrokerDown(f"unreachable: cannot resolve {self.host}: {exc.strerror}") from exc
        except ssl.SSLError as exc:
            raise BrokerDown(f"TLS handshake failed: {exc.reason or exc}") from exc
        except OSError as exc:
            raise BrokerDown(f"unreachable: {exc.strerror or exc}") from exc


class CachedBrokerCheck:
    """A BrokerCheck whose answer is reused for `cache_s` (up or down); concurrent callers share one probe."""

    def __init__(self, check: BrokerCheck, *, cache_s: float = CACHE_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.check = check
        self.cache_s = cache_s
        self.monotonic = monotonic
        self.probes = 0  # how many connections it opened
        self._lock = threading.Lock()
        self._answer: tuple[float, str | None] | None = None

    def problem(self) -> str | None:
        """None when the broker accepted a connection within the last cache_s, else what is wrong."""
        with self._lock:
            if self._answer is None or self.monotonic() - self._answer[0] >= self.cache_s:
                self.probes += 1
                try:
                    self.check.probe()
                    found = None
                except BrokerDown as exc:
                    found = f"{self.check.name} {exc}"
                self._answer = (self.monotonic(), found)
            return self._answer[1]
