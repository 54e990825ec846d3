"""This API process's own metrics: request durations by route template, report commit latency and the
group-commit counters, in a registry that belongs to the app (create_app builds one per app)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.reports.writer import ReportWriter

UNMATCHED = "unmatched"  # the route label of a request no route matched: never the raw path (unbounded)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other is "other"


class ApiMetrics:
    """The registry /metrics renders after the database's series (dispatch.metrics_api). Every series
    carries this process's pid: `tocsin serve --workers N` answers scrapes from any of its processes."""

    def __init__(self, *, writer: Callable[[], ReportWriter | None], pid: int | None = None) -> None:
        self.pid = str(pid if pid is not None else os.getpid())
        self.registry = CollectorRegistry()
        self.http = Histogram(
            "tocsin_http_request_duration_seconds",
            "HTTP requests by method, route template and status code: from the request to the response's end.",
            ["method", "route", "status", "pid"], registry=self.registry)
        self.report_commit = Histogram(
            "tocsin_report_commit_seconds",
            "Reports from their arrival at the group-commit writer to the commit of their batch (the report, "
            "the alert changes it caused and their outbox events durable).",
            ["pid"], registry=self.registry)
        self.registry.register(_WriterCollector(writer, self.pid))

    def observe_report_commit(self, seconds: float) -> None:
        self.report_commit.labels(pid=self.pid).observe(seconds)

    def observe_request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        self.http.labels(method=method, route=route, status=str(status), pid=self.pid).observe(seconds)


class _WriterCollector:
    """The report writer's group commits, read from it when collected (it counts them itself)."""

    def __init__(self, writer: Callable[[], ReportWriter | None], pid: str) -> None:
        self.writer = writer
        self.pid = pid

    def collect(self) -> Iterator[Metric]:
        writer = self.writer()  # built by the lifespan: none before it ran
        if writer is None:
            return
        batches = CounterMetricFamily("tocsin_report_batches_total",
                                      "Group commits of POST /v1/reports by this API process.", labels=["pid"])
        batches.add_metric([self.pid], writer.batches)
        reports = CounterMetricFamily("tocsin_report_batch_reports_total",
                                      "Reports written by those group commits.", labels=["pid"])
        reports.add_metric([self.pid], writer.reports)
        yield batches
        yield reports


def route_template(scope: Scope, *, root_path: str) -> str:
    """The path template of the route that served the request (`/v1/reports/{report_id}`), as routing left
    it in `scope`; for a mount (static files), its prefix (what routing added to `root_path`) and `/{path}`;
    else UNMATCHED: no route served it (a 404, or a body refused before routing: 413, malformed JSON)."""
    template = getattr(scope.get("route"), "path_format", None)
    if template:
        return template
    mounted = scope.get("root_path", "")
    if mounted != root_path and mounted.startswith(root_path):
        return f"{mounted[len(root_path):]}/{{path}}"
    return UNMATCHED


class HttpMetrics:
    """ASGI middleware: each HTTP request's duration by method, route template and status code. Added last
    in create_app, so it is outermost and times the body-size check too; an exception that escapes the app
    counts as a 500."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics, clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")  # a mount adds its prefix to it, in place
        started = self.clock()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.observe_request(method=method, route=route_template(scope, root_path=root_path),
                                         status=status, seconds=self.clock() - started)
