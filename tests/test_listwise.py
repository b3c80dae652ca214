"""The listwise (RankGPT) reranker: prompt, windows and parsing by hand, then the reranker
against a loopback OpenAI-compatible chat server with scripted, malformed answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api_fakes import OVERLAP_DOCS, OVERLAP_ORDER, OVERLAP_QUERY
from clirun import run_cli
from listwise_fakes import HTML, FakeChatServer, Reply, rank_prompt
from shortlist.errors import (
    InvalidInputError,
    ProviderAuthError,
    ProviderError,
    ProviderTimeoutError,
    SpecError,
)
from shortlist.rerank.api.http import JsonTransport
from shortlist.rerank.api.listwise import (
    SYSTEM_PROMPT,
    ListwiseReranker,
    Repairs,
    build_messages,
    chat_completions_url,
    estimate_prompt_tokens,
    parse_permutation,
    passage_budget,
    plan_windows,
    read_chat_completion,
    reply_budget,
    truncate_tokens,
)
from shortlist.rerank.base import CostEstimate, ReportsCost
from shortlist.rerank.registry import load_reranker, parse_spec
from shortlist.types import Document, Hit

MODEL = "fake-llm"
QUERY = OVERLAP_QUERY
DOCS = OVERLAP_DOCS
EXPECTED = OVERLAP_ORDER


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def server() -> Iterator[FakeChatServer]:
    with FakeChatServer(model=MODEL) as srv:
        yield srv


_OPEN: list[ListwiseReranker] = []


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def make(url: str, **kw: Any) -> ListwiseReranker:
    kw.setdefault("model", MODEL)
    kw.setdefault("sleep", Sleeps())
    kw.setdefault("rng", lambda: 0.5)
    rr = ListwiseReranker(url, **kw)
    _OPEN.append(rr)
    return rr


# ---- the prompt ---------------------------------------------------------------------


def test_truncate_tokens_cuts_at_whole_words_within_the_estimate() -> None:
    assert truncate_tokens("  a  b\n c ", 10) == ("a b c", False)
    # "alpha" 1, "beta," 2 (word + comma), "gamma" 1: a budget of 3 keeps two words
    assert truncate_tokens("alpha beta, gamma", 3) == ("alpha beta,", True)
    assert truncate_tokens("alpha beta, gamma", 2) == ("alpha", True)
    assert truncate_tokens("alpha", 0) == ("", True)


def test_messages_number_the_passages_and_ask_for_a_permutation() -> None:
    messages = build_messages("what is rust", ["Rust is a language.", "Iron oxide."])
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == SYSTEM_PROMPT
    user = messages[1]["content"]
    assert "I will provide you with 2 passages" in user
    assert "\n\n[1] Rust is a language.\n\n[2] Iron oxide.\n\n" in user
    assert user.count("what is rust") == 2  # before the passages and after them
    assert "Rank the 2 passages above" in user
    assert "[] > []" in user and "[2] > [1]" in user
    # the fake server reads its own copy of the protocol back
    assert rank_prompt(user) == ("what is rust", ["Rust is a language.", "Iron oxide."], [1, 2])


def test_token_estimates_add_the_chat_overhead() -> None:
    messages = [{"role": "user", "content": "one two three"}]
    assert estimate_prompt_tokens(messages) == 3 + 4 + 3
    assert reply_budget(20) == 5 * 20 + 16


def test_passage_budget_fills_the_context_and_is_capped() -> None:
    assert passage_budget("q", 20, 1_000_000) == 300
    b = passage_budget("q", 20, 4096)
    frame = estimate_prompt_tokens(build_messages("q", [""] * 20))
    assert b == (4096 - frame - reply_budget(20)) // 20
    assert frame + reply_budget(20) + 20 * b <= 4096 < frame + reply_budget(20) + 20 * (b + 1)


# ---- the sliding window -------------------------------------------------------------


def test_windows_run_bottom_up_and_end_at_the_top() -> None:
    starts = [w.start for w in plan_windows(100, 20, 10)]
    assert starts == [80, 70, 60, 50, 40, 30, 20, 10, 0]
    assert all(len(w) == 20 for w in plan_windows(100, 20, 10))
    # 25 is not 20 + j*10: RankGPT's loop would stop after [5, 25); ours adds the top
    assert plan_windows(25, 20, 10) == [range(5, 25), range(0, 15)]
    assert plan_windows(5, 20, 10) == [range(0, 5)]
    assert plan_windows(20, 20, 20) == [range(0, 20)]
    assert plan_windows(40, 20, 20) == [range(20, 40), range(0, 20)]
    assert plan_windows(0, 20, 10) == []


def test_bad_windows_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="step=30 is larger than window=20"):
        plan_windows(10, 20, 30)
    with pytest.raises(InvalidInputError, match="positive"):
        plan_windows(10, 0, 1)


# ---- the reply ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "order", "repairs"),
    [
        ("[2] > [1] > [3]", (1, 0, 2), Repairs()),
        ("[2]>[1]>[3]", (1, 0, 2), Repairs()),
        ("[2] > [2] > [1] > [3] > [1]", (1, 0, 2), Repairs(duplicate=2)),
        ("[3] > [1]", (2, 0, 1), Repairs(missing=1)),
        ("[4] > [2] > [0] > [1] > [3]", (1, 0, 2), Repairs(out_of_range=2)),
        ("Here is the ranking: [3] > [2] > [1]. Done!", (2, 1, 0), Repairs(extra_text=1)),
        ("3 > 1 > 2", (2, 0, 1), Repairs()),  # no brackets: every number is an id
        ("3, 1, 2", (2, 0, 1), Repairs()),
        ("rank: 2 then 1", (1, 0, 2), Repairs(missing=1, extra_text=1)),
        ("", (0, 1, 2), Repairs(missing=3)),
        ("I cannot rank these.", (0, 1, 2), Repairs(missing=3, extra_text=1)),
        ("<think>[1] looks best, [3] too</think>[3] > [2] > [1]", (2, 1, 0),
         Repairs(extra_text=1)),
        ("<think>[1] is best but I ran out of tokens", (0, 1, 2),
         Repairs(missing=3, extra_text=1)),
        ("[ 2 ] > [1] > [3]", (1, 0, 2), Repairs()),
    ],
)
def test_parse_permutation_repairs_like_rankgpt(reply: str, order: tuple[int, ...],
                                                repairs: Repairs) -> None:
    got = parse_permutation(reply, 3)
    assert got.order == order
    assert got.repairs == repairs
    assert sorted(got.order) == [0, 1, 2]


def test_bracketed_ids_win_over_other_numbers() -> None:
    """RankGPT reads every digit; '20 passages' would then be an id. Ours reads the
    bracketed ids when there are any."""
    got = parse_permutation("Of the 3 passages, the order is [2] > [3] > [1]", 3)
    assert got.order == (1, 2, 0)
    assert got.repairs == Repairs(extra_text=1)


def test_repairs_add_up() -> None:
    total = Repairs(duplicate=1, missing=2) + Repairs(missing=1, extra_text=1)
    assert total.as_dict() == {"duplicate": 1, "out_of_range": 0, "missing": 3, "extra_text": 1}
    assert total.total == 5


def test_read_chat_completion() -> None:
    answer = {
        "choices": [{"message": {"role": "assistant", "content": "[1] > [2]"}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 7},
    }
    reply = read_chat_completion(answer, "http://h/v1/chat/completions")
    assert (reply.content, reply.prompt_tokens, reply.completion_tokens) == ("[1] > [2]", 120, 7)
    none = read_chat_completion({"choices": [{"message": {"content": None}}]}, "u")
    assert (none.content, none.prompt_tokens) == ("", None)
    for bad, what in (
        ([], "not an object"),
        ({"results": []}, "no 'choices'"),
        ({"choices": [{"text": "[1]"}]}, "no 'message'"),
        ({"choices": [{"message": {"content": 3}}]}, "not a string"),
    ):
        with pytest.raises(ProviderError, match=what) as err:
            read_chat_completion(bad, "http://h/v1/chat/completions")
        assert "http://h/v1/chat/completions" in str(err.value)
        assert '"choices"' in str(err.value)


def test_chat_completions_url() -> None:
    assert chat_completions_url("http://h:8000") == "http://h:8000/v1/chat/completions"
    assert chat_completions_url("http://h:8000/") == "http://h:8000/v1/chat/completions"
    assert chat_completions_url("http://h:8000/v1") == "http://h:8000/v1/chat/completions"
    assert chat_completions_url("https://h/v1/chat/completions/") == (
        "https://h/v1/chat/completions"
    )
    with pytest.raises(InvalidInputError, match="http:// or https://"):
        chat_completions_url("localhost:8000")


# ---- construction ---------------------------------------------------------------------


def test_a_window_that_cannot_fit_the_context_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="context of 500 tokens") as err:
        ListwiseReranker("http://127.0.0.1:9", model=MODEL, window=20, context=500)
    assert "?window=" in str(err.value)
    with pytest.raises(InvalidInputError, match="300 tokens each"):
        ListwiseReranker("http://127.0.0.1:9", model=MODEL, passage_tokens=300)
    ok = ListwiseReranker("http://127.0.0.1:9", model=MODEL, window=5, context=1000)
    ok.close()


def test_a_query_too_long_for_the_context_is_an_input_error(server: FakeChatServer) -> None:
    rr = make(server.url, window=4, step=2, context=600)
    with pytest.raises(InvalidInputError, match="and this query"):
        rr.rerank("word " * 400, DOCS)
    assert server.requests == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"model": ""}, "model name"),
        ({"budget": 0}, "budget"),
        ({"price_in": -1.0}, "price_in"),
        ({"context": 0}, "context"),
        ({"passage_tokens": 0}, "passage_tokens"),
        ({"step": 30}, "step=30"),
    ],
)
def test_bad_options_are_refused(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ListwiseReranker("http://127.0.0.1:9", **{"model": MODEL, **kw})


def test_keys_come_from_the_named_environment_variable_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("MY_LLM_KEY", "sk-mine")
    local = ListwiseReranker("http://127.0.0.1:9", model=MODEL)
    assert "authorization" not in {k.lower() for k in local._transport._headers}
    named = ListwiseReranker("http://127.0.0.1:9", model=MODEL, key_env="MY_LLM_KEY")
    assert named._transport._headers["Authorization"] == "Bearer sk-mine"
    openai = ListwiseReranker("https://api.openai.com/v1", model="gpt-4o-mini")
    assert openai._transport._headers["Authorization"] == "Bearer sk-openai"
    monkeypatch.delenv("MY_LLM_KEY")
    with pytest.raises(ProviderAuthError, match="MY_LLM_KEY"):
        ListwiseReranker("http://127.0.0.1:9", model=MODEL, key_env="MY_LLM_KEY")
    for rr in (local, named, openai):
        rr.close()


# ---- against the loopback chat server -----------------------------------------------------


def test_reranks_by_the_models_permutation(server: FakeChatServer) -> None:
    rr = make(server.url)
    assert isinstance(rr, ReportsCost)
    ranking = rr.rerank(QUERY, DOCS)
    assert [h.index for h in ranking] == EXPECTED
    assert [h.score for h in ranking] == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    assert all(h.raw_score == h.score == h.calibrated_score for h in ranking)
    assert len(server.requests) == 1
    body = server.requests[0]
    assert body["model"] == MODEL and body["temperature"] == 0 and body["stream"] is False
    assert body["max_tokens"] == reply_budget(5)
    assert body["messages"] == build_messages(QUERY, DOCS)
    stats = ranking.stats
    assert stats["listwise.windows"] == 1 and stats["listwise.windows_failed"] == 0
    assert stats["listwise.requests"] == 1
    words_in = sum(len(m["content"].split()) for m in body["messages"])
    assert stats["listwise.prompt_tokens"] == words_in  # the server's usage, not an estimate
    assert stats["listwise.completion_tokens"] == len(EXPECTED) * 2 - 1
    assert stats["listwise.repairs.missing"] == 0
    assert stats["listwise.usage_estimated"] == 0
    assert ranking.warnings == ()
    assert [h.index for h in rr.rerank(QUERY, DOCS, top_n=2)] == EXPECTED[:2]


def test_sliding_windows_carry_a_strong_candidate_from_the_bottom_to_the_top(
    server: FakeChatServer,
) -> None:
    query = "solar battery storage"
    docs = [f"filler passage number {i}" for i in range(24)] + ["solar battery storage"]
    docs[3] = "solar storage"  # second best, high in the first-stage list
    rr = make(server.url, window=6, step=3)
    ranking = rr.rerank(query, docs)
    assert [h.index for h in ranking][:2] == [24, 3]
    assert len(server.requests) == len(plan_windows(25, 6, 3))
    # every window held the passages the previous one left at its top
    first = rank_prompt(server.requests[0]["messages"][1]["content"])[1]
    assert first == docs[19:25]
    assert ranking.stats["listwise.windows"] == len(plan_windows(25, 6, 3))


def test_a_single_candidate_needs_no_request(server: FakeChatServer) -> None:
    rr = make(server.url)
    ranking = rr.rerank(QUERY, ["only one"])
    assert [h.score for h in ranking] == [1.0]
    assert server.requests == []


@pytest.mark.parametrize(
    ("content", "order", "repairs"),
    [
        ("[2] > [2] > [5] > [1] > [4] > [3]", [1, 4, 0, 3, 2], {"duplicate": 1}),
        ("[2] > [5]", [1, 4, 0, 2, 3], {"missing": 3}),
        ("[9] > [2] > [0] > [5] > [1] > [4] > [3]", [1, 4, 0, 3, 2], {"out_of_range": 2}),
        ("Sure! Ranking: [2] > [5] > [1] > [4] > [3]", [1, 4, 0, 3, 2], {"extra_text": 1}),
        ("no idea", [0, 1, 2, 3, 4], {"missing": 5, "extra_text": 1}),
    ],
)
def test_malformed_permutations_are_repaired_and_counted(
    server: FakeChatServer, content: str, order: list[int], repairs: dict[str, int]
) -> None:
    server.push(Reply(content=content))
    ranking = make(server.url).rerank(QUERY, DOCS)
    assert [h.index for h in ranking] == order
    for kind in ("duplicate", "out_of_range", "missing", "extra_text"):
        assert ranking.stats[f"listwise.repairs.{kind}"] == repairs.get(kind, 0), kind
    assert ranking.warnings == ()  # a repaired reply is not a failure


def test_server_errors_are_retried_then_succeed(server: FakeChatServer) -> None:
    sleeps = Sleeps()
    server.push(Reply(status=500), Reply(status=503))
    ranking = make(server.url, sleep=sleeps).rerank(QUERY, DOCS)
    assert [h.index for h in ranking] == EXPECTED
    assert len(server.requests) == 3 and len(sleeps) == 2
    assert ranking.stats["listwise.windows_failed"] == 0


def test_a_failed_window_keeps_its_order_and_the_ranking_says_so(
    server: FakeChatServer,
) -> None:
    docs = [*DOCS, "apple", "pie"]  # 7 candidates, windows [3, 7) then [0, 4)
    server.push(Reply(status=500), Reply(status=500))  # the bottom window, tried twice
    ranking = make(server.url, window=4, step=3, max_retries=1).rerank(QUERY, docs)
    # [3, 7) kept "red car", "apple pie", "apple", "pie"; [0, 4) was ranked: 1, 3, 0, 2
    assert [h.index for h in ranking] == [1, 0, 3, 2, 4, 5, 6]
    assert ranking.stats["listwise.windows"] == 2
    assert ranking.stats["listwise.windows_failed"] == 1
    assert ranking.stats["listwise.requests"] == 1
    (warning,) = ranking.warnings
    assert "1 of 2 windows failed" in warning and "window 1 of 2 (ranks 4-7)" in warning
    assert "HTTP 500" in warning


def test_a_timed_out_window_keeps_its_order(server: FakeChatServer) -> None:
    server.push(Reply(delay=0.5))
    ranking = make(server.url, timeout=0.1, max_retries=0).rerank(QUERY, DOCS)
    assert [h.index for h in ranking] == [0, 1, 2, 3, 4]
    assert "no answer from" in ranking.warnings[0] and "0.1 s" in ranking.warnings[0]


def test_the_query_budget_bounds_all_windows(server: FakeChatServer) -> None:
    docs = [*DOCS, "apple", "pie"]
    server.push(Reply(delay=0.6))
    ranking = make(server.url, window=4, step=3, budget=0.2).rerank(QUERY, docs)
    assert [h.index for h in ranking] == list(range(7))  # every window kept its order
    assert ranking.stats["listwise.windows_failed"] == 2
    assert len(server.requests) == 1  # the second window never started
    assert "time budget ran out" in ranking.warnings[0]


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (Reply(raw=HTML, content_type="text/html"), "HTML page"),
        (Reply(body={"results": [{"index": 0, "relevance_score": 1.0}]}), "no 'choices'"),
        (Reply(raw="upstream timed out", content_type="text/plain"), "upstream timed out"),
    ],
)
def test_an_endpoint_that_is_not_a_chat_server_is_a_clear_error(
    server: FakeChatServer, reply: Reply, match: str
) -> None:
    server.push(reply)
    rr = make(server.url)
    with pytest.raises(ProviderError, match=match) as err:
        rr.rerank(QUERY, DOCS)
    assert f"{server.url}/v1/chat/completions" in str(err.value)
    assert "chat-completions" in str(err.value) or "chat completion" in str(err.value)
    assert len(server.requests) == 1  # not retried


def test_an_unknown_model_or_path_fails_the_query(server: FakeChatServer) -> None:
    with pytest.raises(ProviderError, match="does not exist"):
        make(server.url, model="other").rerank(QUERY, DOCS)
    with pytest.raises(ProviderError, match="404"):
        make(server.url + "/v1/chat/completions/x").rerank(QUERY, DOCS)


def test_a_rejected_key_fails_the_query() -> None:
    with FakeChatServer(api_key="right", model=MODEL) as srv:
        with pytest.raises(ProviderAuthError, match="401"):
            make(srv.url, api_key="wrong").rerank(QUERY, DOCS)
        assert [h.index for h in make(srv.url, api_key="right").rerank(QUERY, DOCS)] == EXPECTED


def test_cost_is_the_servers_usage_and_priced_from_the_spec(server: FakeChatServer) -> None:
    rr = make(server.url, window=4, step=2, price_in=2.0, price_out=8.0)
    docs = [*DOCS, "apple", "pie"]
    before = rr.cost_units(QUERY, docs)  # an estimate: no request yet
    assert before.requests == len(plan_windows(7, 4, 2)) and before.tokens > 0
    assert server.requests == []
    ranking = rr.rerank(QUERY, docs)
    cost = rr.cost_units(QUERY, docs)
    prompt = ranking.stats["listwise.prompt_tokens"]
    completion = ranking.stats["listwise.completion_tokens"]
    words_in = sum(len(m["content"].split()) for b in server.requests for m in b["messages"])
    assert prompt == words_in
    assert cost == CostEstimate(
        requests=len(server.requests),
        tokens=int(prompt + completion),
        usd=pytest.approx((prompt * 2.0 + completion * 8.0) / 1e6),
    )
    assert make(server.url).cost_units(QUERY, docs).usd is None  # no prices given
    assert rr.cost_units(QUERY, []) == CostEstimate(requests=0)


def test_replies_without_usage_are_estimated(server: FakeChatServer) -> None:
    server.push(Reply(content="[2] > [5] > [1] > [4] > [3]", usage=False))
    ranking = make(server.url).rerank(QUERY, DOCS)
    assert ranking.stats["listwise.prompt_tokens"] == estimate_prompt_tokens(
        build_messages(QUERY, DOCS)
    )
    assert ranking.stats["listwise.usage_estimated"] == 1


def test_candidates_of_every_kind_keep_their_ids(server: FakeChatServer) -> None:
    hits = [Hit(id=f"p{i}", doc_id=f"d{i}", text=t, score=9 - i, rank=i + 1)
            for i, t in enumerate(DOCS)]
    ranking = make(server.url).rerank(QUERY, hits)
    assert ranking.ids == [f"p{i}" for i in EXPECTED]
    assert [h.first_stage_rank for h in ranking] == [i + 1 for i in EXPECTED]
    docs = [Document(id=f"d{i}", text=t) for i, t in enumerate(DOCS)]
    assert make(server.url).rerank(QUERY, docs).ids == [f"d{i}" for i in EXPECTED]


def test_long_passages_are_cut_to_the_passage_budget(server: FakeChatServer) -> None:
    long = "apple " * 500
    ranking = make(server.url, passage_tokens=50).rerank(QUERY, [long, "pie"])
    sent = rank_prompt(server.requests[0]["messages"][1]["content"])[1]
    assert sent == [" ".join(["apple"] * 50), "pie"]
    assert ranking.stats["listwise.passages_truncated"] == 1


# ---- the transport's deadline ---------------------------------------------------------------


def test_the_transport_gives_up_at_the_deadline(server: FakeChatServer) -> None:
    import time

    with httpx.Client() as client:
        transport = JsonTransport("listwise", client=client)
        with pytest.raises(ProviderTimeoutError, match="time budget"):
            transport.post_json(server.url, {}, deadline=time.monotonic() - 1)
        assert server.requests == []
        # a retry that would sleep past the deadline is not made
        server.push(Reply(status=500))
        slept = Sleeps()
        transport = JsonTransport("listwise", client=client, sleep=slept, rng=lambda: 1.0)
        with pytest.raises(ProviderError, match="HTTP 500"):
            transport.post_json(server.url + "/v1/chat/completions", {"messages": []},
                                deadline=time.monotonic() + 0.2)
        assert slept == [] and len(server.requests) == 1


# ---- spec, CLI, server, eval ------------------------------------------------------------------


def test_spec_parameters() -> None:
    spec = parse_spec(
        "listwise:http://localhost:8000/v1?model=Qwen/Qwen2.5-7B-Instruct&window=20&step=10"
        "&context=32768&budget=30&timeout=10&retries=2&key_env=VLLM_KEY&price_in=0.1&price_out=0.4"
    )
    assert spec.target == "http://localhost:8000/v1"
    assert dict(spec.params) == {
        "model": "Qwen/Qwen2.5-7B-Instruct", "window": 20, "step": 10, "context": 32768,
        "budget": 30.0, "timeout": 10.0, "retries": 2, "key_env": "VLLM_KEY",
        "price_in": 0.1, "price_out": 0.4,
    }
    with pytest.raises(SpecError, match="unknown parameter 'api_key'"):
        parse_spec("listwise:http://h?model=m&api_key=sk-secret")
    with pytest.raises(SpecError, match="window"):
        parse_spec("listwise:http://h?model=m&window=0")
    with pytest.raises(SpecError, match="needs a target"):
        parse_spec("listwise:")


def test_load_reranker_builds_it_from_the_spec(server: FakeChatServer) -> None:
    spec = f"listwise:{server.url}/v1?model={MODEL}&window=4&step=2&timeout=5&retries=0"
    rr = load_reranker(spec)
    assert isinstance(rr, ListwiseReranker)
    _OPEN.append(rr)
    assert rr.name == str(parse_spec(spec))
    assert (rr.window, rr.step, rr._transport.timeout, rr._transport.retry.max_retries) == (
        4, 2, 5.0, 0
    )
    assert [h.index for h in rr.rerank(QUERY, DOCS)][:1] == [1]
    with pytest.raises(InvalidInputError, match="model name"):
        load_reranker(f"listwise:{server.url}")


def _docs_file(tmp_path: Path) -> Path:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n"
                            for i, t in enumerate(DOCS)))
    return path


def test_cli_rerank_json(server: FakeChatServer, tmp_path: Path) -> None:
    spec = f"listwise:{server.url}?model={MODEL}"
    r = run_cli("rerank", QUERY, "--model", spec, "--docs", str(_docs_file(tmp_path)), "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert [x["id"] for x in out["results"]] == [f"d{i}" for i in EXPECTED]
    assert out["results"][0]["score"] == 1.0
    assert out["stats"]["listwise.requests"] == 1
    assert "warnings" not in out

    server.push(Reply(status=500))
    r = run_cli("rerank", QUERY, "--model", spec + "&retries=0", "--docs",
                str(_docs_file(tmp_path)), "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert [x["id"] for x in out["results"]] == [f"d{i}" for i in range(5)]
    assert "1 of 1 windows failed" in out["warnings"][0]
    assert "warning: listwise: 1 of 1 windows failed" in r.stderr


def test_cli_names_an_html_endpoint(server: FakeChatServer, tmp_path: Path) -> None:
    server.push(Reply(raw=HTML, content_type="text/html"))
    spec = f"listwise:{server.url}?model={MODEL}"
    r = run_cli("rerank", QUERY, "--model", spec, "--docs", str(_docs_file(tmp_path)))
    assert r.exit_code == 5
    assert "HTML page" in r.stderr and f"{server.url}/v1/chat/completions" in r.stderr


def test_served_v2_rerank_by_name_reports_failed_windows(server: FakeChatServer) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from shortlist.serve.app import ServeConfig, create_app

    rr = make(server.url, max_retries=0)
    app = create_app(ServeConfig(), {"rankgpt": rr})
    with TestClient(app) as client:
        body = {"model": "rankgpt", "query": QUERY, "documents": DOCS}
        ok = client.post("/v2/rerank", json=body)
        assert ok.status_code == 200, ok.text
        assert [r["index"] for r in ok.json()["results"]] == EXPECTED
        assert not ok.json()["meta"].get("warnings")
        server.push(Reply(status=502))
        degraded = client.post("/v2/rerank", json=body)
        assert degraded.status_code == 200, degraded.text
        assert [r["index"] for r in degraded.json()["results"]] == [0, 1, 2, 3, 4]
        assert "windows failed" in degraded.json()["meta"]["warnings"][0]
        server.push(Reply(raw=HTML, content_type="text/html"))
        broken = client.post("/v2/rerank", json=body)
        assert broken.status_code == 502
        assert "HTML page" in broken.json()["message"]


def test_eval_runs_it_beside_other_rerankers_with_cost_and_repairs(
    server: FakeChatServer, tmp_path: Path
) -> None:
    from tiny_beir import write_tiny_beir

    data = write_tiny_beir(tmp_path / "data")
    spec = f"listwise:{server.url}/v1?model={MODEL}&window=4&step=2&price_in=1000&price_out=1000"
    server.push(Reply(content="[1] > [1] > [9]"))  # the first window's reply needs repairs
    js = tmp_path / "r.json"
    r = run_cli(
        "eval", str(data), "--model", "hashing:64", "--cache-dir", str(tmp_path / "c"),
        "--pipeline", "bm25", "--pipeline", "bi=bm25+bi-encoder:hashing:64",
        "--pipeline", f"llm=bm25+{spec}", "-k", "6", "--json", str(js),
    )
    assert r.exit_code == 0, r.stderr
    rows = {row["pipeline"]: row for row in json.loads(js.read_text())["summary"]}
    assert set(rows) == {"bm25", "bi", "llm"}
    assert rows["bi"]["cost_per_1k_queries_usd"] is None
    # every request's usage, priced at $1000 per 1M tokens = $0.001 per token
    words = sum(len(m["content"].split()) for b in server.requests for m in b["messages"])
    stats = rows["llm"]["reranker_stats"]
    assert stats["listwise.prompt_tokens"] == words
    tokens = stats["listwise.prompt_tokens"] + stats["listwise.completion_tokens"]
    n_queries = json.loads(js.read_text())["n_queries"]
    assert rows["llm"]["cost_per_1k_queries_usd"] == pytest.approx(tokens * 1e-3 / n_queries * 1e3)
    assert stats["listwise.repairs.duplicate"] == 1 and stats["listwise.repairs.out_of_range"] == 1
    assert "llm k=6: reranker reported" in r.stdout + r.stderr
    assert "listwise.repairs.duplicate=1" in r.stdout + r.stderr
    assert rows["llm"]["ndcg@10"] > 0


def test_the_readme_commands_name_valid_specs() -> None:
    """The README's vLLM / llama.cpp / Ollama commands cannot run here; their specs can be
    built (no request is sent)."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    specs = re.findall(r'"(?:llm=bm25\+)?(listwise:[^"]+)"', readme)
    assert len(specs) >= 3
    for spec in specs:
        rr = load_reranker(spec)
        assert isinstance(rr, ListwiseReranker)
        rr.close()


def test_pipeline_and_cascade_carry_the_stats_and_warnings(
    server: FakeChatServer, tmp_path: Path
) -> None:
    from shortlist.pipeline import Pipeline
    from shortlist.retrieve.stages import first_stage
    from shortlist.store.index import Index

    index = Index.create(tmp_path / "i", [Document(f"d{i}", t) for i, t in enumerate(DOCS)],
                         dense=False)
    spec = f"listwise:{server.url}?model={MODEL}&retries=0"
    rr = load_reranker(spec)
    _OPEN.append(rr)
    pipeline = Pipeline(first_stage(index, "bm25"), rr, k=5, top_n=2)
    server.push(Reply(status=500))
    ranking = pipeline.run("apple pie")
    assert len(ranking) == 2
    assert ranking.stats["listwise.windows_failed"] == 1
    assert "windows failed" in ranking.warnings[0]
    assert ranking.to_dict()["warnings"] == list(ranking.warnings)
    assert ranking.to_dict()["stats"]["listwise.windows"] == 1

    cascade = load_reranker(f"cascade:bi-encoder:hashing:64>4>{spec}")
    server.push(Reply(content="[1] > [1]"))
    both = cascade.rerank(QUERY, DOCS)
    assert len(both) == 4
    assert both.stats["listwise.repairs.duplicate"] == 1
    assert both.stats["listwise.repairs.missing"] == 3
    from shortlist.rerank.base import close_reranker

    close_reranker(cascade)


def test_plain_rankings_have_no_stats_in_their_dict() -> None:
    from shortlist.types import Ranking

    assert set(Ranking("q").to_dict()) == {"query", "results", "timings_ms"}


def test_served_search_reports_failed_windows(server: FakeChatServer, tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from shortlist.serve.app import ServeConfig, create_app
    from shortlist.store.index import Index

    index = Index.create(tmp_path / "i", [Document(f"d{i}", t) for i, t in enumerate(DOCS)],
                         dense=False)
    app = create_app(ServeConfig(), {"rankgpt": make(server.url, max_retries=0)}, index)
    with TestClient(app) as client:
        ok = client.post("/v1/search", json={"query": "apple pie", "k": 5, "mode": "bm25"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["warnings"] is None
        server.push(Reply(status=500))
        degraded = client.post("/v1/search", json={"query": "apple pie", "k": 5, "mode": "bm25"})
        assert "windows failed" in degraded.json()["warnings"][0]
