"""Browser tests: a real uvicorn server on a loopback port, real headless Debian Chromium via Playwright."""

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """create_app(settings) under uvicorn in a thread; stop() and start() again on the same port."""

    def __init__(self, settings) -> None:
        from tocsin.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The browser's origin is this loopback URL: the session cookie's Origin check must accept it.
        self.app = create_app(settings.model_copy(update={"public_base_url": self.url}))
        self._server = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        import uvicorn

        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            self._server = None


@pytest.fixture
def live_server(settings, districts) -> Iterator[LiveServer]:
    server = LiveServer(settings)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def tokens(session_factory) -> dict[str, str]:
    """An operator token per role."""
    from accounts import operators
    from db.session import transaction

    out = {}
    with transaction(session_factory) as session:
        for role in ("viewer", "operator"):
            _, out[role] = operators.add_operator(session, name=f"{role}-e2e", role=role, now=datetime.now(UTC))
    return out


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page_for(browser, live_server):
    """A fresh browser context (its own cookies) per call, signed in with the given token, or anonymous.

    A token signs in as the page's own form would, with POST /v1/session from the page's origin, before the
    page first loads: the form reloads the page once signed in, and a page load is over a second of the
    browser's CPU. `with_form=True` signs in through the form itself (tests of that path)."""
    contexts = []

    def open_page(token: str | None = None, *, layer: str = "district", with_form: bool = False):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        if token is not None and not with_form:
            signed_in = context.request.post(f"{live_server.url}/v1/session", data={"token": token},
                                             headers={"Origin": live_server.url})
            assert signed_in.ok, signed_in.text()
        page = context.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))  # type: ignore[attr-defined]
        # Script errors count; the browser's own "Failed to load resource" lines (an expected 401/403) do not.
        page.on("console", lambda msg: page.errors.append(msg.text)  # type: ignore[attr-defined]
                if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
        page.goto(f"{live_server.url}/?layer={layer}")
        if token is not None and with_form:
            page.wait_for_selector("#signin-form:not([hidden])")
            page.fill("#token-input", token)
            page.click("#signin-form button[type=submit]")
        if token is not None:
            page.wait_for_function("window.tocsin && window.tocsin.wsState === 'connected'", timeout=10_000)
        try:
            page.wait_for_function("window.tocsin && window.tocsin.ready === true", timeout=10_000)
        except Exception as exc:
            raise AssertionError(f"the page never became ready; page errors: {page.errors}") from exc
        return page

    yield open_page
    for context in contexts:
        context.close()
