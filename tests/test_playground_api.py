"""The playground's JSON endpoints on a real server over 50 Lee articles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi", reason="fastapi not installed: pip install -e '.[serve]'")

from chat_fakes import ANSWER, FakeLLM, closed_port_url, fake_llm
from clirun import run_cli
from playground_env import QUERY, make_lee_index, make_playground_app
from serve_fakes import running
from shortlist.generate.sse import iter_events
from shortlist.retrieve.analyzer import Analyzer
from shortlist.store.index import Index


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    return make_lee_index(tmp_path_factory.mktemp("pg") / "index")


@pytest.fixture(scope="module")
def llm() -> Iterator[tuple[FakeLLM, str]]:
    with fake_llm() as pair:
        yield pair


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("judged") / "judgements"


@pytest.fixture(scope="module")
def url(
    index: Index, llm: tuple[FakeLLM, str], judged: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    report = tmp_path_factory.mktemp("eval") / "eval.json"
    report.write_text(json.dumps({"primary": "ndcg@10", "summary": []}))
    app = make_playground_app(index, judgements=judged, llm_url=llm[1], eval_json=report)
    with running(app) as base:
        yield base


def _explain(url: str, **body: object) -> httpx.Response:
    return httpx.post(f"{url}/v1/playground/search", json={"query": QUERY, **body}, timeout=30)


def test_page_and_assets_are_served(url: str) -> None:
    page = httpx.get(url + "/")
    assert page.status_code == 200 and "/playground/app.js" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        r = httpx.get(f"{url}/playground/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
    assert httpx.get(url + "/playground/../app.py").status_code == 404
    assert httpx.get(url + "/playground/secret.txt").status_code == 404


def test_info_lists_pipelines_and_features(url: str) -> None:
    info = httpx.get(url + "/v1/playground").json()
    assert [p["name"] for p in info["pipelines"]] == ["bm25", "dense", "hybrid", "hybrid+overlap"]
    assert info["models"] == ["overlap"] and info["judgements"] and info["eval"]
    assert info["llm"] == "fake-model" and info["auth"] is False


def test_explained_ranking_matches_v1_search(url: str) -> None:
    r = _explain(url, pipeline="bm25+overlap", k=20, top_n=8)
    assert r.status_code == 200, r.text
    body = r.json()
    plain = httpx.post(
        url + "/v1/search",
        json={"query": QUERY, "mode": "bm25", "rerank": "overlap", "k": 20, "top_n": 8},
    ).json()
    assert [h["id"] for h in body["results"]] == [h["id"] for h in plain["results"]]
    assert [h["first_stage_rank"] for h in body["results"]] == [
        h["first_stage_rank"] for h in plain["results"]
    ]
    assert set(body["timings_ms"]) == set(plain["timings_ms"]) >= {"retrieve", "rerank", "total"}
    assert body["spec"] == "bm25+overlap" and body["describe"].startswith("bm25(k=20)")
    moves = set()
    for hit in body["results"]:
        first, rank = hit["first_stage_rank"], hit["rank"]
        expected = (
            "new" if first > 8 else "up" if first > rank else "down" if first < rank else "same"
        )
        assert hit["move"] == expected and hit["move_by"] == first - rank
        assert hit["calibrated_score"] is not None and hit["raw_score"] is not None
        assert hit["title"].startswith("ABC news item") and "section" in hit["metadata"]
        moves.add(hit["move"])
    assert len(moves) >= 2  # the reranker really moved things


def test_matched_terms_are_marked(url: str) -> None:
    body = _explain(url, pipeline="bm25", top_n=3).json()
    assert body["highlighted"] is True
    terms = set(Analyzer().analyze(QUERY))
    marked = 0
    for hit in body["results"]:
        assert "".join(s["text"] for s in hit["segments"]) == hit["text"]
        for s in hit["segments"]:
            if s["match"]:
                assert Analyzer().analyze(s["text"])[0] in terms
                marked += 1
    assert marked >= 3
    dense = _explain(url, pipeline="dense", top_n=3).json()
    assert dense["highlighted"] is False
    assert not any(s["match"] for h in dense["results"] for s in h["segments"])


@pytest.mark.parametrize(
    ("pipeline", "status", "words"),
    [
        ("bm25+nope", 404, "unknown spec 'bm25+nope': the reranker 'nope' is not served"),
        ("sparkle", 422, "unknown first stage 'sparkle'"),
        ("hybrid?fusion=magic", 422, "magic"),
    ],
)
def test_unknown_specs_are_named(url: str, pipeline: str, status: int, words: str) -> None:
    r = _explain(url, pipeline=pipeline)
    assert r.status_code == status and words in r.json()["message"]


def test_typed_spec_with_parameters_runs(url: str) -> None:
    r = _explain(url, pipeline="hybrid?fusion=rrf&w=0.5+overlap", k=10, top_n=3)
    assert r.status_code == 200, r.text
    assert r.json()["spec"] == "hybrid?fusion=rrf&w=0.5+overlap"


def test_judgements_make_a_dataset_eval_runs_on(url: str, judged: Path, tmp_path: Path) -> None:
    top = _explain(url, pipeline="bm25", top_n=3).json()["results"]
    for hit, rel in zip(top, (1, 0, 2), strict=True):
        r = httpx.post(
            url + "/v1/judgements", json={"query": QUERY, "doc_id": hit["doc_id"], "relevance": rel}
        )
        assert r.status_code == 200, r.text
    body = httpx.get(url + "/v1/judgements", params={"query": QUERY}).json()
    qid = body["query_id"]
    assert body["marks"] == {top[0]["doc_id"]: 1, top[1]["doc_id"]: 0, top[2]["doc_id"]: 2}
    qrels = (judged / "qrels" / "test.tsv").read_text().splitlines()
    assert qrels[0] == "query-id\tcorpus-id\tscore"
    assert f"{qid}\t{top[0]['doc_id']}\t1" in qrels
    queries = [json.loads(line) for line in (judged / "queries.jsonl").read_text().splitlines()]
    assert queries == [{"_id": qid, "text": QUERY}]
    # Removing a mark, and a second query, keep the files consistent.
    httpx.post(
        url + "/v1/judgements", json={"query": QUERY, "doc_id": top[1]["doc_id"], "relevance": None}
    )
    httpx.post(
        url + "/v1/judgements", json={"query": "interest rates", "doc_id": "lee-01", "relevance": 1}
    )
    assert len((judged / "queries.jsonl").read_text().splitlines()) == 2
    corpus = [json.loads(line) for line in (judged / "corpus.jsonl").read_text().splitlines()]
    assert len(corpus) == 50 and corpus[0]["title"].startswith("ABC news item")
    result = run_cli(
        "eval",
        str(judged),
        "--pipeline",
        "bm25",
        "-k",
        "10",
        "--cache-dir",
        str(tmp_path / "c"),
        "--json",
        str(tmp_path / "eval.json"),
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["n_queries"] == 2
    assert report["per_query"]["bm25@k10"]["metrics"]["ndcg@10"][qid] > 0


def test_bad_judgements_are_refused(url: str) -> None:
    r = httpx.post(url + "/v1/judgements", json={"query": QUERY, "doc_id": "x", "relevance": 7})
    assert r.status_code == 422 and "relevance" in r.json()["message"]


def test_answer_streams_with_citations(url: str, llm: tuple[FakeLLM, str]) -> None:
    body = {"query": QUERY, "pipeline": "bm25+overlap", "k": 20, "top_n": 5}
    with httpx.stream("POST", url + "/v1/answer", json=body, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = list(iter_events(r.iter_lines()))
    kinds = [e for e, _ in events]
    assert kinds[0] == "passages" and kinds[-1] == "done" and kinds.count("delta") >= 2
    head = json.loads(events[0][1])
    done = json.loads(events[-1][1])
    assert "".join(json.loads(d)["text"] for e, d in events if e == "delta") == ANSWER
    ids = [h["id"] for h in head["results"]]
    assert [c["id"] for c in head["prompt"]["citations"]] == ids
    assert [(c["number"], c["id"], c["in_prompt"]) for c in done["citations"]] == [
        (1, ids[0], True),
        (2, ids[1], True),
        (9, None, False),
    ]
    assert done["usage"]["total_tokens"] > 0 and head["prompt"]["budget"] == 2000
    assert llm[0].requests[-1]["messages"][0]["content"].count("(doc: ") == 5


def test_answer_reports_a_down_llm_as_json(index: Index, tmp_path: Path) -> None:
    with running(make_playground_app(index, llm_url=closed_port_url())) as base:
        r = httpx.post(base + "/v1/answer", json={"query": QUERY, "pipeline": "bm25"}, timeout=30)
        assert r.status_code == 502 and "cannot reach the LLM" in r.json()["message"]
    with fake_llm(FakeLLM(mode="html")) as (_llm, html_url):
        with running(make_playground_app(index, llm_url=html_url)) as base:
            r = httpx.post(base + "/v1/answer", json={"query": QUERY, "pipeline": "bm25"})
            assert r.status_code == 502 and "not OpenAI chat completions" in r.json()["message"]
    with running(make_playground_app(index)) as base:
        r = httpx.post(base + "/v1/answer", json={"query": QUERY, "pipeline": "bm25"})
        assert r.status_code == 404 and "--llm URL --llm-model NAME" in r.json()["message"]
        r = httpx.post(
            base + "/v1/judgements", json={"query": QUERY, "doc_id": "a", "relevance": 1}
        )
        assert r.status_code == 404 and "--judgements DIR" in r.json()["message"]
        assert httpx.get(base + "/v1/playground/eval").status_code == 404


def test_saved_eval_is_served(url: str) -> None:
    assert httpx.get(url + "/v1/playground/eval").json()["primary"] == "ndcg@10"


def test_api_key_guards_the_data_but_not_the_page(index: Index) -> None:
    with running(make_playground_app(index, api_key="k3y")) as base:
        assert httpx.get(base + "/").status_code == 200
        assert httpx.get(base + "/v1/playground").json()["auth"] is True
        body = {"query": QUERY, "pipeline": "bm25"}
        assert httpx.post(base + "/v1/playground/search", json=body).status_code == 401
        ok = httpx.post(
            base + "/v1/playground/search", json=body, headers={"Authorization": "Bearer k3y"}
        )
        assert ok.status_code == 200


def test_filters_apply_and_endpoints_are_in_the_spec(url: str) -> None:
    r = _explain(url, pipeline="hybrid+overlap", top_n=5, filter={"section": "world"})
    assert r.status_code == 200, r.text
    assert r.json()["results"] and all(
        h["metadata"]["section"] == "world" for h in r.json()["results"]
    )
    spec = httpx.get(url + "/openapi.json").json()
    for path in ("/v1/playground", "/v1/playground/search", "/v1/judgements", "/v1/answer"):
        assert path in spec["paths"], path
    assert "ExplainedHit" in spec["components"]["schemas"]


def test_a_pipeline_file_is_offered_first(index: Index) -> None:
    from serve_fakes import OverlapScorer
    from shortlist.pipeline_file import PipelineConfig
    from shortlist.serve.app import ServeConfig, create_app
    from shortlist.serve.playground import PlaygroundConfig

    config = PipelineConfig.from_dict(
        {"version": 1, "k": 12, "top_n": 3, "reranker": "fake:overlap",
         "first_stage": {"mode": "bm25"}}
    )  # fmt: skip
    app = create_app(
        ServeConfig(), {"fake:overlap": OverlapScorer()}, index, config, PlaygroundConfig()
    )
    with running(app) as base:
        info = httpx.get(base + "/v1/playground").json()
        assert info["pipelines"][0] == {
            "name": "pipeline file", "spec": "bm25+fake:overlap", "k": 12, "top_n": 3
        }  # fmt: skip
        assert (info["k"], info["top_n"]) == (12, 3)
        body = _explain(base, pipeline="pipeline file").json()
        assert (
            body["describe"] == "bm25(k=12) > fake:overlap > top(3)" and len(body["results"]) == 3
        )


def test_an_answer_cut_midway_ends_with_an_error_event(index: Index) -> None:
    with fake_llm(FakeLLM(mode="cut")) as (_llm, llm_url):
        with running(make_playground_app(index, llm_url=llm_url)) as base:
            body = {"query": QUERY, "pipeline": "bm25"}
            with httpx.stream("POST", base + "/v1/answer", json=body, timeout=30) as r:
                assert r.status_code == 200
                events = list(iter_events(r.iter_lines()))
    assert [e for e, _ in events] == ["passages", "delta", "delta", "error"]
    assert "ended before the answer was finished" in json.loads(events[-1][1])["message"]
