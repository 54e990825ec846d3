"""The worker process's own metrics (relay acknowledgement and SMS send latency, the sweeper's passes), in a
registry of its own, served on TOCSIN_WORKER_METRICS_PORT: the API process cannot see them."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

# Outbox events wait for a broker outage or a backlog: seconds to minutes, beyond the default buckets.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, float("inf"))
SMS_OUTCOMES = ("accepted", "retryable", "permanent")


class WorkerMetrics:
    """One worker process's histograms; the relay and the SMS sender are given its `observe_*` methods."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.relay_ack = Histogram(
            "tocsin_relay_ack_seconds",
            "Outbox events from their creation (in the transaction of the alert change) to the MQTT broker's "
            "acknowledgement of their publish.", registry=self.registry, buckets=ACK_BUCKETS)
        self.sms_send = Histogram(
            "tocsin_sms_send_seconds",
            "Twilio API calls that send an SMS, by outcome (accepted, retryable or permanent error).",
            ["outcome"], registry=self.registry)
        self.sweep_pass = Histogram(
            "tocsin_sweeper_pass_seconds", "The sweeper's passes over the unresolved alerts, scan to last chunk.",
            registry=self.registry)
        self.sweep_alerts = Counter(
            "tocsin_sweeper_alerts_total",
            "Unresolved alerts a sweeper pass swept (new, changed or due) or skipped (nothing could be due).",
            ["outcome"], registry=self.registry)
        self.sweep_full = Counter(
            "tocsin_sweeper_full_passes_total",
            "Sweeper passes that swept every alert: the first, and after a change of rules or silences.",
            registry=self.registry)

    def observe_sweep(self, seconds: float, *, swept: int, skipped: int, full: bool) -> None:
        self.sweep_pass.observe(seconds)
        self.sweep_alerts.labels(outcome="swept").inc(swept)
        self.sweep_alerts.labels(outcome="skipped").inc(skipped)
        if full:
            self.sweep_full.inc()

    def observe_relay_ack(self, seconds: float) -> None:
        self.relay_ack.observe(seconds)

    def observe_sms_send(self, seconds: float, outcome: str) -> None:
        self.sms_send.labels(outcome=outcome).observe(seconds)

    def serve(self, *, host: str, port: int) -> Callable[[], None] | None:
        """Serve GET /metrics on host:port in a thread (port 0: not served); returns what stops it."""
        if not port:
            return None
        server, thread = start_http_server(port, addr=host, registry=self.registry)

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(5)

        return stop
