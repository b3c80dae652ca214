"""The LLM client, citations, cost and the answer flow, against a loopback chat server."""

from __future__ import annotations

import pytest

from chat_fakes import ANSWER, FakeLLM, closed_port_url, fake_llm
from shortlist.errors import InvalidInputError, ProviderAuthError, ProviderError
from shortlist.generate.answer import Answered, PromptPacked, answer_events
from shortlist.generate.chat import (
    ChatClient,
    ChatConfig,
    Finished,
    LLMUnavailableError,
    NotChatCompletionsError,
    TextDelta,
)
from shortlist.generate.citations import cited_numbers, resolve_citations
from shortlist.generate.cost import Price, Usage
from shortlist.generate.sse import format_event, iter_events
from shortlist.rerank.api.http import RetryPolicy
from shortlist.types import Hit, Ranking

MESSAGES = [{"role": "user", "content": "What do cats do?"}]


def _client(url: str, **kw: object) -> ChatClient:
    config = ChatConfig(url, "fake-model", **kw)  # type: ignore[arg-type]
    return ChatClient(config, sleep=lambda s: None)


def _collect(client: ChatClient) -> tuple[str, Finished]:
    text, finished = "", None
    for event in client.stream(MESSAGES):
        if isinstance(event, TextDelta):
            text += event.text
        else:
            finished = event
    assert finished is not None
    return text, finished


def test_sse_events_join_data_lines_and_skip_comments() -> None:
    lines = [": comment", "event: delta", "data: a", "data: b", "", "data: c", ""]
    assert list(iter_events(lines)) == [("delta", "a\nb"), ("message", "c")]
    assert list(iter_events(format_event("done", "x\ny").splitlines())) == [("done", "x\ny")]
    assert list(iter_events(["data: cut"])) == [("message", "cut")]


def test_citations_resolve_to_prompt_passages_and_flag_others() -> None:
    assert cited_numbers("a [2] b [1, 3][2] c [x] [12]") == [2, 1, 3, 12]
    hits = [Hit("p1", 1.0, 1, doc_id="d1"), Hit("p2", 0.5, 2, doc_id="d2")]
    cites = resolve_citations("see [2] and [1][5]", hits)
    assert [(c.number, c.in_prompt, c.id) for c in cites] == [
        (2, True, "p2"),
        (1, True, "p1"),
        (5, False, None),
    ]


def test_cost_from_usage_and_prices() -> None:
    usage = Usage.from_dict({"prompt_tokens": 1000, "completion_tokens": 500})
    assert usage == Usage(1000, 500, 1500)
    assert Price(2.0, 10.0).cost(usage) == pytest.approx((2000 + 5000) / 1e6)
    assert Usage.from_dict(None) is None and Usage.from_dict({"prompt_tokens": "x"}) is None
    with pytest.raises(InvalidInputError, match="price"):
        Price(-1.0, 0.0)


def test_stream_gives_deltas_usage_and_sends_the_key() -> None:
    with fake_llm() as (llm, url):
        client = _client(url, api_key="sk-secret-123")
        text, finished = _collect(client)
    assert text == ANSWER
    assert finished.reason == "stop"
    assert finished.usage is not None and finished.usage.completion_tokens == len(ANSWER.split())
    assert llm.auth == ["Bearer sk-secret-123"]
    assert llm.requests[0]["stream"] is True
    assert llm.requests[0] == client.request_body(MESSAGES)
    assert "sk-secret" not in repr(client) and "sk-secret" not in repr(client.config)


def test_full_url_and_non_streamed_answer_are_accepted() -> None:
    with fake_llm(FakeLLM(mode="json")) as (_llm, url):
        text, finished = _collect(_client(url + "/chat/completions"))
    assert text == ANSWER and finished.usage is not None


def test_retries_before_the_answer_starts() -> None:
    with fake_llm(FakeLLM(mode="flaky", failures=2)) as (llm, url):
        text, _ = _collect(_client(url, retry=RetryPolicy(max_retries=2)))
    assert text == ANSWER and len(llm.requests) == 3


def test_server_errors_after_retries_name_the_status() -> None:
    with fake_llm(FakeLLM(mode="flaky", failures=9)) as (llm, url):
        with pytest.raises(ProviderError, match=r"HTTP 503\) on all 2 attempts: warming up"):
            _collect(_client(url, retry=RetryPolicy(max_retries=1)))
    assert len(llm.requests) == 2


@pytest.mark.parametrize(
    ("mode", "error", "words"),
    [
        ("html", NotChatCompletionsError, "text/html body instead of an event stream"),
        ("missing", NotChatCompletionsError, "no chat completions endpoint"),
        ("unauthorized", ProviderAuthError, "rejected the API key"),
    ],
)
def test_wrong_endpoints_get_clear_errors(mode: str, error: type, words: str) -> None:
    with fake_llm(FakeLLM(mode=mode)) as (_llm, url):
        with pytest.raises(error, match=words) as info:
            _collect(_client(url, api_key="sk-secret-123"))
    assert "sk-secret" not in str(info.value)


def test_down_endpoint_is_unavailable_after_retries() -> None:
    slept: list[float] = []
    config = ChatConfig(closed_port_url(), "m", retry=RetryPolicy(max_retries=2, base_delay=0.1))
    client = ChatClient(config, sleep=slept.append, rng=lambda: 1.0)
    with pytest.raises(LLMUnavailableError, match="cannot reach the LLM .* start the server"):
        _collect(client)
    assert slept == [0.1, 0.2]


def test_config_checks_url_and_model() -> None:
    with pytest.raises(InvalidInputError, match="http://"):
        ChatConfig("localhost:8000", "m")
    with pytest.raises(InvalidInputError, match="--llm-model"):
        ChatConfig("http://x", " ")


def test_answer_events_pack_stream_and_check_citations() -> None:
    hits = [
        Hit(f"p{i}", 1.0 / i, i, doc_id=f"d{i}", text=f"passage number {i} " * 5)
        for i in range(1, 4)
    ]
    with fake_llm() as (llm, url):
        events = list(
            answer_events("what?", Ranking("what?", hits), _client(url), price=Price(1.0, 2.0))
        )
    assert isinstance(events[0], PromptPacked)
    assert events[0].request["messages"][0]["content"] == events[0].packed.text
    assert llm.requests == [events[0].request]
    done = events[-1]
    assert isinstance(done, Answered)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == done.text == ANSWER
    assert [(c.number, c.id) for c in done.citations] == [(1, "p1"), (2, "p2"), (9, None)]
    assert [c.number for c in done.flagged] == [9]
    assert done.usage is not None and done.cost_usd == Price(1.0, 2.0).cost(done.usage)


def test_a_stream_cut_mid_answer_is_an_error_after_the_text_so_far() -> None:
    seen: list[str] = []
    with fake_llm(FakeLLM(mode="cut")) as (llm, url):
        with pytest.raises(LLMUnavailableError, match="ended before the answer was finished"):
            for event in _client(url).stream(MESSAGES):
                if isinstance(event, TextDelta):
                    seen.append(event.text)
    assert "".join(seen) == "".join(FakeLLM().chunks()[:2])
    assert len(llm.requests) == 1  # never retried once the answer had started
