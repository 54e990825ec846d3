"""Operators' feedback on evidence, and the labelled posts it gives the classifier's development set."""

import enum
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from accounts.agencies import EVERYTHING, Coverage
from db.errors import InvalidInput, NotFound
from ingest import observations as obs_service
from ingest.posts.classify import CATEGORIES, NONE
from ingest.models import Observation, ObservationFeedback

MAX_LIMIT = 1_000


class FeedbackKind(enum.StrEnum):
    NOT_INCIDENT = "not_incident"
    WRONG_CATEGORY = "wrong_category"
    WRONG_PLACE = "wrong_place"


def record(session: Session, *, observation_id: int, kind: FeedbackKind | str, category: str | None,
           note: str | None, actor: str, now: datetime, coverage: Coverage = EVERYTHING) -> ObservationFeedback:
    """Store one mark; "wrong category" needs the right category (one of the classifier's), the others take none."""
    try:
        kind = FeedbackKind(kind)
    except ValueError:
        raise InvalidInput(f"kind {kind!r} is not one of {[k.value for k in FeedbackKind]}", field="kind") from None
    if kind is FeedbackKind.WRONG_CATEGORY:
        if not category:
            raise InvalidInput("kind 'wrong_category' needs the right category in 'category', "
                               f"one of {list(CATEGORIES)}", field="category")
        if category not in CATEGORIES:
            raise InvalidInput(f"category {category!r} is not one of {list(CATEGORIES)} "
                               "(for a post that is no incident at all, use kind 'not_incident')", field="category")
    elif category is not None:
        raise InvalidInput(f"category {category!r} is only for kind 'wrong_category', not {kind.value!r}",
                           field="category")
    if session.get(Observation, observation_id) is None or not _visible(session, observation_id, coverage):
        raise NotFound(f"observation {observation_id} does not exist")
    row = ObservationFeedback(observation_id=observation_id, kind=kind.value, category=category, note=note,
                              actor=actor, created_at=now)
    session.add(row)
    session.flush()
    return row


def list_feedback(session: Session, *, observation_ids: Sequence[int] | None = None, kind: str | None = None,
                  actor: str | None = None, since: datetime | None = None,
                  limit: int = 100, coverage: Coverage = EVERYTHING) -> list[ObservationFeedback]:
    """Feedback, newest first, filtered by observations, kind, operator (actor) and created_at >= since, on the
    observations `coverage` lets the caller see."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit {limit} is not between 1 and {MAX_LIMIT}", field="limit")
    if since is not None and since.tzinfo is None:
        raise InvalidInput(f"since {since.isoformat()} has no timezone offset; add Z or +00:00", field="since")
    query = select(ObservationFeedback)
    if observation_ids is not None:
        query = query.where(ObservationFeedback.observation_id.in_(list(observation_ids)))
    if kind is not None:
        query = query.where(ObservationFeedback.kind == kind)
    if actor is not None:
        query = query.where(ObservationFeedback.actor == actor)
    if since is not None:
        query = query.where(ObservationFeedback.created_at >= since)
    if not coverage.everything:
        visible, params = obs_service.coverage_filter(coverage)
        query = query.where(text(f"EXISTS (SELECT 1 FROM observations o WHERE o.id = observation_feedback.observation_id "
                                 f"AND {visible})").bindparams(**params))
    query = query.order_by(ObservationFeedback.created_at.desc(), ObservationFeedback.id.desc()).limit(limit)
    return list(session.scalars(query))


def _visible(session: Session, observation_id: int, coverage: Coverage) -> bool:
    if coverage.everything:
        return True
    visible, params = obs_service.coverage_filter(coverage)
    return session.execute(text(f"SELECT 1 FROM observations o WHERE o.id = :id AND {visible}"),
                           {"id": observation_id, **params}).first() is not None


# The latest category mark on each post with text wins (an operator may correct another); "wrong place"
# says nothing about the category, so it gives no label.
_LABELLED = """
    SELECT DISTINCT ON (f.observation_id) o.text, f.kind, f.category, o.raw->>'lang' AS lang
    FROM observation_feedback f JOIN observations o ON o.id = f.observation_id
    WHERE f.kind IN ('not_incident', 'wrong_category') AND o.source = 'post' AND o.text IS NOT NULL
    ORDER BY f.observation_id, f.created_at DESC, f.id DESC
"""


def labelled_posts(session: Session, *, default_lang: str = "en") -> Iterator[dict[str, Any]]:
    """{"text", "category", "lang"} per marked post, as in tests/data/classify_dev.jsonl: "not an incident"
    is category "none", "wrong category" the category the operator gave."""
    for post_text, kind, category, lang in session.execute(text(_LABELLED)):
        yield {"text": post_text, "category": NONE if kind == FeedbackKind.NOT_INCIDENT else category,
               "lang": lang or default_lang}
