"""GET /metrics in the Prometheus text format."""

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from db.api import SessionDep
from dispatch import metrics

router = APIRouter(tags=["ops"])


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus_metrics(request: Request, session: SessionDep) -> PlainTextResponse:
    """Outbox pending/parked, SMS deliveries by status, fan-out counters, worker heartbeats."""
    text = metrics.render_prometheus(session, now=datetime.now(UTC),
                                     stall_s=request.app.state.settings.worker_stall_s)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
