"""schemathesis against /api/v1/openapi.json: every operation, as every role, a bounded number of
generated requests each, on SQLite and PostgreSQL — no 5xx, and no answer that breaks the documented
schema (issue 11)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import DEMO_PASSWORD

EXAMPLES = 25
ROLES = ("admin", "clerk", "samr", "supervisor")


def _tokens(app) -> dict[str, str]:
    client = app.test_client()
    return {u: client.post("/api/v1/auth/token", json={"username": u, "password": DEMO_PASSWORD}).get_json()["token"]
            for u in ROLES}


def test_no_server_error_and_no_answer_off_the_schema(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    tokens = _tokens(app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def each(case):
            for token in tokens.values():  # every generated request, as each role
                case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                                       checks=[not_a_server_error, response_schema_conformance])

        each()
