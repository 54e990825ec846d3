"""Drive every operation of the app's own OpenAPI document with schemathesis, with the right credentials.

Shared by tests/integration/test_api_schemathesis.py (about 1,100 cases) and bench/schemathesis (more).
Each operation gets the credential its `security` names: a utility key, a partner key, an admin operator
token; Twilio webhooks get none (a valid X-Twilio-Signature cannot be generated): they must answer 403,
never 5xx. Failures are collected, not raised, so one run reports every problem at once.
"""

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance, not_a_server_error, response_schema_conformance, status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class Credentials:
    utility_key: str
    partner_key: str
    operator_token: str

    def headers_for(self, security: Iterable[dict]) -> dict[str, str]:
        names = {name for requirement in security for name in requirement}
        if "utilityKey" in names or "open311ApiKey" in names:
            return {"Authorization": f"Bearer {self.utility_key}"}
        if "partnerKey" in names:
            return {"Authorization": f"Bearer {self.partner_key}"}
        if "operatorToken" in names:
            return {"Authorization": f"Bearer {self.operator_token}"}
        return {}


@dataclass
class FuzzResult:
    cases: int = 0
    statuses: Counter = field(default_factory=Counter)  # (method path, status) -> count
    failures: list[str] = field(default_factory=list)   # "METHOD path: check failure" (deduplicated)
    samples: dict = field(default_factory=dict)         # (method path, status) -> the first answer's text

    @property
    def server_errors(self) -> int:
        return sum(n for (_, code), n in self.statuses.items() if code >= 500)


def seed_credentials(sessionmaker) -> Credentials:
    """A utility, a partner and an admin operator, and a few responders so generated ids find something."""
    from accounts import operators
    from db.session import transaction
    from dispatch import responders
    from accounts import keys

    now = datetime.now(UTC)
    with transaction(sessionmaker) as session:
        utility = keys.add_utility(session, name=f"Fuzz Power {now.timestamp()}")
        utility_key = keys.issue_key(session, role="utility", utility_id=utility.id)
        partner_key = keys.issue_key(session, role="partner", label="fuzz partner")
        _, token = operators.add_operator(session, name=f"fuzz-admin-{int(now.timestamp() * 1e6)}", role="admin",
                                          now=now)
        for i in range(3):
            responders.create_responder(session, name=f"Fuzz {i}", phone=f"+1212555{i:04d}", coverage=[], now=now)
    return Credentials(utility_key=utility_key, partner_key=partner_key, operator_token=token)


def _runner(op, mode: GenerationMode, n: int, headers: dict[str, str], result: FuzzResult) -> Callable[[], None]:
    label = f"{op.method.upper()} {op.path}"

    @given(case=op.as_strategy(generation_mode=mode))
    @hypothesis_settings(max_examples=n, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call(headers=headers)
        result.cases += 1
        result.statuses[(label, response.status_code)] += 1
        result.samples.setdefault((label, response.status_code), response.text[:300])
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, FailureGroup) as exc:  # check failures (FailureGroup is a BaseException): record them
            text = f"{label} -> {response.status_code}: {' '.join(str(exc).split())[:400]}"
            if text not in result.failures:
                result.failures.append(text)

    return run


def fuzz(app, credentials: Credentials, *, positive: int, negative: int,
         include: Callable[[str, str], bool] = lambda method, path: True) -> FuzzResult:
    """Run `positive` + `negative` generated cases per operation (the caller runs `app`'s lifespan, e.g.
    inside a TestClient)."""
    import schemathesis

    @schemathesis.serializer("application/x-ndjson")
    def _ndjson(ctx, value) -> bytes:  # a generated array of posts as one JSON document per line
        items = value if isinstance(value, list) else [value]
        return "".join(json.dumps(item) + "\n" for item in items).encode()

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    result = FuzzResult()
    for op in (r.ok() for r in schema.get_all_operations()):
        method, path = op.method.upper(), op.path
        if not include(method, path):
            continue
        headers = credentials.headers_for(op.definition.raw.get("security", []))
        for mode, n in ((GenerationMode.POSITIVE, positive), (GenerationMode.NEGATIVE, negative)):
            if n <= 0:
                continue
            try:
                _runner(op, mode, n, headers, result)()
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    result.failures.append(f"{method} {path}: no valid request can be generated")
                # else: nothing about this operation can be made invalid (no parameters, no body)
            except Exception as exc:  # generation itself failed: a finding too
                result.failures.append(f"{method} {path} ({mode.value}): cannot generate: "
                                       f"{type(exc).__name__}: {exc}"[:400])
    return result
