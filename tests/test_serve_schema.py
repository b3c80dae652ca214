"""Schemathesis against a real server: every check schemathesis has (`--checks all`),
positive and negative cases, on the rerank and search routes with the served model names.

The server runs a tiny random-weight cross-encoder (a real tokenizer and model, so text
that breaks tokenizers is exercised) and a real BM25 index. Examples are bounded so the
default suite stays fast; the `slow` variant runs many more.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("schemathesis")
pytest.importorskip("torch")

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from models import build_tiny_cross_encoder, corpus
from serve_fakes import running
from shortlist.serve.app import ServeConfig, create_app

OPERATIONS = [
    ("POST", "/v1/rerank"),
    ("POST", "/v2/rerank"),
    ("POST", "/rerank"),
    ("POST", "/v1/search"),
    ("GET", "/info"),
    ("GET", "/health"),
    ("GET", "/ready"),
]
FUZZED = [op for op in OPERATIONS if op[0] == "POST"]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def all_checks() -> list[Any]:
    """What `schemathesis run --checks all` runs."""
    load_all_checks()
    return list(CHECKS.get_all())


@dataclass
class Tally:
    cases: int = 0
    ok: int = 0  # answered 2xx
    failures: list[str] = field(default_factory=list)

    def line(self, method: str, path: str, mode: GenerationMode) -> str:
        return (
            f"\nschemathesis {method} {path} {mode.value}: {self.cases} cases "
            f"({self.ok} answered 2xx), {len(self.failures)} failures"
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    from shortlist.rerank.cross_encoder import CrossEncoderReranker
    from shortlist.store.index import Index
    from shortlist.types import Document

    root = tmp_path_factory.mktemp("schema")
    reranker = CrossEncoderReranker(
        str(build_tiny_cross_encoder(root / "ce", "bert")), max_length=48, name="tiny-ce"
    )
    docs = [
        Document(id=f"d{i}", text=t, metadata={"lang": "en" if i % 2 else "fr"})
        for i, t in enumerate(corpus(40))
    ]
    index = Index.create(root / "idx", docs, dense=False)
    config = ServeConfig(max_documents=20, max_top_n=20, max_request_bytes=2_000_000)
    with running(create_app(config, {"ce": reranker}, index)) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json"), url


def test_spec_lists_every_operation(served: tuple[Any, str]) -> None:
    schema, _ = served
    listed = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert listed == set(OPERATIONS)


def run_operation(
    schema: Any, method: str, path: str, mode: GenerationMode, examples: int
) -> Tally:
    """Drive the operation's strategy directly (schemathesis's pytest plugin does not run
    under pytest 9) and collect every check failure instead of stopping at the first."""
    operation = schema[path][method]
    checks = all_checks()
    tally = Tally()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    def check(case: Any) -> None:
        tally.cases += 1
        try:
            response = case.call_and_validate(checks=checks, timeout=30)
            tally.ok += 200 <= response.status_code < 300
        except (AssertionError, BaseExceptionGroup) as exc:  # check failures: keep, go on
            tally.failures.append(f"{type(exc).__name__}: {exc}"[:2000])

    check()
    return tally


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_operation_passes_all_checks(
    served: tuple[Any, str], method: str, path: str, mode: GenerationMode
) -> None:
    schema, _ = served
    if method == "GET" and mode is GenerationMode.NEGATIVE:
        pytest.skip("no parameters to make invalid")
    tally = run_operation(schema, method, path, mode, 20 if method == "POST" else 2)
    print(tally.line(method, path, mode))
    assert tally.cases > 0
    if mode is GenerationMode.POSITIVE:
        assert tally.ok > 0, "no generated request got through (e.g. unknown model names)"
    assert not tally.failures, "\n\n".join(tally.failures[:3])


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize(("method", "path"), FUZZED)
def test_operation_passes_all_checks_many_examples(
    served: tuple[Any, str], method: str, path: str, mode: GenerationMode
) -> None:
    schema, _ = served
    tally = run_operation(schema, method, path, mode, 300)
    print(tally.line(method, path, mode))
    assert not tally.failures, "\n\n".join(tally.failures[:3])


def test_served_names_reach_v2_rerank(served: tuple[Any, str]) -> None:
    """The spec's model enum holds the served names, so generated v2 requests get 200."""
    import httpx

    schema, url = served
    names = schema.raw_schema["components"]["schemas"]["CohereV2RerankRequest"]["properties"][
        "model"
    ]["enum"]
    assert names == ["default", "ce", "tiny-ce"]
    for name in names:
        r = httpx.post(
            f"{url}/v2/rerank",
            json={"model": name, "query": "cat", "documents": ["a cat", "river"]},
            timeout=30,
        )
        assert r.status_code == 200, r.text
