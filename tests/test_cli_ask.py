"""`shortlist ask` against a loopback chat completions server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chat_fakes import FakeLLM, closed_port_url, fake_llm
from clirun import run_cli
from shortlist.corpus.readers import read_corpus
from shortlist.store.index import Index

QUESTION = "what did the government and the senator say"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    data = os.path.join(os.path.dirname(__file__), "data", "lee5.jsonl")
    path = tmp_path_factory.mktemp("ask") / "index"
    Index.create(path, list(read_corpus([data])), dense=False)
    return str(path)


def _ask(index_dir: str, url: str, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli(
        "ask", QUESTION, "--index", index_dir, "--llm", url, "--llm-model", "fake", *extra
    )


def test_ask_streams_answer_citations_tokens_and_cost(
    index_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_LLM_KEY", "sk-very-secret")
    with fake_llm() as (llm, url):
        result = _ask(
            index_dir, url, "--llm-key-env", "MY_LLM_KEY", "--price-in", "1", "--price-out", "2"
        )
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith(FakeLLM().answer)
    ranked = json.loads(run_cli("search", QUESTION, "--index", index_dir, "--json").stdout)
    first, second = ranked["results"][0], ranked["results"][1]
    assert f"[1] {first['doc_id']} (passage {first['id']})" in out
    assert f"[2] {second['doc_id']} (passage {second['id']})" in out
    assert "[9] NOT IN THE PROMPT" in out
    usage = FakeLLM().usage(llm.requests[0])
    assert f"= {usage['total_tokens']}; cost $" in out
    assert llm.auth == ["Bearer sk-very-secret"]
    assert "sk-very-secret" not in out + result.stderr


def test_show_prompt_prints_exactly_what_was_sent(index_dir: str) -> None:
    with fake_llm() as (llm, url):
        result = _ask(index_dir, url, "--show-prompt", "--top-n", "3")
    assert result.exit_code == 0, result.stderr
    head, _, rest = result.stdout.partition("--- answer ---")
    sent = json.loads(head.split("---\n", 1)[1])
    assert sent == llm.requests[0]
    assert "[1] (doc: " in sent["messages"][0]["content"]
    assert "cost: give --price-in/--price-out" in rest


def test_ask_json_output(index_dir: str) -> None:
    with fake_llm(FakeLLM(mode="json")) as (_llm, url):
        result = _ask(index_dir, url, "--json")
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["answer"] == FakeLLM().answer
    assert [c["in_prompt"] for c in body["citations"]] == [True, True, False]
    assert body["prompt"]["citations"][0]["number"] == 1


@pytest.mark.parametrize(
    ("llm", "code", "words"),
    [
        (None, 5, "cannot reach the LLM"),
        (FakeLLM(mode="html"), 5, "not OpenAI chat completions"),
    ],
)
def test_ask_fails_clearly(index_dir: str, llm: FakeLLM | None, code: int, words: str) -> None:
    if llm is None:
        result = _ask(index_dir, closed_port_url(), "--llm-retries", "0")
    else:
        with fake_llm(llm) as (_llm, url):
            result = _ask(index_dir, url)
    assert result.exit_code == code
    assert words in result.stderr and "Traceback" not in result.stderr


def test_ask_needs_the_llm_options(index_dir: str, tmp_path: Path) -> None:
    result = run_cli("ask", QUESTION, "--index", index_dir)
    assert result.exit_code == 2 and "--llm" in result.stderr


def test_ask_runs_the_pipeline_file(index_dir: str, tmp_path: Path) -> None:
    file = tmp_path / "shortlist.toml"
    file.write_text(
        'version = 1\nk = 20\ntop_n = 2\nreranker = "none"\n\n[first_stage]\nmode = "bm25"\n'
    )
    with fake_llm() as (llm, url):
        result = _ask(index_dir, url, "--pipeline", str(file))
    assert result.exit_code == 0, result.stderr
    assert llm.requests[0]["messages"][0]["content"].count("(doc: ") == 2
    assert (
        "[2] " in result.stdout
        and "[9] NOT IN THE PROMPT: the prompt held passages 1-2" in result.stdout
    )
