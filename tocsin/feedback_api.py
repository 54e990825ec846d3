"""Operators' feedback on evidence: POST and GET /v1/observations/{id}/feedback, GET /v1/feedback."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from accounts.api import ActingDep, OperatorDep
from db.api import SessionDep
from db.input_guard import INT8_MAX
from db.openapi import error_responses
from ingest.posts import feedback as feedback_service
from ingest import observations as obs_service
from ingest.reports.schemas import FeedbackCreate, FeedbackKindName, FeedbackRead

router = APIRouter(prefix="/v1", tags=["evidence feedback"])
ObservationId = Annotated[int, Path(ge=1, le=INT8_MAX, description="Observation id")]


def _read(row) -> FeedbackRead:
    return FeedbackRead.model_validate(row, from_attributes=True)


@router.post("/observations/{observation_id}/feedback", status_code=status.HTTP_201_CREATED,
             response_model=FeedbackRead,
             responses=error_responses(401, 403, 404, 422, _404="No such observation",
                                       _422="Unknown kind, or wrong_category without a known category (or a "
                                            "category with another kind); the message names it"))
def add_feedback(observation_id: ObservationId, body: FeedbackCreate, response: Response, session: SessionDep,
                 identity: ActingDep) -> FeedbackRead:
    """Mark a piece of evidence "not an incident", "wrong category" (give the right `category`) or "wrong place"
    (role operator or admin). Stored with the operator and the time; the classifier's development set takes the
    category marks (`tocsin classifier feedback-export`)."""
    row = feedback_service.record(session, observation_id=observation_id, kind=body.kind, category=body.category,
                                  note=body.note, actor=identity.actor, now=datetime.now(UTC),
                                  coverage=identity.coverage)
    session.commit()
    response.headers["Location"] = f"/v1/observations/{observation_id}/feedback"
    return _read(row)


@router.get("/observations/{observation_id}/feedback", response_model=list[FeedbackRead],
            responses=error_responses(401, 422))
def observation_feedback(observation_id: ObservationId, session: SessionDep,
                         identity: OperatorDep) -> list[FeedbackRead]:
    """The marks on one observation, newest first (viewer role or above)."""
    rows = feedback_service.list_feedback(session, observation_ids=[observation_id],
                                          limit=feedback_service.MAX_LIMIT, coverage=identity.coverage)
    return [_read(r) for r in rows]


@router.get("/feedback", response_model=list[FeedbackRead], responses=error_responses(401, 422))
def list_feedback(
    session: SessionDep,
    identity: OperatorDep,
    observation_ids: Annotated[str | None, Query(description="Comma-separated observation ids (an alert's evidence)",
                                                 max_length=10_000, pattern=r"^[0-9,\s]*$")] = None,
    kind: Annotated[FeedbackKindName | None, Query()] = None,
    actor: Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$",
                                       description="Who marked it, e.g. operator:olive")] = None,
    since: Annotated[datetime | None, Query(description="Marked at or after (ISO 8601 with offset)")] = None,
    limit: Annotated[int, Query(ge=1, le=feedback_service.MAX_LIMIT)] = 100,
) -> list[FeedbackRead]:
    """Feedback on evidence, newest first (viewer role or above)."""
    ids = obs_service.parse_ids(observation_ids) if observation_ids else None
    if ids and max(ids) > INT8_MAX:
        ids = [i for i in ids if i <= INT8_MAX]  # no such observation: nothing to find for it
    rows = feedback_service.list_feedback(session, observation_ids=ids, kind=kind, actor=actor, since=since,
                                          limit=limit, coverage=identity.coverage)
    return [_read(r) for r in rows]
