"""GET /metrics in the Prometheus text format."""

import os
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from db.api import SessionDep
from dispatch import metrics

router = APIRouter(tags=["ops"])


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus_metrics(request: Request, session: SessionDep) -> PlainTextResponse:
    """Outbox pending/parked, SMS deliveries by status, fan-out counters, worker heartbeats, and this API
    process's group commits of reports (labelled with its pid: each API worker process counts its own)."""
    text = metrics.render_prometheus(session, now=datetime.now(UTC),
                                     stall_s=request.app.state.settings.worker_stall_s)
    writer = getattr(request.app.state, "report_writer", None)
    if writer is not None:
        text += metrics.writer_lines(batches=writer.batches, reports=writer.reports, pid=os.getpid())
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
