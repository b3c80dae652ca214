"""Hosted rerankers against real local HTTP servers speaking each provider's format."""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from api_fakes import (
    OVERLAP_DOCS,
    OVERLAP_ORDER,
    OVERLAP_QUERY,
    FakeRerankServer,
    Scripted,
    overlap_score,
    tei_logit,
)
from shortlist.errors import (
    InvalidInputError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderTimeoutError,
)
from shortlist.rerank.api import (
    CohereReranker,
    CostEstimate,
    JinaReranker,
    TEIReranker,
    VoyageReranker,
    parse_retry_after,
)
from shortlist.rerank.api.base import ApiReranker, KeyedApiReranker, plan_batches
from shortlist.rerank.api.http import RetryPolicy
from shortlist.rerank.base import Reranker
from shortlist.types import Document, Hit

KEY = "test-key"
QUERY = OVERLAP_QUERY
DOCS = OVERLAP_DOCS
EXPECTED_ORDER = OVERLAP_ORDER
CASES = ["cohere", "cohere-v1", "voyage", "jina", "tei"]


def flavor_of(case: str) -> str:
    return case.split("-")[0]


class Sleeps(list[float]):
    """An injected `sleep` that records delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


_OPEN: list[ApiReranker] = []
_SHARED = httpx.Client()  # injected into most rerankers: one CA-bundle load per module


def teardown_module() -> None:
    _SHARED.close()


@pytest.fixture(autouse=True)
def _close_rerankers() -> Iterator[None]:
    """Close every reranker a test made, so no pooled connection outlives its test."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def make(case: str, url: str, sleeps: Sleeps | None = None, **kw: Any) -> ApiReranker:
    rr = _make(case, url, sleeps, **kw)
    _OPEN.append(rr)
    return rr


def _make(case: str, url: str, sleeps: Sleeps | None = None, **kw: Any) -> ApiReranker:
    common: dict[str, Any] = {"sleep": sleeps if sleeps is not None else Sleeps()}
    common["client"] = _SHARED
    common["rng"] = lambda: 0.5
    common.update(kw)
    if case == "tei":
        common.setdefault("api_key", KEY)
        return TEIReranker(url, **common)
    common.setdefault("api_key", KEY)
    common["base_url"] = url
    if case == "cohere":
        return CohereReranker("rerank-v3.5", **common)
    if case == "cohere-v1":
        return CohereReranker("rerank-english-v3.0", api_version="v1", **common)
    if case == "voyage":
        return VoyageReranker("rerank-2.5", **common)
    assert case == "jina"
    return JinaReranker("jina-reranker-v2-base-multilingual", **common)


def expected_raw(case: str, query: str, text: str) -> float:
    p = overlap_score(query, text)
    return 1.0 / (1.0 + math.exp(-tei_logit(p))) if case == "tei" else p


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(case: str) -> Iterator[FakeRerankServer]:
    with FakeRerankServer(flavor_of(case), api_key=KEY) as srv:
        yield srv


# -- the shared reranker contract -----------------------------------------------------


def test_ranks_by_provider_score_and_keeps_raw_scores(case: str, server: FakeRerankServer) -> None:
    rr = make(case, server.url)
    assert isinstance(rr, Reranker)
    ranking = rr.rerank(QUERY, DOCS)
    assert [h.index for h in ranking] == EXPECTED_ORDER
    assert [h.rank for h in ranking] == [1, 2, 3, 4, 5]
    for h in ranking:
        assert h.index is not None
        assert h.raw_score == pytest.approx(expected_raw(case, QUERY, DOCS[h.index]))
        assert h.calibrated_score == pytest.approx(h.raw_score)  # identity on [0, 1]
        assert h.score == h.calibrated_score
        assert h.text == DOCS[h.index] and h.id == str(h.index)
    assert len(server.requests) == 1


def test_top_n_and_larger_top_n(case: str, server: FakeRerankServer) -> None:
    rr = make(case, server.url)
    assert [h.index for h in rr.rerank(QUERY, DOCS, top_n=2)] == [1, 4]
    assert [h.index for h in rr.rerank(QUERY, DOCS, top_n=50)] == EXPECTED_ORDER
    with pytest.raises(InvalidInputError):
        rr.rerank(QUERY, DOCS, top_n=-1)


def test_empty_candidates_send_no_request(case: str, server: FakeRerankServer) -> None:
    ranking = make(case, server.url).rerank(QUERY, [])
    assert len(ranking) == 0 and ranking.query == QUERY
    assert server.requests == []


