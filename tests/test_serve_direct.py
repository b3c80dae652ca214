"""`/v1/search` on the direct path (`shortlist.serve.direct`) against the routed path.

The same requests go to a real uvicorn server twice: as served (a valid request is
answered on the direct path) and with the direct path switched off (FastAPI's route
answers everything). Status, body (timing values aside) and the API's headers must be
the same, for answers and for every kind of error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi", reason="fastapi not installed: pip install -e '.[serve]'")

from serve_fakes import make_index, running
from shortlist.rerank.base import Candidate
from shortlist.rerank.bi_encoder import BiEncoderReranker
from shortlist.serve.app import ServeConfig, create_app
from shortlist.serve.direct import DirectRoute, bearer_token
from shortlist.store.index import Index
from shortlist.types import Ranking

CONFIG = ServeConfig(max_documents=20, max_top_n=10)
API_HEADERS = ("content-type", "x-shortlist-model", "x-shortlist-warning", "retry-after")


class Broken:
    """A reranker with a bug: every call raises a plain exception (an internal error)."""

    name = "broken"

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        raise RuntimeError("bug in a reranker")


REQUESTS: list[Any] = [
    {"query": "big cat garden", "k": 4, "top_n": 2, "mode": "bm25"},
    {"query": "big cat garden", "k": 5, "top_n": 3},
    {"query": "cat", "k": 3, "top_n": 2, "rerank": False, "mode": "dense"},
    {"query": "cat", "k": 3, "filter": {"lang": "en"}},
    {"query": "cat", "top_n": 2, "priority": 1},  # unknown field: a warning header
    {"query": "cat", "rerank": "nope"},  # 404 raised by the endpoint
    {"query": "cat", "k": 50},  # over max_documents: raised by the endpoint
    {"query": "   "},  # blank query: raised by the endpoint
    {"query": "cat", "rerank": "broken"},  # a bug: 500
    {"query": "cat", "k": 0},  # invalid: FastAPI's 422
    {"k": 3},  # missing query: 422
    b"not json",  # 400
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    return make_index(tmp_path_factory.mktemp("direct") / "index")


@pytest.fixture(scope="module")
def url(index: Index) -> Iterator[str]:
    rerankers = {"bi": BiEncoderReranker("hashing:64"), "broken": Broken()}
    with running(create_app(CONFIG, rerankers, index)) as base:
        yield base


def post(base: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    if isinstance(body, bytes):
        headers = {"Content-Type": "application/json", **(headers or {})}
        return httpx.post(f"{base}/v1/search", content=body, headers=headers)
    return httpx.post(f"{base}/v1/search", json=body, headers=headers)


def seen(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    """What a client relies on: status, body without timing values, the API's headers."""
    body = response.json()
    if isinstance(body, dict) and "timings_ms" in body:
        body["timings_ms"] = sorted(body["timings_ms"])
    headers = {k: v for k, v in response.headers.items() if k in API_HEADERS}
    return response.status_code, body, headers


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records what the direct path did with each request: True when it answered."""
    calls: list[bool] = []
    real = DirectRoute.answer

    async def answer(self: DirectRoute, scope: Any, body: bytes, send: Any) -> bool:
        done = await real(self, scope, body, send)
        calls.append(done)
        return done

    monkeypatch.setattr(DirectRoute, "answer", answer)
    return calls


def test_direct_and_routed_paths_answer_alike(
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    answered: list[bool],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="shortlist.serve"):
        direct = [seen(post(url, body)) for body in REQUESTS]
    # Every request the body validates for is answered directly, errors included; the
    # three invalid bodies are left to the route.
    assert answered == [True] * 9 + [False] * 3
    assert "error answering /v1/search" in caplog.text  # the bug is logged, as routed

    async def declines(self: DirectRoute, scope: Any, body: bytes, send: Any) -> bool:
        return False

    monkeypatch.setattr(DirectRoute, "answer", declines)
    routed = [seen(post(url, body)) for body in REQUESTS]
    for body, one, other in zip(REQUESTS, direct, routed, strict=True):
        assert one == other, body
    statuses = [status for status, _, _ in direct]
    assert statuses == [200, 200, 200, 200, 200, 404, 422, 422, 500, 422, 422, 400]
    assert direct[0][2]["x-shortlist-model"] == "bi"
    assert "priority" in direct[4][2]["x-shortlist-warning"]


def test_api_key_is_checked_on_the_direct_path(index: Index, answered: list[bool]) -> None:
    app = create_app(ServeConfig(api_key="s3cret"), {"bi": BiEncoderReranker("hashing:64")}, index)
    body = {"query": "big cat garden", "k": 4, "top_n": 2}
    with running(app) as base:
        ok = post(base, body, {"Authorization": "Bearer s3cret"})
        scheme = post(base, body, {"Authorization": "bearer s3cret"})
        missing = post(base, body)
        wrong = post(base, body, {"Authorization": "Bearer nope"})
        basic = post(base, body, {"Authorization": "Basic s3cret"})
    assert ok.status_code == 200 and len(ok.json()["results"]) == 2
    assert scheme.status_code == 200
    # A request without the right key is never answered directly: the route says why.
    assert answered == [True, True, False, False, False]
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401
        assert "API key" in refused.json()["message"]


def test_bearer_token_reads_the_header_as_http_bearer_does() -> None:
    def scope(value: bytes | None) -> dict[str, Any]:
        return {"headers": [(b"authorization", value)] if value is not None else []}

    assert bearer_token(scope(b"Bearer abc")) == "abc"
    assert bearer_token(scope(b"BEARER abc")) == "abc"
    assert bearer_token(scope(b"Bearer  abc ")) == "abc"  # HTTPBearer strips the token too
    assert bearer_token(scope(b"Basic abc")) is None
    assert bearer_token(scope(b"Bearer")) is None
    assert bearer_token(scope(None)) is None
