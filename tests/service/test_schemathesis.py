"""Property-based fuzzing of every operation in the OpenAPI spec against the real server.

Schemathesis generates requests that fit the spec and requests that break it from
/openapi.json; whatever it sends, the service must never answer 5xx, and every answer must
have a documented status, content type and schema.
"""

from __future__ import annotations

import functools

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@functools.cache
def cases(base: str, path: str, include: bool):
    """Requests that fit the spec and requests that break it, for `path` or for every other path."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    schema = schema.include(path=path) if include else schema.exclude(path=path)
    return st.one_of(schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE))


def check(server, data, path: str, include: bool) -> None:
    case = data.draw(cases(server.base, path, include))
    case.call_and_validate(base_url=server.base, checks=CHECKS)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_recommend_request_gets_a_server_error(default_server, data):
    check(default_server, data, "/recommend", include=True)


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_other_request_gets_a_server_error(default_server, data):
    check(default_server, data, "/recommend", include=False)