def test_ties_are_broken_by_input_position(case: str, server: FakeRerankServer) -> None:
    docs = ["pie", "nothing", "pie", "pie"]
    ranking = make(case, server.url).rerank("pie", docs)
    assert [h.index for h in ranking] == [0, 2, 3, 1]


def test_records_are_not_mutated_and_first_stage_is_kept(
    case: str, server: FakeRerankServer
) -> None:
    hits = [Hit(id=f"d{i}", score=10.0 - i, rank=i + 1, text=t) for i, t in enumerate(DOCS)]
    docs = [Document(id="a", text="apple pie", title="Red"), Document(id="b", text="bread")]
    hits_before, docs_before = list(hits), list(docs)
    ranking = make(case, server.url).rerank(QUERY, hits)
    assert hits == hits_before
    assert ranking[0].id == "d1" and ranking[0].first_stage_rank == 2
    assert ranking[0].first_stage_score == 9.0
    ranked_docs = make(case, server.url).rerank(QUERY, docs)
    assert docs == docs_before
    assert ranked_docs.ids == ["a", "b"]
    # a document's title is scored with its text
    assert ranked_docs[0].raw_score == pytest.approx(expected_raw(case, QUERY, "Red\napple pie"))


# -- exact wire formats ------------------------------------------------------------------

EXPECTED_BODIES = {
    "cohere": (
        "/v2/rerank",
        {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS, "top_n": 5},
    ),
    "cohere-v1": (
        "/v1/rerank",
        {
            "model": "rerank-english-v3.0",
            "query": QUERY,
            "documents": DOCS,
            "top_n": 5,
            "return_documents": False,
        },
    ),
    "voyage": (
        "/v1/rerank",
        {
            "query": QUERY,
            "documents": DOCS,
            "model": "rerank-2.5",
            "top_k": 5,
            "return_documents": False,
            "truncation": True,
        },
    ),
    "jina": (
        "/v1/rerank",
        {
            "model": "jina-reranker-v2-base-multilingual",
            "query": QUERY,
            "documents": DOCS,
            "top_n": 5,
            "return_documents": False,
        },
    ),
    "tei": (
        "/rerank",
        {
            "query": QUERY,
            "texts": DOCS,
            "raw_scores": False,
            "return_text": False,
            "truncate": False,
        },
    ),
}


def test_exact_request_body_and_headers(case: str, server: FakeRerankServer) -> None:
    make(case, server.url).rerank(QUERY, DOCS, top_n=2)
    (req,) = server.requests
    path, body = EXPECTED_BODIES[case]
    assert req.path == path
    assert req.body == body  # top_n=2 is applied locally; the provider scores all
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["content-type"] == "application/json"


def test_cohere_optional_length_options_are_sent() -> None:
    with FakeRerankServer("cohere") as srv:
        make("cohere", srv.url, max_tokens_per_doc=512).rerank(QUERY, DOCS[:1])
        make("cohere-v1", srv.url, max_chunks_per_doc=3).rerank(QUERY, DOCS[:1])
    assert srv.requests[0].body["max_tokens_per_doc"] == 512
    assert srv.requests[1].body["max_chunks_per_doc"] == 3
    with pytest.raises(InvalidInputError, match="v1 option"):
        CohereReranker("m", api_key=KEY, max_chunks_per_doc=3)
    with pytest.raises(InvalidInputError, match="api_version"):
        CohereReranker("m", api_key=KEY, api_version="v3")


def test_tei_without_key_sends_no_authorization() -> None:
    with FakeRerankServer("tei", api_key=None) as srv:
        with TEIReranker(srv.url) as rr:
            rr.rerank(QUERY, DOCS)
    assert "authorization" not in srv.requests[0].headers
    with pytest.raises(InvalidInputError, match="http"):
        TEIReranker("localhost:8080")


def test_tei_raw_scores_are_logits_calibrated_by_sigmoid() -> None:
    with FakeRerankServer("tei", api_key=None) as srv:
        with TEIReranker(srv.url, raw_scores=True) as rr:
            ranking = rr.rerank(QUERY, DOCS)
    assert srv.requests[0].body["raw_scores"] is True
    top = ranking[0]
    assert top.index == 1
    assert top.raw_score == pytest.approx(5.0)  # logit of relevance 1.0 in the fake
    assert top.calibrated_score == pytest.approx(1.0 / (1.0 + math.exp(-5.0)))
    assert ranking[-1].raw_score == pytest.approx(-5.0)


# -- splitting to provider limits --------------------------------------------------------


