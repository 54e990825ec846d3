"""The composition root for HTTP: create_app(settings) wires routers, the database and error mapping."""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from alerts import api as alerts_api
from alerts.rules import Rule, load_rules
from db import errors
from db.session import make_engine, make_sessionmaker
from geo import api as geo_api
from geo.errors import InvalidGeometry, ZoneFileError
from ingest import api as ingest_api
from tocsin import models_registry
from tocsin.settings import Settings

log = logging.getLogger(__name__)

# Domain errors -> HTTP status, in one place. Order matters: first match wins.
ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
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

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge(seen)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge as exc:
            await self._refuse(send, exc.size)

    async def _refuse(self, send: Send, size: int) -> None:
        response = JSONResponse(
            status_code=413,
            content={"detail": f"request body of {size} bytes exceeds the limit of {self.max_bytes} bytes"},
        )
        await response({"type": "http"}, _empty_receive, send)


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


async def _empty_receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


def create_app(settings: Settings, *, rules: Callable[[], list[Rule]] | None = None) -> FastAPI:
    """Build the API; the engine opens in the lifespan and closes with it."""
    models_registry.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
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
        loaded = load_rules(settings.rules_file)
        rules = lambda: loaded  # noqa: E731  (reload on SIGHUP arrives with the rules issue)
    app.state.rules = rules

    @app.exception_handler(errors.DomainError)
    async def domain_error(request: Request, exc: errors.DomainError) -> JSONResponse:
        code = status_for(exc)
        body: dict[str, object] = {"detail": exc.message}
        if "field" in exc.details:
            body["field"] = exc.details["field"]
        return JSONResponse(status_code=code, content=body,
                            headers={"WWW-Authenticate": "Bearer"} if code == 401 else None)

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
    app.include_router(geo_api.router)
    app.include_router(alerts_api.router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
