"""The composition root for HTTP: create_app(settings) wires routers, the database and error mapping."""

import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from alerts import api as alerts_api
from alerts.reload import RulesProvider
from alerts.rules import Rule
from db import errors
from db.session import make_engine, make_sessionmaker
from geo import api as geo_api
from geo.errors import InvalidGeometry, ZoneFileError
from dispatch import api as dispatch_api
from dispatch import metrics_api, twilio_api
from ingest import api as ingest_api
from ingest import errors as ingest_errors
from ingest import open311_api
from ingest import posts_api, warmup
from ingest.ratelimit import KeyRateLimiter
from tocsin import live, models_registry, web_api
from tocsin.settings import Settings

log = logging.getLogger(__name__)

# Domain errors -> HTTP status, in one place. Order matters: first match wins.
ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (ingest_errors.PreconditionFailed, 412),
    (ingest_errors.RateLimited, 429),
    (InvalidGeometry, 422),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.InvalidInput, 422),
    (ZoneFileError, 400),
    (errors.DomainError, 400),
)


def status_for(exc: Exception) -> int:
    return next(code for cls, code in ERROR_STATUS if isinstance(exc, cls))


class BodySizeLimit:
    """Refuse bodies over the limit with 413 before reading them into memory."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, path_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = path_limits or {}  # larger limits for batch endpoints, by exact path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, int(declared), limit)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge(seen)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge as exc:
            await self._refuse(send, exc.size, limit)

    async def _refuse(self, send: Send, size: int, limit: int) -> None:
        response = JSONResponse(
            status_code=413,
            content={"detail": f"request body of {size} bytes exceeds the limit of {limit} bytes"},
        )
        await response({"type": "http"}, _empty_receive, send)


def _json_safe(value: object) -> object:
    """Replace what strict JSON cannot carry (NaN, Infinity) with its text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


async def _empty_receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


def create_app(settings: Settings, *, rules: Callable[[], list[Rule]] | None = None, warm: bool = False) -> FastAPI:
    """Build the API; the engine opens in the lifespan and closes with it. `warm`: build the post
    pipeline's caches in the background as it starts (ingest.warmup; `tocsin serve` does)."""
    models_registry.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # As many pooled connections as worker threads: none is opened and closed per request.
        to_thread.current_default_thread_limiter().total_tokens = settings.api_concurrency
        engine = make_engine(settings.database_url, pool_size=settings.api_concurrency)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        if getattr(app.state, "rules_provider", None) is not None:
            app.state.rules_provider.install_sighup()
        if warm and settings.warm_post_caches:
            warmup.start_warming(app.state.sessionmaker)
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(
        title="Tocsin",
        version="0.1.0",
        summary="Location-aware incident alerting for first responders",
        lifespan=lifespan,
    )
    app.state.settings = settings
    if rules is None:
        # Reloads when the file changes (and on SIGHUP: the lifespan installs it in the main thread).
        app.state.rules_provider = RulesProvider(settings.rules_file)
        rules = app.state.rules_provider.current
    app.state.rules = rules
    app.state.rate_limiter = KeyRateLimiter(per_min=settings.rate_limit_per_min)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, and a NaN or Infinity in it made that a 500.
        return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(exc.errors()))})

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

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(request: Request) -> JSONResponse:
        """The database answers."""
        try:
            with request.app.state.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # readiness reports, it does not raise
            return JSONResponse(status_code=503, content={"status": "unavailable", "database": str(exc)[:200]})
        return JSONResponse({"status": "ok"})

    app.include_router(ingest_api.router)
    app.include_router(posts_api.router)
    app.include_router(open311_api.router)
    app.include_router(geo_api.router)
    app.include_router(alerts_api.router)
    app.include_router(dispatch_api.router)
    app.include_router(twilio_api.router)
    app.include_router(metrics_api.router)
    web_api.install(app)  # the live map: `/`, /static, /v1/observations
    live.install(app, dsn=settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,
                       path_limits={posts_api.BATCH_PATH: settings.posts_batch_max_bytes})
    return app


def app_from_environment() -> FastAPI:
    """The app built from TOCSIN_* settings: the factory `tocsin serve --workers N` gives each process."""
    return create_app(Settings(), warm=True)
