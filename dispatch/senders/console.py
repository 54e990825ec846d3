"""A sender for demos and development: logs the exact SMS text instead of sending it."""

from __future__ import annotations

import logging
import uuid

from dispatch.senders.base import mask_phone

log = logging.getLogger("tocsin.sms")


class ConsoleSender:
    """Logs each message on logger ``tocsin.sms`` (phone masked) and returns ``CONSOLE-<uuid4 hex>``.

    A random SID, not a counter: SIDs are unique in `deliveries`, and a counter restarted by
    another process or a restart collides with the SIDs already stored."""

    def send(self, to: str, body: str, *, status_callback: str | None = None) -> str:
        sid = f"CONSOLE-{uuid.uuid4().hex}"
        log.info("SMS %s to %s: %s", sid, mask_phone(to), body)
        return sid
