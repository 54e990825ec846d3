"""The composition root for HTTP: create_app(settings) wires routers, the database and error mapping."""

import logging
import math
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import cache, partial

import psycopg
from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from alerts import api as alerts_api
from alerts.reload import RulesProvider
from alerts.rules import Rule
from db import errors, heartbeats
from db.input_guard import MalformedBody, check_json_body
from db.openapi import error_responses
from db.outage import is_unavailable
from db.session import libpq_dsn, make_engine, make_sessionmaker
from dispatch.routing import DEFAULT_TIMEZONE
from geo import api as geo_api
from geo import places
from geo.errors import InvalidGeometry, ZoneFileError
from dispatch import api as dispatch_api
from dispatch import broker_check, metrics_api, twilio_api
from ingest.reports import api as ingest_api
from accounts import errors as account_errors
from ingest import errors as ingest_errors
from ingest.reports import open311_api
from ingest.posts import api as posts_api, warmup
from ingest.posts.state import PostState
from accounts.ratelimit import KeyRateLimiter
from accounts.key_cache import KeyCache
from ingest.reports.writer import ReportWriter, WriterStopped
from tocsin import feedback_api, heap, http_metrics, live, models_registry, web_api
from tocsin.settings import Settings

log = logging.getLogger(__name__)

# Domain errors -> HTTP status, in one place. Order matters: first match wins.
ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (ingest_errors.PreconditionFailed, 412),
    (account_errors.RateLimited, 429),
    (InvalidGeometry, 422),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.InvalidInput, 422),
    (ZoneFileError, 400),
    (errors.DomainError, 400),
)


GIL_SWITCH_S = 0.0005  # see the lifespan
# While PostgreSQL is down (a restart takes seconds) every endpoint answers 503 with this Retry-After.
DB_RETRY_AFTER_S = 5
# What the API maps to 503: the driver's and SQLAlchemy's connection errors, and the pool's timeout.
# DBAPIError itself only when SQLAlchemy saw the connection drop (connection_invalidated); other
# database errors (bad data) keep their own handlers, which are more specific classes.
DB_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, sa_exc.DBAPIError,
    psycopg.OperationalError, psycopg.InterfaceError,
)


def _unavailable_cause(exc: Exception) -> str:
    """The kind of failure, without the server's address or the driver's detail (those go to the log)."""
    inner = getattr(exc, "orig", None) or exc
    if isinstance(exc, sa_exc.TimeoutError):
        return "no free database connection (pool timeout)"
    return f"{type(inner).__name__}"


