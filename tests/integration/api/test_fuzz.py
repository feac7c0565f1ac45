"""Schemathesis against the app's own OpenAPI (bounded): no input produces a 5xx.

The pytest plugin's `from_fixture` does not work with this pytest, so the test drives each
operation's hypothesis strategy itself (same generator, same schema, bounded examples).
The abuse cases the generator cannot express (huge and many headers, slow and idle clients, a
flood of made-up keys, clients leaving mid-body) are bounded tests in test_abuse.py.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

pytestmark = pytest.mark.postgres

EXAMPLES_PER_OPERATION = 30


def run_operation(op, statuses: dict[int, int], key: str, mode: GenerationMode) -> None:
    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(headers={"X-API-Key": key}, timeout=10)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (case.method, case.path, case.body, response.text)
        if response.status_code >= 400:
            assert "Traceback" not in response.text and "asyncpg" not in response.text

    check()


def test_no_server_errors(api):
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{api.port}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/ingest",
        "/ingest_batch",
        "/ingest/tick",
        "/candles",
        "/metrics",
    }
    seen: dict[str, dict[int, int]] = {}
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for op in operations:
            name = f"{mode.value} {op.method.upper()} {op.path}"
            run_operation(op, seen.setdefault(name, {}), api.keys.admin, mode)
    print("fuzz statuses per operation:", seen)
    # The documented bodies let the generator reach the storage path, not only validation.
    assert seen["positive POST /ingest"].get(200, 0) > 0
    assert seen["positive POST /ingest/tick"].get(200, 0) > 0
    assert seen["positive GET /candles"].get(200, 0) > 0
