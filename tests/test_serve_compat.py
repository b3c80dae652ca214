"""What clients written for other servers meet (issue #16), over plain HTTP: model aliases
and --accept-any-model, warnings for every ignored option, TEI's /info and error shape,
request ids and access logs, and the /metrics families."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from serve_fakes import DOCS, QUERY, OverlapScorer
from shortlist.serve.access import JsonFormatter, logging_config, request_id_from
from shortlist.serve.app import ServeConfig, create_app


@pytest.fixture
def scorer() -> OverlapScorer:
    return OverlapScorer()


def client_for(config: ServeConfig, rerankers: dict[str, object]) -> TestClient:
    return TestClient(create_app(config, rerankers))


@pytest.fixture
def client(scorer: OverlapScorer) -> Iterator[TestClient]:
    names = {"small": scorer, "rerank-v3.5": scorer, "rerank-english-v3.0": scorer}
    with client_for(ServeConfig(), names) as c:
        yield c


def v2(model: str, **extra: object) -> dict[str, object]:
    return {"model": model, "query": QUERY, "documents": DOCS, **extra}


def test_one_model_answers_to_every_alias(client: TestClient) -> None:
    app = client.app
    assert list(app.state.slots) == ["small"]
    assert app.state.model_names == {
        "small": ["fake:overlap", "rerank-english-v3.0", "rerank-v3.5", "small"]
    }
    names = app.state.model_names["small"]
    answers = [client.post("/v2/rerank", json=v2(name)) for name in names]
    assert {r.status_code for r in answers} == {200}
    assert len({json.dumps(r.json()["results"]) for r in answers}) == 1
    assert {r.headers["X-Shortlist-Model"] for r in answers} == {"small"}
    assert client.post("/v2/rerank", json=v2("rerank-v2.0")).status_code == 404


def test_accept_any_model_answers_with_the_default_and_logs_each_name_once(
    scorer: OverlapScorer, caplog: pytest.LogCaptureFixture
) -> None:
    config = ServeConfig(accept_any_model=True)
    with client_for(config, {"small": scorer, "other": OverlapScorer(name="x")}) as c:
        with caplog.at_level(logging.INFO, logger="shortlist.serve"):
            for _ in range(3):
                r = c.post("/v2/rerank", json=v2("rerank-english-v3.0"))
                assert r.status_code == 200 and r.headers["X-Shortlist-Model"] == "small"
            assert c.post("/v2/rerank", json=v2("other")).headers["X-Shortlist-Model"] == "other"
        spec = c.get("/openapi.json").json()["components"]["schemas"]
    logged = [r.getMessage() for r in caplog.records if r.name == "shortlist.serve"]
    assert len(logged) == 1 and "'rerank-english-v3.0'" in logged[0] and "'small'" in logged[0]
    # The spec no longer restricts the model names a request may give.
    assert "enum" not in json.dumps(spec["CohereV2RerankRequest"]["properties"]["model"])


@pytest.mark.parametrize(
    ("path", "body", "ignored"),
    [
        ("/v2/rerank", v2("small", relevant_spans={"mode": "enabled"}), ["relevant_spans"]),
        ("/v2/rerank", v2("small", priority=3, relevant_spans=None), ["priority"]),
        (
            "/v1/rerank",
            {"query": QUERY, "documents": [{"text": d} for d in DOCS], "rank_fields": ["text"]},
            ["rank_fields"],
        ),
        ("/v2/rerank", v2("small", max_tokens_per_doc=64), ["max_tokens_per_doc"]),
    ],
)
def test_every_ignored_option_comes_back_as_a_warning(
    client: TestClient, path: str, body: dict[str, object], ignored: list[str]
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    warnings = r.json()["meta"]["warnings"]
    assert [w.split(" ")[0] for w in warnings] == ignored
    assert all("was ignored" in w for w in warnings)


def test_no_warnings_when_nothing_is_ignored(client: TestClient) -> None:
    r = client.post("/v2/rerank", json=v2("small", top_n=2))
    assert "warnings" not in r.json()["meta"]
    r = client.post("/rerank", json={"query": QUERY, "texts": DOCS})
    assert "X-Shortlist-Warning" not in r.headers


def test_tei_route_names_ignored_options_in_a_header(client: TestClient) -> None:
    r = client.post("/rerank", json={"query": QUERY, "texts": DOCS, "truncate": True, "x": 1})
    assert r.status_code == 200
    warning = r.headers["X-Shortlist-Warning"]
    assert "x is not supported" in warning and "truncate=true" in warning


def test_search_names_ignored_fields_in_a_header(tmp_path: Path) -> None:
    from serve_fakes import make_index

    app = create_app(ServeConfig(), {"small": OverlapScorer()}, make_index(tmp_path / "i"))
    with TestClient(app) as c:
        r = c.post("/v1/search", json={"query": "cat", "rank_fields": ["title"]})
        plain = c.post("/v1/search", json={"query": "cat"})
    assert r.status_code == 200
    assert r.headers["X-Shortlist-Warning"] == (
        "rank_fields is not supported by this server and was ignored"
    )
    assert "X-Shortlist-Warning" not in plain.headers


def test_tei_info(client: TestClient) -> None:
    info = client.get("/info").json()
    assert info["model_id"] == "small"
    assert info["max_client_batch_size"] == 1000 and info["max_batch_tokens"] == 16384
    assert info["max_input_length"] == 512  # the fake has no window of its own
    assert "reranker" in info["model_type"]
    assert "rerank-v3.5" in info["models"]


def test_tei_errors_have_tei_shape_and_cohere_errors_keep_theirs(scorer: OverlapScorer) -> None:
    config = ServeConfig(api_key="s3cret", max_request_bytes=2000, max_documents=3)
    with client_for(config, {"small": scorer}) as c:
        auth = {"Authorization": "Bearer s3cret"}
        unauthorized = c.post("/rerank", json={"query": "q", "texts": ["a"]})
        invalid = c.post("/rerank", json={"query": "q", "texts": []}, headers=auth)
        too_many = c.post("/rerank", json={"query": "q", "texts": ["a"] * 4}, headers=auth)
        too_big = c.post("/rerank", json={"query": "q", "texts": ["a" * 3000]}, headers=auth)
        not_json = c.post("/rerank", content=b"{", headers=auth)
        cohere = c.post("/v2/rerank", json=v2("small"))
    assert unauthorized.status_code == 401
    assert unauthorized.json()["error_type"] == "Unauthorized"
    for r in (invalid, too_many, too_big, not_json):
        assert set(r.json()) == {"error", "error_type"}, r.text
        assert r.json()["error_type"] == "Validation"
    assert "max_documents=3" in too_many.json()["error"]
    assert too_big.status_code == 413 and "max_request_bytes" in too_big.json()["error"]
    assert cohere.status_code == 401 and set(cohere.json()) == {"message", "error"}


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    given = client.get("/health", headers={"X-Request-ID": "abc-123.x"})
    assert given.headers["X-Request-ID"] == "abc-123.x"
    made = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert len(made.headers["X-Request-ID"]) == 32 and " " not in made.headers["X-Request-ID"]
    assert client.get("/health").headers["X-Request-ID"] != made.headers["X-Request-ID"]
    assert request_id_from([(b"x-request-id", b"x" * 129)]) != "x" * 129


def test_access_log_has_every_field_and_never_the_key(
    scorer: OverlapScorer, caplog: pytest.LogCaptureFixture
) -> None:
    config = ServeConfig(api_key="s3cret-key")
    with client_for(config, {"small": scorer}) as c, caplog.at_level(logging.INFO):
        c.post(
            "/v2/rerank?api_key=s3cret-key",
            json=v2("small"),
            headers={"Authorization": "Bearer s3cret-key", "X-Request-ID": "req-1"},
        )
        c.post("/v2/rerank", json=v2("small"), headers={"Authorization": "Bearer wrong"})
    records = [r for r in caplog.records if r.name == "shortlist.access"]
    assert len(records) == 2
    ok = records[0].fields
    assert ok["method"] == "POST" and ok["path"] == "/v2/rerank" and ok["status"] == 200
    assert ok["request_id"] == "req-1" and ok["model"] == "small"
    assert isinstance(ok["latency_ms"], float) and ok["latency_ms"] >= 0
    assert records[1].fields["status"] == 401
    assert "model" not in records[1].fields
    formatted = [JsonFormatter().format(r) for r in records] + [r.getMessage() for r in records]
    assert not any("s3cret" in line for line in formatted)
    line = json.loads(formatted[0])
    assert line["ts"].endswith("+00:00") and line["status"] == 200 and line["model"] == "small"
    # README.md ("Serving") shows a JSON access line: the same fields, in the same order.
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    shown = next(s for s in readme.splitlines() if s.startswith('{"ts": '))
    assert list(json.loads(shown)) == list(line)
    assert "200" in records[0].getMessage() and "id=req-1" in records[0].getMessage()


def test_logging_config_formats(capsys: pytest.CaptureFixture[str]) -> None:
    assert logging_config("json")["formatters"]["default"]["()"].endswith("JsonFormatter")
    assert "asctime" in logging_config("text")["formatters"]["default"]["format"]
    with pytest.raises(ValueError, match="text, json"):
        logging_config("xml")


def test_metrics_have_process_build_and_per_model_rerank_families(client: TestClient) -> None:
    client.post("/v2/rerank", json=v2("rerank-v3.5"))
    client.post("/rerank", json={"query": QUERY, "texts": DOCS[:2]})
    text = client.get("/metrics").text
    assert 'shortlist_build_info{models="small",version="0.1.0"} 1.0' in text
    assert "process_resident_memory_bytes" in text and "python_info" in text
    assert f'shortlist_rerank_pairs_total{{model="small"}} {len(DOCS) + 2}.0' in text
    assert 'shortlist_rerank_duration_seconds_count{model="small"} 2.0' in text
    tokens = next(
        line for line in text.splitlines() if line.startswith("shortlist_rerank_tokens_total")
    )
    assert float(tokens.split()[-1]) > len(DOCS) + 2