def test_split_requests_merge_to_the_same_global_ranking(
    case: str, server: FakeRerankServer
) -> None:
    server.max_docs = 2
    docs = DOCS * 3  # 15 candidates, ties across batches
    ranking = make(case, server.url, max_docs_per_request=2).rerank(QUERY, docs, top_n=4)
    assert len(server.requests) == 8
    key = "texts" if case == "tei" else "documents"
    sent = [d for r in server.requests for d in r.body[key]]
    assert sent == docs  # contiguous batches, in order, each document once
    assert all(len(r.body[key]) <= 2 for r in server.requests)
    # relevance 1.0 at 1, 6, 11; then 2/3 at 4: global order, ties by position
    assert [h.index for h in ranking] == [1, 6, 11, 4]


def test_voyage_splits_on_estimated_tokens() -> None:
    docs = ["one two three four five six seven"] * 5  # 7 estimated tokens each; "q" is 1
    with FakeRerankServer("voyage") as srv:
        make("voyage", srv.url, max_tokens_per_request=20).rerank("q", docs)
    assert [len(r.body["documents"]) for r in srv.requests] == [2, 2, 1]


def test_plan_batches_limits() -> None:
    assert plan_batches(1, [3, 3, 3, 3, 3], max_docs=2, max_tokens=None) == [
        range(0, 2),
        range(2, 4),
        range(4, 5),
    ]
    # query counted once per document: 1 + 3 = 4 per document, budget 9 -> two per batch
    assert plan_batches(1, [3, 3, 3], max_docs=10, max_tokens=9) == [range(0, 2), range(2, 3)]
    # an oversized document still gets a batch of its own
    assert plan_batches(1, [50, 1], max_docs=10, max_tokens=9) == [range(0, 1), range(1, 2)]
    assert plan_batches(1, [], max_docs=10, max_tokens=9) == []


# -- retries, Retry-After and typed errors ------------------------------------------------


def test_5xx_is_retried_with_full_jitter_backoff(case: str, server: FakeRerankServer) -> None:
    sleeps = Sleeps()
    server.push(Scripted(503), Scripted(500))
    ranking = make(case, server.url, sleeps).rerank(QUERY, DOCS)
    assert [h.index for h in ranking] == EXPECTED_ORDER
    assert len(server.requests) == 3
    # rng() = 0.5; base 0.5 s doubling: 0.5 * 0.5, 0.5 * 1.0
    assert sleeps == [0.25, 0.5]


def test_429_honours_retry_after_seconds_and_cap(case: str, server: FakeRerankServer) -> None:
    sleeps = Sleeps()
    server.push(
        Scripted(429, headers={"Retry-After": "3"}),
        Scripted(429, headers={"Retry-After": "100000"}),
    )
    make(case, server.url, sleeps).rerank(QUERY, DOCS)
    assert sleeps == [3.0, RetryPolicy().max_retry_after]


def test_retry_policy_delay_is_retry_after_capped_else_jittered_backoff() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0, max_retry_after=10.0)
    assert policy.delay(2, None, lambda: 0.5) == 2.0  # 0.5 * min(8, 1 * 2**2)
    assert policy.delay(5, None, lambda: 0.5) == 4.0  # 0.5 * max_delay
    assert policy.delay(2, 3.0, lambda: 0.5) == 3.0
    assert policy.delay(2, 99.0, lambda: 0.5) == 10.0


def test_429_after_all_retries_is_a_rate_limit_error(case: str, server: FakeRerankServer) -> None:
    sleeps = Sleeps()
    server.push(*[Scripted(429, message="slow down please")] * 3)
    with pytest.raises(ProviderRateLimitError, match="slow down please") as info:
        make(case, server.url, sleeps, max_retries=2).rerank(QUERY, DOCS)
    assert info.value.status == 429 and info.value.provider == flavor_of(case)
    assert len(server.requests) == 3 and len(sleeps) == 2


def test_5xx_after_all_retries_is_a_provider_error(case: str, server: FakeRerankServer) -> None:
    server.push(*[Scripted(502, message="upstream down")] * 2)
    with pytest.raises(ProviderError, match="upstream down") as info:
        make(case, server.url, max_retries=1).rerank(QUERY, DOCS)
    assert type(info.value) is ProviderError and info.value.status == 502


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_not_retried_and_never_echo_the_key(
    case: str, server: FakeRerankServer, status: int
) -> None:
    server.push(Scripted(status, message="invalid api token"))
    with pytest.raises(ProviderAuthError, match="invalid api token") as info:
        make(case, server.url).rerank(QUERY, DOCS)
    assert len(server.requests) == 1
    assert KEY not in str(info.value)


