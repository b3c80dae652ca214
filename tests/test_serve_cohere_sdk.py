"""The official Cohere Python SDK (v1 and v2 clients) against the served API on loopback.

Only these tests need the SDK; the HTTP behaviour they rest on is tested without it in
test_serve_api.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

pytest.importorskip("fastapi", reason="fastapi not installed: pip install -e '.[serve]'")
pytest.importorskip("cohere", reason="the Cohere SDK is not installed (dev extra)")

import cohere

from serve_fakes import DOCS, QUERY, OverlapScorer, running
from shortlist.serve.app import ServeConfig, create_app


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One connection pool for the Cohere clients (they do not close their own)."""
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def scorer() -> OverlapScorer:
    return OverlapScorer()


@pytest.fixture(scope="module")
def base_url(scorer: OverlapScorer) -> Iterator[str]:
    with running(create_app(ServeConfig(), {"overlap": scorer})) as url:
        yield url


def test_cohere_v2_client_matches_direct_rerank(
    http: httpx.Client, base_url: str, scorer: OverlapScorer
) -> None:
    client = cohere.ClientV2(base_url=base_url, api_key="unused", httpx_client=http)
    got = client.rerank(model="overlap", query=QUERY, documents=DOCS, top_n=3)
    direct = scorer.rerank(QUERY, DOCS, top_n=3)
    assert [r.index for r in got.results] == [h.index for h in direct] == [4, 1, 3]
    assert [r.relevance_score for r in got.results] == pytest.approx([h.score for h in direct])
    assert all(getattr(r, "document", None) is None for r in got.results)
    assert got.meta.api_version.version == "2"
    assert got.meta.billed_units.search_units == 1
    assert got.id


def test_cohere_v1_client_returns_documents(
    http: httpx.Client, base_url: str, scorer: OverlapScorer
) -> None:
    client = cohere.Client(base_url=base_url, api_key="unused", httpx_client=http)
    documents = [DOCS[0], {"text": DOCS[1]}, DOCS[2], {"text": DOCS[3], "title": "x"}, DOCS[4]]
    got = client.rerank(query=QUERY, documents=documents, return_documents=True)
    direct = scorer.rerank(QUERY, DOCS)
    assert [r.index for r in got.results] == [h.index for h in direct]
    assert [r.document.text for r in got.results] == [DOCS[h.index] for h in direct]
    assert got.meta.api_version.version == "1"


def test_sdk_errors_map_to_its_exceptions(http: httpx.Client, base_url: str) -> None:
    client = cohere.ClientV2(base_url=base_url, api_key="unused", httpx_client=http)
    with pytest.raises(cohere.errors.NotFoundError) as err:
        client.rerank(model="cross-encoder:/etc/passwd", query=QUERY, documents=DOCS)
    assert err.value.body["error"]["type"] == "model_not_served_error"


def test_sdk_sends_the_api_key(http: httpx.Client, scorer: OverlapScorer) -> None:
    body = {"model": "overlap", "query": QUERY, "documents": DOCS}
    with running(create_app(ServeConfig(api_key="s3cret"), {"overlap": scorer})) as url:
        with pytest.raises(cohere.errors.UnauthorizedError):
            cohere.ClientV2(base_url=url, api_key="wrong", httpx_client=http).rerank(**body)
        ok = cohere.ClientV2(base_url=url, api_key="s3cret", httpx_client=http).rerank(**body)
    assert len(ok.results) == len(DOCS)
