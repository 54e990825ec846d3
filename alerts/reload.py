"""Rules that reload without a restart: on SIGHUP, or when the file changes on disk.

A file that no longer validates is logged and ignored: the last good rules stay in force.
"""

import logging
import signal
import threading
from pathlib import Path

from alerts.errors import RuleError
from alerts.rules import Rule, load_rules

log = logging.getLogger(__name__)


class RulesProvider:
    """`current()` returns the rules in force, re-reading the file first when it changed or SIGHUP arrived."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._hup = threading.Event()
        self._stamp = self._file_stamp()
        self._rules = load_rules(self.path)  # a bad file at start-up is an error, not a warning
        self.last_error: str | None = None

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def current(self) -> list[Rule]:
        stamp = self._file_stamp()
        if self._hup.is_set() or (stamp is not None and stamp != self._stamp):
            self.reload(stamp=stamp)
        return self._rules

    def reload(self, *, stamp: tuple[int, int] | None = None) -> bool:
        """Re-read the file now; returns whether the new rules were taken."""
        with self._lock:
            self._hup.clear()
            self._stamp = stamp if stamp is not None else self._file_stamp()
            try:
                rules = load_rules(self.path)
            except RuleError as exc:
                self.last_error = exc.message
                log.error("rules reload refused, keeping %d rules in force: %s", len(self._rules), exc.message)
                return False
            self._rules, self.last_error = rules, None
            log.info("rules reloaded from %s: %d rules", self.path, len(rules))
            return True

    def request_reload(self) -> None:
        """Safe from a signal handler: the next current() re-reads the file."""
        self._hup.set()

    def install_sighup(self) -> bool:
        """Reload on SIGHUP; only the main thread may install handlers, elsewhere this does nothing."""
        if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
            return False
        signal.signal(signal.SIGHUP, lambda *_: self.request_reload())
        return True
