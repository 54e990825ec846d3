"""A lean HTTP/1.1 keep-alive client for the load generators of bench.latency and bench.reports.

The benchmarks run the client on the same two cores as the server, PostgreSQL and Mosquitto, so the
client's own CPU is taken from what it measures. httpx spent about 9 ms of CPU per POST here (more
than the API server's whole request); this client writes the request bytes itself and reads the
status line, headers and Content-Length body back, at a few hundred microseconds per request. It
speaks only what the benchmarks need: POST or GET with a JSON body, responses with Content-Length.
Also `serve`, the API server the benchmarks load (uvicorn in a subprocess), `wait_workers`, and `free_port`.
"""

import asyncio
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse


def free_port() -> int:
    """A loopback TCP port nobody is listening on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerDidNotStart(RuntimeError):
    """The server `serve` started exited, or did not answer /healthz in time."""


@contextmanager
def serve(app_factory: str, *, env: Mapping[str, str], workers: int,
          start_timeout_s: float = 60.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """`uvicorn --factory app_factory` with `workers` workers on a free loopback port, without access log;
    yields (base URL, the server process) once GET /healthz answers 200, and terminates it on exit.

    `env` is the server's whole environment (pass `{**os.environ, ...}`). Raises ServerDidNotStart if the
    process exits first or `start_timeout_s` pass.
    """
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", app_factory, "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        env=dict(env),
    )
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if (code := server.poll()) is not None:
                raise ServerDidNotStart(f"{app_factory} on {base} exited with status {code} before /healthz answered")
            if time.monotonic() > deadline:
                raise ServerDidNotStart(f"{app_factory} on {base}: /healthz did not answer 200 within "
                                        f"{start_timeout_s:g} s")
            time.sleep(0.2)
        wait_workers(base, workers, timeout_s=max(1.0, deadline - time.monotonic()))
        yield base, server
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# A process id as /metrics labels it (`pid="123"`) or as a JSON body gives it (`"pid": 123`).
_PID = re.compile(r'\bpid"?\s*[=:]\s*"?(\d+)')


def wait_workers(base: str, workers: int, *, path: str = "/metrics", timeout_s: float = 60.0) -> None:
    """Return once `workers` different processes have answered GET `path`, each asked on a new connection.

    A server with several workers answers /healthz as soon as one of them is up. A load generator that opens
    its keep-alive connections then gives every one to that process while the others still start: bench.reports
    once ran its whole closed loop, 17,061 reports, on one of its two workers. `path` names the answering
    process: the product's /metrics labels its series with `pid`, the floor's /healthz says `pid`."""
    import httpx

    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while len(seen) < workers:
        if time.monotonic() > deadline:
            raise ServerDidNotStart(f"{base}: {len(seen)} of {workers} workers answered within {timeout_s:g} s")
        try:
            seen.update(_PID.findall(httpx.get(f"{base}{path}", timeout=2).text))
        except httpx.HTTPError:
            time.sleep(0.2)


@dataclass(frozen=True)
class Response:
    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Pool:
    """Up to `size` keep-alive connections to one server; `request` borrows one for each exchange."""

    def __init__(self, base_url: str, *, size: int, headers: dict[str, str] | None = None) -> None:
        u = urlparse(base_url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self._slots = asyncio.Semaphore(size)

    async def request(self, method: str, path: str, payload: Any = None) -> Response:
        body = b"" if payload is None else json.dumps(payload).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.extra}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        async with self._slots:
            for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile reads as b""
                reused = not self._idle.empty()
                reader, writer = self._idle.get_nowait() if reused else \
                    await asyncio.open_connection(self.host, self.port)
                try:
                    writer.write(head + body)
                    status_line = await reader.readline()
                    if not status_line:
                        writer.close()
                        if reused and attempt == 1:
                            continue
                        raise ConnectionError(f"{self.host}:{self.port} closed the connection without answering")
                    length, close = 0, False
                    while (line := await reader.readline()) not in (b"\r\n", b""):
                        name, _, value = line.decode("latin-1").partition(":")
                        name = name.strip().lower()
                        if name == "content-length":
                            length = int(value)
                        elif name == "connection" and value.strip().lower() == "close":
                            close = True
                    data = await reader.readexactly(length) if length else b""
                except BaseException:
                    writer.close()
                    raise
                if close:
                    writer.close()
                else:
                    self._idle.put_nowait((reader, writer))
                return Response(int(status_line.split()[1]), data)
            raise AssertionError("unreachable")

    async def post(self, path: str, json: Any) -> Response:  # noqa: A002  (the httpx spelling)
        return await self.request("POST", path, json)

    async def aclose(self) -> None:
        while not self._idle.empty():
            _, writer = self._idle.get_nowait()
            writer.close()