async def database_unavailable(request: Request | WebSocket, exc: Exception) -> JSONResponse | None:
    if not is_unavailable(exc):
        raise exc  # a database error that is not an outage stays what it was
    now = time.monotonic()
    state = request.app.state  # the app's, not a module global: one line per ten seconds of outage
    if now - getattr(state, "last_unavailable_log", float("-inf")) >= 10.0:
        state.last_unavailable_log = now
        log.warning("database unavailable (%s %s answered 503): %s", request.scope.get("method", "WEBSOCKET"),
                    request.url.path,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    detail = f"database unavailable: {_unavailable_cause(exc)}; retry later"
    if request.scope["type"] == "websocket":  # an HTTP response cannot go down an accepted websocket
        await request.close(code=1013, reason=detail[:120])  # 1013: Try Again Later
        return None
    return JSONResponse(status_code=503, headers={"Retry-After": str(DB_RETRY_AFTER_S)}, content={"detail": detail})


def status_for(exc: Exception) -> int:
    return next(code for cls, code in ERROR_STATUS if isinstance(exc, cls))


_JSON_MEDIA = frozenset({"application/json", ""})  # FastAPI parses a body without Content-Type as JSON
_NDJSON_MEDIA = posts_api.NDJSON_TYPES


class BodySizeLimit:
    """Read the body before the app does: 413 over the limit (declared or chunked), and 400 for a JSON
    body that is not UTF-8 or nests deeper than db.input_guard allows (checked before any parser recurses).

    The whole body is read here, not streamed: an error raised from inside the app's receive() surfaced
    as FastAPI's 400 "There was an error parsing the body" instead of 413."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, path_limits: dict[str, int] | None = None,
                 json_exempt_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = path_limits or {}  # larger limits for batch endpoints, by exact path
        self.json_exempt_prefixes = json_exempt_prefixes  # routes that check (and word) JSON errors themselves

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.path_limits.get(path, self.max_bytes)
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, 413, f"request body of {int(declared)} bytes exceeds the limit of {limit} bytes")
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await self._refuse(send, 413, f"request body of more than {limit} bytes (chunked) exceeds "
                                              f"the limit of {limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and not path.startswith(self.json_exempt_prefixes):
            media = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
            if media in _JSON_MEDIA or media.endswith("+json") or media in _NDJSON_MEDIA:
                try:
                    check_json_body(body, per_line=media in _NDJSON_MEDIA)
                except MalformedBody as exc:
                    await self._refuse(send, 400, exc.message)
                    return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: wait for the disconnect, as the server would
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, code: int, detail: str) -> None:
        response = JSONResponse(status_code=code, content={"detail": detail, "field": "body"})
        await response({"type": "http"}, _empty_receive, send)


def _json_safe(value: object) -> object:
    """Replace what strict JSON cannot carry (NaN, Infinity) with its text, and what UTF-8 cannot
    (lone surrogates echoed from the input) with its \\u escape."""
    if isinstance(value, str):
        return value if value.isascii() else value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_json_safe(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


async def _empty_receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


# The app's own answers for any request (BodySizeLimit), on every operation.
APP_RESPONSES = error_responses(400, 413)


@cache
def _api_routes() -> tuple[BaseRoute, ...]:
    """The API's routers, included once per process; every app it builds shares the inclusion.

    FastAPI builds an included route's handler and response models once per inclusion, on its first
    request. Included by each create_app, that was 40-60 ms of CPU for every app, and a test run builds
    some 320. The routers hold nothing of an app (a handler finds the app's state on the request), so one
    inclusion serves every app: the operations, paths and OpenAPI document are the same as when each app
    included them (tests/unit/test_app_routes.py). What such a shared inclusion lacks is the app's
    `dependency_overrides`, which Tocsin does not use."""
    api = APIRouter(responses=APP_RESPONSES)
    api.include_router(ingest_api.router)
    api.include_router(posts_api.router)
    api.include_router(open311_api.router)
    api.include_router(geo_api.router)
    api.include_router(alerts_api.router, responses=error_responses(503))
    api.include_router(dispatch_api.router)
    api.include_router(twilio_api.router, responses=error_responses(503))
    api.include_router(metrics_api.router)
    api.include_router(feedback_api.router, responses=error_responses(503))
    return tuple(api.routes)


def create_app(settings: Settings, *, rules: Callable[[], list[Rule]] | None = None, warm: bool = False) -> FastAPI:
    """Build the API; the engine opens in the lifespan and closes with it. `warm`: build the post
    pipeline's caches in the background as it starts (ingest.posts.warmup; `tocsin serve` does)."""
    models_registry.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # As many pooled connections as worker threads: none is opened and closed per request.
        to_thread.current_default_thread_limiter().total_tokens = settings.api_concurrency
        engine = make_engine(settings.database_url, pool_size=settings.api_concurrency)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        # The report writer's own connection (one thread, one at a time), opened with generic plans
        # (db.plans): its transactions need no statement to set them.
        writer_engine = make_engine(settings.database_url, pool_size=1, generic_plans=True)
        app.state.report_writer = ReportWriter(make_sessionmaker(writer_engine), rules=app.state.rules,
                                               observe_committed=app.state.metrics.observe_report_commit)
        app.state.report_writer.start()
        app.state.posts = PostState()  # the post pipeline's zones, gazetteer index and worker process
        # The report writer thread waits on PostgreSQL about ten times a batch, and each time takes the GIL
        # back from the event loop. At CPython's default switch interval (5 ms) those waits were most of
        # a batch: bench.reports gave 369 reports/s against 590 at 0.5 ms, side by side.
        switch_s = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_S)
        if getattr(app.state, "rules_provider", None) is not None:
            app.state.rules_provider.install_sighup()
        # What start-up built lives as long as the process: out of the collector's full passes (tocsin.heap).
        freeze = heap.freeze if settings.freeze_heap else None
        if freeze is not None:
            freeze()
        if warm and settings.warm_post_caches:
            warmup.start_warming(app.state.sessionmaker, app.state.posts, then=freeze)
        try:
            yield
        finally:
            await run_in_threadpool(app.state.report_writer.stop)
            await run_in_threadpool(app.state.posts.close)
            sys.setswitchinterval(switch_s)
            writer_engine.dispose()
            engine.dispose()

    app = FastAPI(
        title="Tocsin",
        version="0.1.0",
        summary="Location-aware incident alerting for first responders",
        lifespan=lifespan,
        responses=APP_RESPONSES,  # BodySizeLimit answers these for any request, before a route runs
        docs_url=None,  # served by tocsin.web_api from vendored assets: they work offline
        redoc_url=None,
    )
    app.state.settings = settings
    if rules is None:
        # Reloads when the file changes (and on SIGHUP: the lifespan installs it in the main thread).
        app.state.rules_provider = RulesProvider(settings.rules_file)
        rules = app.state.rules_provider.current
    app.state.rules = rules
    app.state.rate_limiter = KeyRateLimiter(per_min=settings.rate_limit_per_min)
    app.state.key_cache = KeyCache()  # POST /v1/reports' utility keys (its insert checks them again)
    # This app's own registry (not prometheus_client's global one: tests build several apps).
    app.state.metrics = http_metrics.ApiMetrics(writer=lambda: getattr(app.state, "report_writer", None))
    # Responders' schedules default to the active place's time zone (dispatch may not import geo).
    app.state.default_timezone = partial(places.active_timezone, default=DEFAULT_TIMEZONE)
    app.state.broker_check = broker_check.CachedBrokerCheck(broker_check.BrokerCheck.for_url(
        settings.mqtt_url, tls=settings.mqtt_tls, ca_file=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
        username=settings.mqtt_username,
        password=settings.mqtt_password.get_secret_value() if settings.mqtt_password else None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, and a NaN, Infinity or lone surrogate in it made that a 500.
        problems = exc.errors()
        first = problems[0] if problems else {}
        if first.get("type") == "json_invalid":  # FastAPI's json.loads failed: the body is not JSON at all
            position = first["loc"][-1]
            reason = (first.get("ctx") or {}).get("error", "JSON decode error")
            return JSONResponse(status_code=400, content={
                "detail": f"request body is not valid JSON: {reason} at position {position}", "field": "body"})
        body: dict[str, object] = {"detail": _json_safe(jsonable_encoder(problems))}
        if first.get("loc"):
            body["field"] = _json_safe(".".join(str(part) for part in first["loc"]))
        return JSONResponse(status_code=422, content=body)

    @app.exception_handler(errors.DomainError)
    async def domain_error(request: Request, exc: errors.DomainError) -> JSONResponse:
        code = status_for(exc)
        body: dict[str, object] = {"detail": exc.message}
        if "field" in exc.details:
            body["field"] = exc.details["field"]
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        if "retry_after_s" in exc.details:
            headers = {"Retry-After": str(exc.details["retry_after_s"])}
        return JSONResponse(status_code=code, content=body, headers=headers)

    for cls in DB_UNAVAILABLE_ERRORS:
        app.add_exception_handler(cls, database_unavailable)

    @app.exception_handler(WriterStopped)
    async def writer_stopped(request: Request, exc: WriterStopped) -> JSONResponse:
        return JSONResponse(status_code=503, headers={"Retry-After": str(DB_RETRY_AFTER_S)},
                            content={"detail": str(exc)})

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(request: Request) -> JSONResponse:
        """The database and the MQTT broker answer (else 503, naming what is down in "detail" and under
        "database" or "mqtt"), and each worker role's heartbeat: its age and whether it is stalled (older
        than TOCSIN_WORKER_STALL_S). The broker's answer (an MQTT CONNECT and CONNACK) is cached a few seconds.

        A stalled worker leaves this at 200 with "status": "degraded": readiness decides whether this API
        process gets traffic, and taking it out of rotation would not restart a worker, only refuse reports
        that the outbox keeps safely until the worker is back. Alert on the body or on /metrics."""
        problems: dict[str, str] = {}
        body: dict[str, object] = {}
        try:
            with request.app.state.sessionmaker() as session:
                roles = heartbeats.role_statuses(session, now=datetime.now(UTC), stall_s=settings.worker_stall_s)
        except Exception as exc:  # readiness reports, it does not raise
            problems["database"] = f"database unavailable: {str(exc).strip()[:200]}"
        else:
            stalled = sorted(role for role, status in roles.items() if status.stalled)
            # A role that beats but cannot work (its broker is down, it just crashed) degrades readiness too.
            degraded = stalled or any(status.state != "ok" for status in roles.values())
            body = {"status": "degraded" if degraded else "ok", "stalled": stalled,
                    "workers": {role: status.as_dict() for role, status in roles.items()}}
        if (mqtt := request.app.state.broker_check.problem()) is not None:
            problems["mqtt"] = mqtt
        if problems:
            return JSONResponse(status_code=503, headers={"Retry-After": str(DB_RETRY_AFTER_S)},
                                content={**body, "status": "unavailable", "detail": "; ".join(problems.values()),
                                         **problems})
        return JSONResponse(body)

    app.router.routes.extend(_api_routes())
    web_api.install(app)  # the live map: `/`, /static, /v1/observations
    live.install(app, dsn=libpq_dsn(settings.listen_url))  # LISTEN: direct, never through a transaction pooler
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,
                       path_limits={posts_api.BATCH_PATH: settings.posts_batch_max_bytes},
                       json_exempt_prefixes=(open311_api.PREFIX,))
    app.add_middleware(http_metrics.HttpMetrics, metrics=app.state.metrics)  # last: outermost, times the rest
    return app


def app_from_environment() -> FastAPI:
    """The app built from TOCSIN_* settings: the factory `tocsin serve --workers N` gives each process."""
    return create_app(Settings(), warm=True)
