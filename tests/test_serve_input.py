"""Input the server must refuse cleanly (issue #15): lone surrogates, blank queries,
non-JSON bodies, non-boolean booleans; and a spec that states the server's real limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")

from serve_fakes import OverlapScorer, make_index, running
from shortlist.serve.app import ServeConfig, create_app
from shortlist.validate import NOT_BLANK_PATTERN

CONFIG = ServeConfig(max_documents=20, max_top_n=10)


def error_message(path: str, r: httpx.Response) -> str:
    """The message of an error answer, in its route's shape (TEI's on /rerank)."""
    body = r.json()
    if path == "/rerank":
        assert set(body) == {"error", "error_type"} and body["error_type"] == "Validation"
        return str(body["error"])
    return str(body["message"])


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    index = make_index(tmp_path_factory.mktemp("input") / "index")
    with running(create_app(CONFIG, {"overlap": OverlapScorer()}, index)) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


def _raw(client: httpx.Client, path: str, body: str) -> httpx.Response:
    # The body is written by hand: a JSON "\udfff" escape, as a client in any language sends.
    return client.post(path, content=body.encode(), headers={"content-type": "application/json"})


SURROGATE_CASES = [
    (
        "/v1/rerank",
        '{"query": "cat", "documents": ["a cat", "x", "y", "bad \\udfff cat"],'
        ' "return_documents": true}',
        "documents[3]: text contains a lone surrogate \\udfff at position 4",
    ),
    (
        "/v1/rerank",
        '{"query": "cat", "documents": [{"text": "ok"}, {"text": "\\ud800"}]}',
        "documents[1]: text contains a lone surrogate \\ud800 at position 0",
    ),
    (
        "/v2/rerank",
        '{"model": "overlap", "query": "cat", "documents": ["\\udfffcat"]}',
        "documents[0]: text contains a lone surrogate \\udfff at position 0",
    ),
    (
        "/rerank",
        '{"query": "cat", "texts": ["cat", "dog \\udc80"], "return_text": true}',
        "texts[1]: text contains a lone surrogate \\udc80 at position 4",
    ),
    (
        "/v2/rerank",
        '{"model": "overlap", "query": "ca\\udfff", "documents": ["cat"]}',
        "query: text contains a lone surrogate \\udfff at position 2",
    ),
    ("/v1/search", '{"query": "\\udfff"}', "query: text contains a lone surrogate"),
]


@pytest.mark.parametrize(("path", "body", "message"), SURROGATE_CASES)
def test_lone_surrogate_is_422_naming_the_document_and_keep_alive_survives(
    client: httpx.Client, path: str, body: str, message: str
) -> None:
    r = _raw(client, path, body)
    assert r.status_code == 422, r.text
    assert message in error_message(path, r)
    # The same connection answers the next request normally.
    ok = client.post("/v2/rerank", json={"model": "overlap", "query": "cat", "documents": ["cat"]})
    assert ok.status_code == 200
    assert ok.json()["results"][0]["index"] == 0


def test_a_surrogate_pair_is_ordinary_text(client: httpx.Client) -> None:
    body = '{"query": "cat", "documents": ["\\ud83d\\ude00"], "return_documents": true}'
    r = _raw(client, "/v1/rerank", body)
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["document"]["text"] == "\U0001f600"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/search", {"query": "   "}),
        ("/v1/rerank", {"query": " \n\t", "documents": ["a"]}),
        ("/v2/rerank", {"model": "overlap", "query": "  ", "documents": ["a"]}),
        ("/rerank", {"query": " ", "texts": ["a"]}),
        ("/v2/rerank", {"model": "overlap", "query": "\x1f\u3000", "documents": ["a"]}),
    ],
)
def test_blank_query_is_422(client: httpx.Client, path: str, body: dict[str, object]) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert error_message(path, r) == "query: text is empty or only whitespace; give some text"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_non_json_body_is_415(client: httpx.Client, content_type: str) -> None:
    body = json.dumps({"query": "cat", "documents": ["cat"]}).encode()
    r = client.post("/v1/rerank", content=body, headers={"content-type": content_type})
    assert r.status_code == 415, r.text
    assert "application/json" in r.json()["message"]
    ok = client.post(
        "/v1/rerank", content=body, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/rerank", {"query": "q", "documents": ["a"], "return_documents": 0}, "documents"),
        (
            "/v2/rerank",
            {"model": "overlap", "query": "q", "documents": ["a"], "return_documents": "true"},
            "return_documents",
        ),
        ("/rerank", {"query": "q", "texts": ["a"], "raw_scores": 1}, "raw_scores"),
        ("/rerank", {"query": "q", "texts": ["a"], "truncate": "yes"}, "truncate"),
        ("/v1/search", {"query": "q", "rerank": 0}, "rerank"),
    ],
)
def test_booleans_are_strict(
    client: httpx.Client, path: str, body: dict[str, object], field: str
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert field in error_message(path, r)


def test_spec_states_limits_model_names_and_no_auth_without_a_key(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    v2 = schemas["CohereV2RerankRequest"]["properties"]
    assert v2["model"]["enum"] == ["default", "fake:overlap", "overlap"]
    assert v2["documents"]["maxItems"] == 20
    assert [v.get("maximum") for v in v2["top_n"]["anyOf"]] == [10, None]
    assert v2["query"]["pattern"] == NOT_BLANK_PATTERN
    v1 = schemas["CohereV1RerankRequest"]["properties"]
    assert v1["model"]["anyOf"][0]["enum"] == ["default", "fake:overlap", "overlap"]
    assert schemas["TeiRerankRequest"]["properties"]["texts"]["maxItems"] == 20
    search = schemas["SearchRequest"]["properties"]
    assert search["k"]["anyOf"][0]["maximum"] == 20
    assert search["top_n"]["maximum"] == 10
    assert search["rerank"]["anyOf"][1]["enum"] == ["default", "fake:overlap", "overlap"]
    assert "securitySchemes" not in spec.get("components", {})
    assert all("security" not in op for path in spec["paths"].values() for op in path.values())


def test_search_without_a_reranker_is_first_stage_only(tmp_path: Path) -> None:
    app = create_app(CONFIG, {}, make_index(tmp_path / "index"))
    with running(app) as url:
        r = httpx.post(f"{url}/v1/search", json={"query": "cat"})
        assert r.status_code == 200, r.text
        assert r.json()["results"]
        r = httpx.post(f"{url}/v1/search", json={"query": "cat", "rerank": True})
        assert r.status_code == 404
        rerank = httpx.get(f"{url}/openapi.json").json()["components"]["schemas"][
            "SearchRequest"
        ]["properties"]["rerank"]
        assert rerank["enum"] == [False]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v2/rerank", {"model": "overlap", "query": "q", "documents": ["a"],
                        "max_tokens_per_doc": 10**30}),
        ("/v1/rerank", {"query": "q", "documents": ["a"], "max_chunks_per_doc": 10**7}),
    ],
)  # fmt: skip
def test_per_document_limits_are_bounded(
    client: httpx.Client, path: str, body: dict[str, object]
) -> None:
    """Schemathesis found a huge max_tokens_per_doc overflowing the tokenizer (500)."""
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert "less than or equal to 1000000" in r.json()["message"]
