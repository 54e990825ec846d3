"""GET /metrics in the Prometheus text format (or OpenMetrics, when the scraper asks for it)."""

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import choose_encoder

from db.api import SessionDep
from dispatch import metrics

router = APIRouter(tags=["ops"])


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"}})
def prometheus_metrics(request: Request, session: SessionDep) -> Response:
    """What the database says at this scrape (outbox pending/parked, SMS deliveries by status, fan-out counters,
    worker heartbeats), then this API process's own registry (request durations by route, report commit
    latency, group commits; labelled with its pid: each API worker process counts its own)."""
    scrape = metrics.Scrape(
        metrics.DatabaseCollector(session, now=datetime.now(UTC), stall_s=request.app.state.settings.worker_stall_s),
        request.app.state.metrics.registry,
    )
    encoder, content_type = choose_encoder(request.headers.get("accept"))
    return Response(encoder(scrape), media_type=content_type)
