"""API fuzzing with schemathesis against the app's own ``/openapi.json``.

Every operation in the spec is exercised in-process (WSGI, real database commits) once
per caller: anonymous, and a bearer token for each role. Each (operation, caller) pair
gets schema-valid (positive) and schema-violating (negative) inputs, and every response
goes through the full default set of schemathesis checks: no 5xx, status codes, content
types, headers and bodies conform to the spec, invalid input is rejected, valid input is
not rejected as invalid.

The operations are read from the spec at collection time, so a new endpoint is fuzzed
without touching this file. The number of examples is bounded so the module stays well
under a minute; ``FUZZ_MAX_EXAMPLES=500`` fuzzes harder locally.

schemathesis' own ``pytest.from_fixture`` integration does not work with pytest 9.2
(it writes ``Node._nodeid``, which pytest no longer has), hence the explicit
``@given`` over ``APIOperation.as_strategy``.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.quality.helpers import role_headers, spec_operations

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "12"))
CALLERS = [None, "verifier", "regulator", "card_authority"]


OPERATIONS = [(method, path) for method, path, _secured in spec_operations()]


@pytest.mark.parametrize("caller", CALLERS, ids=lambda role: role or "anonymous")
@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_to_its_spec(app, method, path, caller):
    headers = role_headers(app, caller)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operation = schema[path][method]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        case.call_and_validate(headers=headers)

    run()
