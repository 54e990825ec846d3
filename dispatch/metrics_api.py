"""GET /metrics in the Prometheus text format."""

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from db.api import SessionDep
from dispatch import metrics

router = APIRouter(tags=["ops"])


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus_metrics(session: SessionDep) -> PlainTextResponse:
    """Outbox pending/parked, SMS deliveries by status, fan-out counters."""
    return PlainTextResponse(metrics.render_prometheus(session), media_type="text/plain; version=0.0.4")
