"""HTTP route for connectors and partners: `POST /v1/posts:batch` (JSON array or NDJSON)."""

import threading
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from accounts.api import current_partner
from db.api import SessionDep
from db.errors import InvalidInput
from db.openapi import error_responses
from accounts import keys
from ingest.posts import pipeline, parse as posts
from ingest.posts.classify import Lexicon, load_lexicon

BATCH_PATH = "/v1/posts:batch"
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"})
router = APIRouter(prefix="/v1", tags=["posts"])
_lexicon_lock = threading.Lock()


async def _raw_body(request: Request) -> bytes:
    return await request.body()


def _lexicon(request: Request) -> Lexicon:
    state = request.app.state
    with _lexicon_lock:
        if getattr(state, "lexicon", None) is None:
            state.lexicon = load_lexicon()
        return state.lexicon


_EXAMPLE = [posts.PostIn.model_config["json_schema_extra"]["examples"][0]]  # type: ignore[index]


def _inlined(schema: Any, defs: dict[str, Any] | None = None) -> Any:
    """A model's JSON schema with its $defs substituted in place: no route takes PostIn as a FastAPI body,
    so a $ref to #/components/schemas/PostIn pointed nowhere (and generators could not build a batch)."""
    if defs is None and isinstance(schema, dict):
        defs = schema.get("$defs", {})
        schema = {k: v for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inlined(v, defs) for v in schema]
    return schema


_POST_SCHEMA = _inlined(posts.PostIn.model_json_schema())


@router.post(
    "/posts:batch",
    response_model=posts.BatchOut,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "array", "maxItems": posts.MAX_BATCH,
                                        "items": _POST_SCHEMA}, "example": _EXAMPLE},
        # One JSON object per line: the schema describes the lines as an array of posts.
        "application/x-ndjson": {"schema": {"type": "array", "maxItems": posts.MAX_BATCH,
                                            "items": _POST_SCHEMA},
                                 "example": "{\"source\": \"bluesky\", \"external_id\": \"...\", ...}\n"}}}},
    responses=error_responses(
        400, 401, 403, 413, 422, 429, 503, _401="Missing or invalid API key", _403="The key is not a partner key",
        _413="Body over TOCSIN_POSTS_BATCH_MAX_BYTES",
        _422="The body is not a JSON array (or not JSON), has more than 10,000 posts, or an unsupported Content-Type"),
)
def posts_batch(
    request: Request,
    session: SessionDep,
    caller: Annotated[keys.Caller, Depends(current_partner)],
    body: Annotated[bytes, Depends(_raw_body)],
) -> posts.BatchOut:
    """Submit up to 10,000 public posts; each item gets its own result, a bad item never sinks the batch."""
    # Read here, not as a Header parameter: the requestBody's media types document it (no duplicate parameter).
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media not in NDJSON_TYPES and media not in ("application/json", ""):
        raise InvalidInput(f"Content-Type {media!r} is not application/json or application/x-ndjson",
                           field="Content-Type")
    items = posts.parse_items(posts.split_body(body, ndjson=media in NDJSON_TYPES))
    valid = [p for p in items if isinstance(p, posts.PostIn)]
    state = request.app.state
    done = pipeline.ingest_posts(
        session, posts=valid, index=state.posts.gazetteer.get(session), lexicon=_lexicon(request),
        rules=state.rules(), config=pipeline.PipelineConfig.from_settings(state.settings), state=state.posts,
        now=datetime.now(UTC))
    session.commit()
    results: list[posts.ItemResultOut] = []
    done_iter = iter(done)
    for i, item in enumerate(items):
        if isinstance(item, posts.Rejected):
            results.append(posts.ItemResultOut(index=i, status="rejected", error=item.error))
        else:
            r = next(done_iter)
            results.append(posts.ItemResultOut(index=i, status=r.status, id=r.id, error=r.error,
                                               duplicate_of=r.duplicate_of, category=r.category, located=r.located,
                                               late=r.late))
    counts = {s: sum(1 for r in results if r.status == s) for s in ("created", "duplicate", "rejected")}
    return posts.BatchOut(**counts, results=results)