def test_wrong_key_is_rejected_by_the_fake(case: str, server: FakeRerankServer) -> None:
    secret = "sk-very-secret-value"
    rr = make(case, server.url, api_key=secret)
    with pytest.raises(ProviderAuthError) as info:
        rr.rerank(QUERY, DOCS)
    assert secret not in str(info.value) and secret not in repr(rr)


def test_a_key_echoed_by_the_provider_is_redacted(case: str, server: FakeRerankServer) -> None:
    server.push(Scripted(400, message=f"bad header 'Bearer {KEY}' for key {KEY}"))
    with pytest.raises(ProviderError) as info:
        make(case, server.url).rerank(QUERY, DOCS)
    assert KEY not in str(info.value) and "***" in str(info.value)


def test_4xx_carries_the_providers_message(case: str, server: FakeRerankServer) -> None:
    server.push(Scripted(400, message="invalid request: model 'nope' not found"))
    with pytest.raises(ProviderError, match="model 'nope' not found") as info:
        make(case, server.url).rerank(QUERY, DOCS)
    assert info.value.status == 400 and len(server.requests) == 1


def test_timeout_is_retried_then_typed(case: str, server: FakeRerankServer) -> None:
    sleeps = Sleeps()
    server.push(Scripted(delay=1.0), Scripted(delay=1.0))
    with pytest.raises(ProviderTimeoutError):
        make(case, server.url, sleeps, timeout=0.05, max_retries=1).rerank(QUERY, DOCS)
    assert len(sleeps) == 1


def test_unreachable_server_is_a_provider_error(case: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    with pytest.raises(ProviderError, match="could not reach"):
        make(case, f"http://127.0.0.1:{port}", sleeps, max_retries=2).rerank(QUERY, DOCS)
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"results": "nope"},
        [{"index": 9, "relevance_score": 0.5, "score": 0.5}],
        "not json at all",
    ],
)
def test_malformed_answers_are_provider_errors(
    case: str, server: FakeRerankServer, body: Any
) -> None:
    server.push(Scripted(200, body=body))
    with pytest.raises(ProviderError):
        make(case, server.url).rerank(QUERY, DOCS)


def test_missing_scores_are_detected() -> None:
    with FakeRerankServer("cohere") as srv:
        srv.push(Scripted(200, body={"results": [{"index": 0, "relevance_score": 0.1}]}))
        with pytest.raises(ProviderError, match="no score for 1 of 2"):
            make("cohere", srv.url).rerank(QUERY, DOCS[:2])


