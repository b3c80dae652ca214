"""Property-based checks against the served OpenAPI spec: no 5xx, responses conform."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("schemathesis")

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from serve_fakes import OverlapScorer, make_index, running
from shortlist.serve.app import ServeConfig, create_app

OPERATIONS = [
    ("POST", "/v1/rerank"),
    ("POST", "/v2/rerank"),
    ("POST", "/rerank"),
    ("POST", "/v1/search"),
    ("GET", "/health"),
    ("GET", "/ready"),
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def served_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    config = ServeConfig(max_documents=50, max_top_n=50, max_request_bytes=64_000)
    index = make_index(tmp_path_factory.mktemp("schema") / "index")
    app = create_app(config, {"overlap": OverlapScorer()}, index)
    with running(app) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")


def test_spec_lists_every_operation(served_schema: Any) -> None:
    listed = {(op.ok().method.upper(), op.ok().path) for op in served_schema.get_all_operations()}
    assert listed == set(OPERATIONS)


# schemathesis's own pytest integration (`from_fixture`) does not run under pytest 9, so
# the operation's hypothesis strategy is driven directly.
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_operation_conforms(served_schema: Any, method: str, path: str) -> None:
    operation = served_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=12 if method == "POST" else 2,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    def check(case: Any) -> None:
        case.call_and_validate(checks=CHECKS, timeout=30)

    check()
