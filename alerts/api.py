"""HTTP routes for the control room's view of alerts."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from alerts import service as alert_service
from db.api import SessionDep

router = APIRouter(prefix="/v1", tags=["alerts"])


@router.get("/alerts")
def list_alerts(
    session: SessionDep,
    state: Annotated[Literal["open", "acknowledged", "resolved"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Alerts, newest first."""
    return alert_service.list_alerts(session, state=state, limit=limit)