def test_parse_retry_after_forms() -> None:
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after("1.5", now=now) == 1.5
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now=now) == pytest.approx(10.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("-3", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None


def test_retry_after_http_date_is_honoured() -> None:
    from shortlist.rerank.api.http import JsonTransport

    sleeps = Sleeps()
    with FakeRerankServer("cohere") as srv:
        srv.push(Scripted(429, headers={"Retry-After": "Tue, 14 Nov 2023 22:13:24 GMT"}))
        transport = JsonTransport(
            "cohere",
            headers={"Authorization": f"Bearer {KEY}"},
            sleep=sleeps,
            clock=lambda: 1_700_000_000.0,
        )
        body = {"model": "m", "query": "q", "documents": ["q"]}
        answer = transport.post_json(srv.url + "/v2/rerank", body)
        transport.close()
    assert sleeps == [pytest.approx(4.0)]
    assert answer["results"] == [{"index": 0, "relevance_score": 1.0}]


# -- keys from the environment -----------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "env"),
    [
        (CohereReranker, "COHERE_API_KEY"),
        (CohereReranker, "CO_API_KEY"),
        (VoyageReranker, "VOYAGE_API_KEY"),
        (JinaReranker, "JINA_API_KEY"),
    ],
)
def test_key_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, cls: type[ApiReranker], env: str
) -> None:
    for var in ("COHERE_API_KEY", "CO_API_KEY", "VOYAGE_API_KEY", "JINA_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ProviderAuthError, match=env):
        cls("some-model")
    monkeypatch.setenv(env, "env-key")
    flavor = {"CohereReranker": "cohere", "VoyageReranker": "voyage", "JinaReranker": "jina"}
    with FakeRerankServer(flavor[cls.__name__], api_key="env-key") as srv:
        with cls("some-model", base_url=srv.url) as rr:
            assert rr.rerank(QUERY, DOCS)[0].index == 1
    assert srv.requests[0].headers["authorization"] == "Bearer env-key"


# -- cost accounting ---------------------------------------------------------------------


def test_cohere_search_units() -> None:
    rr = CohereReranker("rerank-v3.5", api_key=KEY)
    assert rr.cost_units(QUERY, []) == CostEstimate(requests=0)
    assert rr.cost_units(QUERY, ["short"] * 100) == CostEstimate(requests=1, search_units=1)
    assert rr.cost_units(QUERY, ["short"] * 250) == CostEstimate(requests=1, search_units=3)
    # query "red apple pie" = 3 estimated tokens, so a billed chunk holds 497 document
    # tokens; a 600-word document is 600 tokens -> 2 chunks; 99 + 2 = 101 -> 2 units
    assert rr.cost_units(QUERY, ["short"] * 99 + ["word " * 600]) == CostEstimate(1, 2)
    assert rr.cost_units(QUERY, ["short"] * 99 + ["word " * 497]) == CostEstimate(1, 1)
    split = CohereReranker("rerank-v3.5", api_key=KEY, max_docs_per_request=60)
    assert split.cost_units(QUERY, ["short"] * 100) == CostEstimate(requests=2, search_units=2)


def test_token_billed_estimates() -> None:
    docs = ["one two three four five", "six, seven"]  # 5 and 3 estimated tokens; query 3
    expected = CostEstimate(requests=1, tokens=(3 + 5) + (3 + 3))
    assert VoyageReranker("rerank-2.5", api_key=KEY).cost_units(QUERY, docs) == expected
    assert JinaReranker("jina-m", api_key=KEY).cost_units(QUERY, docs) == expected
    assert TEIReranker("http://tei:80").cost_units(QUERY, docs * 20) == CostEstimate(requests=2)


def test_names() -> None:
    assert CohereReranker("rerank-v3.5", api_key=KEY).name == "cohere:rerank-v3.5"
    assert VoyageReranker("rerank-2", api_key=KEY, name="mine").name == "mine"
    assert TEIReranker("http://h:8080").name == "tei:http://h:8080"


def test_calibrated_scores_are_in_unit_interval(case: str, server: FakeRerankServer) -> None:
    ranking = make(case, server.url).rerank(QUERY, DOCS)
    cal = np.array([h.calibrated_score for h in ranking])
    assert ((cal >= 0) & (cal <= 1)).all()


# -- the official Cohere SDK against the fake ---------------------------------------------


def test_official_cohere_sdk_v2_is_accepted_by_the_fake() -> None:
    cohere = pytest.importorskip("cohere")
    with FakeRerankServer("cohere") as srv, httpx.Client() as http:
        client = cohere.ClientV2(api_key=KEY, base_url=srv.url, httpx_client=http)
        resp = client.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=3)
    assert [r.index for r in resp.results] == EXPECTED_ORDER[:3]
    assert resp.results[0].relevance_score == pytest.approx(1.0)
    (req,) = srv.requests
    assert req.path == "/v2/rerank"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.body == {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS, "top_n": 3}


def test_official_cohere_sdk_v1_is_accepted_by_the_fake() -> None:
    cohere = pytest.importorskip("cohere")
    with FakeRerankServer("cohere") as srv, httpx.Client() as http:
        client = cohere.Client(api_key=KEY, base_url=srv.url, httpx_client=http)
        resp = client.rerank(
            model="rerank-english-v3.0", query=QUERY, documents=DOCS, top_n=2, return_documents=True
        )
    assert [r.index for r in resp.results] == [1, 4]
    assert resp.results[0].document is not None
    assert resp.results[0].document.text == DOCS[1]
    assert srv.requests[0].path == "/v1/rerank"


def test_provider_limits_are_the_documented_defaults_and_can_be_changed() -> None:
    voyage = VoyageReranker("rerank-2.5", api_key=KEY)
    assert (voyage.max_docs_per_request, voyage.max_tokens_per_request) == (1000, 100_000)
    unlimited = VoyageReranker("rerank-2.5", api_key=KEY, max_tokens_per_request=None)
    assert unlimited.max_tokens_per_request is None
    assert JinaReranker("jina-m", api_key=KEY).max_tokens_per_request is None
    assert TEIReranker("http://tei:80").max_docs_per_request == 32
    assert TEIReranker("http://tei:80", max_docs_per_request=8).max_docs_per_request == 8
    with pytest.raises(InvalidInputError, match="max_docs_per_request"):
        JinaReranker("jina-m", api_key=KEY, max_docs_per_request=0)


@pytest.mark.parametrize(
    ("cls", "example"),
    [
        (CohereReranker, "rerank-v3.5"),
        (VoyageReranker, "rerank-2.5"),
        (JinaReranker, "jina-reranker-v2-base-multilingual"),
    ],
)
def test_missing_model_name_gives_an_example(cls: type[KeyedApiReranker], example: str) -> None:
    with pytest.raises(InvalidInputError, match=f"model name is required, e.g. '{example}'"):
        cls("", api_key=KEY)
