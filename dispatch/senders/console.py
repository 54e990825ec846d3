"""A sender for demos and development: logs the exact SMS text instead of sending it."""

from __future__ import annotations

import itertools
import logging
import threading

from dispatch.senders.base import mask_phone

log = logging.getLogger("tocsin.sms")


class ConsoleSender:
    """Logs each message on logger ``tocsin.sms`` (phone masked) and returns ``CONSOLE-<n>``."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        with self._lock:
            sid = f"CONSOLE-{next(self._counter)}"
        log.info("SMS %s to %s: %s", sid, mask_phone(to), body)
        return sid
