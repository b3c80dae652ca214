"""Listwise reranking with an instruction-following LLM (RankGPT), over `/v1/chat/completions`.

The method is RankGPT's (Sun et al., "Is ChatGPT Good at Search? Investigating Large
Language Models as Re-Ranking Agents", EMNLP 2023, arXiv:2304.09542, and its reference
code github.com/sunnweiwei/RankGPT):

1. **Prompt** (`build_messages`): a system message, then one user message that numbers
   the window's passages ``[1]`` .. ``[m]`` between the query and the instruction to answer
   with a permutation like ``[2] > [1] > [3]``. Each passage is cut to a per-passage token
   budget (`truncate_tokens`).
2. **Sliding window** (`plan_windows`): windows of `window` candidates, moved `step`
   candidates at a time from the bottom of the first-stage list to the top, so strong
   candidates found low in the list are carried up (each window passes its best
   ``window - step`` on to the next one). The last window always starts at the top.
3. **Parsing** (`parse_permutation`): the reply's ids are read, and the reply repaired
   the way RankGPT's `receive_permutation` does: duplicates dropped, ids outside
   ``1..m`` ignored, text around the ids ignored, and ids the model left out appended in
   their current order. Every repair is counted (`Repairs`).

Every request is one chat completion with ``temperature=0``, through the shared HTTP
transport (`shortlist.rerank.api.http`: timeouts, retries with back-off, typed errors).
A window whose request fails after its retries (timeout, 5xx, 429, a rejected request,
the per-query time budget spent) keeps the order it had, and the ranking says so in
`Ranking.warnings` and `Ranking.stats`; the query itself does not fail. A reply that is
not a chat completion at all (an HTML page, other JSON), a wrong path or model (404) and
a rejected key fail the query: those are set-up errors every window would repeat.

Scores: a listwise model returns an order, not scores. Both `raw_score` and
`calibrated_score` are ``1 / rank`` in the final order, as for the `none` reranker: in
(0, 1], strictly decreasing, the same for every query. It is a position weight, not a
relevance probability; do not threshold it as one.

Cost: each reply's ``usage`` (``prompt_tokens``, ``completion_tokens``) is summed per
query into `Ranking.stats`, and `cost_units` returns what the last reranking of the same
query and candidates actually used (an estimate before any call). With prices in the
spec (``price_in``/``price_out``, USD per million tokens) `CostEstimate.usd` is the money.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Unpack
from urllib.parse import urlsplit

import numpy as np

from shortlist.corpus.tokenizer import estimate_tokens
from shortlist.errors import InvalidInputError, ProviderAuthError, ProviderError
from shortlist.rerank.api.base import (
    ApiReranker,
    CostEstimate,
    TransportOptions,
    resolve_api_key,
)
from shortlist.rerank.base import Candidate, build_ranking, candidate_text
from shortlist.types import Ranking

SYSTEM_PROMPT = (
    "You are RankGPT, an intelligent assistant that can rank passages based on their "
    "relevancy to the query."
)

DEFAULT_WINDOW = 20
DEFAULT_CONTEXT = 4096  # tokens; llama.cpp server's and Ollama's usual context size
MAX_PASSAGE_TOKENS = 300  # RankGPT's starting per-passage length
MIN_PASSAGE_TOKENS = 16  # below this a passage says too little to be ranked
MESSAGE_OVERHEAD_TOKENS = 4  # chat-template tokens around each message's content
REPLY_PRIMING_TOKENS = 3  # tokens that open the assistant's reply
_ID_TOKENS = 4  # "[12] " or "[12] > ": bracket, digits, bracket, separator
_MEMO_SIZE = 1024  # measured usage remembered for cost_units, most recent first

_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)
_BRACKETED = re.compile(r"\[\s*(\d+)\s*\]")
_NUMBER = re.compile(r"\d+")
_SEPARATORS = re.compile(r"[\s>,]+")
_WORD = re.compile(r"\S+")


# ---- the prompt ----------------------------------------------------------------


def truncate_tokens(text: str, budget: int) -> tuple[str, bool]:
    """`text` with whitespace collapsed, cut after the last whole word that keeps its
    estimated token count (`estimate_tokens`) within `budget`; and whether it was cut."""
    words = _WORD.findall(text)
    used = 0
    for i, word in enumerate(words):
        used += estimate_tokens(word)
        if used > budget:
            return " ".join(words[:i]), True
    return " ".join(words), False


def _intro(query: str, n: int) -> str:
    return (
        f"I will provide you with {n} passages, each indicated by a numerical identifier []. "
        f"Rank the passages based on their relevance to the search query: {query}."
    )


def _instruction(query: str, n: int) -> str:
    return (
        f"Search Query: {query}.\n"
        f"Rank the {n} passages above based on their relevance to the search query. "
        "List all of them, in descending order of relevance, by their identifiers; the most "
        "relevant first. The output format should be [] > [], e.g., [2] > [1]. "
        "Only respond with the ranking results, do not say any word or explain."
    )


def build_messages(query: str, passages: Sequence[str]) -> list[dict[str, str]]:
    """The chat messages asking to rank `passages` (already truncated) for `query`.

    A system message and one user message: the task, the passages numbered ``[1]`` ..
    ``[n]`` one per paragraph, then the query again and the output format.
    """
    n = len(passages)
    numbered = "\n\n".join(f"[{i}] {p}" for i, p in enumerate(passages, start=1))
    user = f"{_intro(query, n)}\n\n{numbered}\n\n{_instruction(query, n)}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def estimate_prompt_tokens(messages: Sequence[Mapping[str, str]]) -> int:
    """Estimated prompt tokens of chat `messages`: contents plus the chat template's
    per-message overhead and reply priming (the accounting of OpenAI's cookbook)."""
    content = sum(estimate_tokens(m["content"]) for m in messages)
    return content + MESSAGE_OVERHEAD_TOKENS * len(messages) + REPLY_PRIMING_TOKENS


def reply_budget(n: int) -> int:
    """`max_tokens` asked for a permutation of `n` ids: room for ``[i] > `` each, and slack."""
    return (_ID_TOKENS + 1) * n + 16


def passage_budget(query: str, window: int, context: int) -> int:
    """The most estimated tokens each of `window` passages may have so that the prompt
    and the reply fit in `context` tokens, capped at `MAX_PASSAGE_TOKENS`."""
    frame = estimate_prompt_tokens(build_messages(query, [""] * window))
    room = context - frame - reply_budget(window)
    return min(MAX_PASSAGE_TOKENS, room // window if window else MAX_PASSAGE_TOKENS)


# ---- the sliding window ----------------------------------------------------------


def plan_windows(n: int, window: int, step: int) -> list[range]:
    """Positions of each window over a list of `n` candidates, in the order they run.

    Bottom up: the first window ends at the bottom (`n`), each next one ends `step`
    positions higher, and the last one starts at the top (0). With ``n <= window`` there
    is one window over everything. Unlike RankGPT's loop, a list whose length is not
    ``window + j * step`` still gets a window at the top.
    """
    if window < 1 or step < 1:
        raise InvalidInputError("window and step must be positive integers")
    if step > window:
        raise InvalidInputError(
            f"step={step} is larger than window={window}; candidates between windows would "
            "never be compared. Use a step no larger than the window, e.g. step=window/2"
        )
    if n <= 0:
        return []
    windows = []
    end = n
    while True:
        start = max(0, end - window)
        windows.append(range(start, end))
        if start == 0:
            return windows
        end -= step


# ---- the reply -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Repairs:
    """What had to be repaired in replies (summed over windows).

    - `duplicate`: ids given again after their first mention (dropped);
    - `out_of_range`: ids outside ``1..n`` (ignored);
    - `missing`: ids the reply left out (appended in their current order);
    - `extra_text`: replies with anything besides ids and ``>`` separators (ignored).
    """

    duplicate: int = 0
    out_of_range: int = 0
    missing: int = 0
    extra_text: int = 0

    def __add__(self, other: Repairs) -> Repairs:
        return Repairs(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def total(self) -> int:
        return sum(self.as_dict().values())


@dataclass(frozen=True, slots=True)
class Permutation:
    """A parsed reply: `order` is a full permutation of ``0..n-1`` (best first)."""

    order: tuple[int, ...]
    repairs: Repairs


def parse_permutation(reply: str, n: int) -> Permutation:
    """The permutation of `n` passages a model's `reply` gives, repaired (module docstring).

    Ids are 1-based in the reply and 0-based in `order`. Bracketed ids (``[3]``) are read
    when the reply has any; otherwise every number is an id, as RankGPT's
    `clean_response` reads them. A reasoning model's ``<think>...</think>`` block is
    skipped (it mentions ids that are not the answer) and counts as extra text.
    """
    text = _THINK.sub(" ", reply)
    extra = text != reply
    bracketed = _BRACKETED.findall(text)
    if bracketed:
        ids = [int(x) for x in bracketed]
        residue = _SEPARATORS.sub("", _BRACKETED.sub("", text))
    else:
        ids = [int(x) for x in _NUMBER.findall(text)]
        residue = _SEPARATORS.sub("", _NUMBER.sub("", text))
    extra = extra or bool(residue)
    seen: set[int] = set()
    order: list[int] = []
    duplicate = out_of_range = 0
    for i in ids:
        if not 1 <= i <= n:
            out_of_range += 1
        elif i - 1 in seen:
            duplicate += 1
        else:
            seen.add(i - 1)
            order.append(i - 1)
    missing = [i for i in range(n) if i not in seen]
    repairs = Repairs(
        duplicate=duplicate, out_of_range=out_of_range, missing=len(missing), extra_text=int(extra)
    )
    return Permutation(tuple(order + missing), repairs)


@dataclass(frozen=True, slots=True)
class ChatReply:
    """One chat completion: the text, and its usage (None when the server sent none)."""

    content: str
    prompt_tokens: int | None
    completion_tokens: int | None


def read_chat_completion(answer: Any, url: str) -> ChatReply:
    """The first choice's message text and the usage of an OpenAI chat-completions answer.

    Raises `ProviderError` naming `url` when `answer` is not one.
    """

    def wrong(what: str) -> ProviderError:
        return ProviderError(
            f"listwise: {url} answered JSON that is not a chat completion ({what}); expected "
            f"{_EXPECTED}. Is the URL the server's OpenAI-compatible base, e.g. "
            "http://localhost:8000/v1?",
            provider="listwise",
            status=200,
        )

    if not isinstance(answer, dict):
        raise wrong(f"a JSON {type(answer).__name__}, not an object")
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices:
        raise wrong("no 'choices' list")
    first = choices[0]
    message = first.get("message") if isinstance(first, dict) else None
    if not isinstance(message, dict):
        raise wrong("choices[0] has no 'message' object")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise wrong("choices[0].message.content is not a string")
    usage = answer.get("usage")
    prompt = completion = None
    if isinstance(usage, dict):
        prompt = _count(usage.get("prompt_tokens"))
        completion = _count(usage.get("completion_tokens"))
    return ChatReply(content or "", prompt, completion)


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


_EXPECTED = '{"choices": [{"message": {"content": "[2] > [1] ..."}}], "usage": {...}}'


# ---- the reranker ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Usage:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: int = 0  # replies without `usage`, whose tokens are estimates


def chat_completions_url(url: str) -> str:
    """The chat-completions endpoint of `url`: kept when it already ends with
    ``/chat/completions``, ``URL/chat/completions`` when it ends with ``/v1``, else
    ``URL/v1/chat/completions``."""
    if not url.startswith(("http://", "https://")):
        raise InvalidInputError(
            f"listwise URL {url!r} must start with http:// or https://, "
            "e.g. listwise:http://localhost:8000/v1?model=NAME"
        )
    base = url.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    if base.endswith("/v1"):
        return base + "/chat/completions"
    return base + "/v1/chat/completions"


class ListwiseReranker(ApiReranker):
    """RankGPT-style listwise reranking through an OpenAI-compatible chat endpoint.

    `url` is the server (``http://localhost:8000``), its ``/v1`` base, or the full
    ``.../v1/chat/completions`` endpoint (vLLM, llama.cpp server, Ollama, OpenAI). Options
    besides `TransportOptions`:

    - `model`: the served model name (required; the ``model`` field of each request);
    - `window`, `step`: the sliding window (default 20, and half the window; ``step <=
      window``);
    - `context`: the model's context length in tokens (default 4096); a window whose
      prompt and reply cannot fit is refused with `InvalidInputError`;
    - `passage_tokens`: estimated tokens kept per passage (default: as many as fit the
      context, at most 300);
    - `budget`: seconds per query for all its windows, retries included (default none);
      windows that would start after it keep their order;
    - `api_key`, or `key_env` (an environment variable holding the key); without either
      no key is sent, except to api.openai.com, which gets ``OPENAI_API_KEY``;
    - `price_in`, `price_out`: USD per million prompt / completion tokens, for
      `cost_units` (default: none, so `CostEstimate.usd` is None).

    Raises `InvalidInputError` for bad options, `ProviderAuthError` for a missing key.
    """

    provider = "listwise"
    expects = f"an OpenAI chat-completions JSON object {_EXPECTED}"

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        window: int = DEFAULT_WINDOW,
        step: int | None = None,
        context: int = DEFAULT_CONTEXT,
        passage_tokens: int | None = None,
        budget: float | None = None,
        api_key: str | None = None,
        key_env: str | None = None,
        price_in: float | None = None,
        price_out: float | None = None,
        **options: Unpack[TransportOptions],
    ) -> None:
        endpoint = chat_completions_url(url)
        if not model:
            raise InvalidInputError(
                "listwise needs the served model name: add ?model=NAME to the spec, e.g. "
                f"listwise:{url}?model=Qwen/Qwen2.5-7B-Instruct"
            )
        step = max(1, window // 2) if step is None else step
        plan_windows(1, window, step)  # validates window and step
        if context < 1:
            raise InvalidInputError("context must be a positive number of tokens")
        if passage_tokens is not None and passage_tokens < 1:
            raise InvalidInputError("passage_tokens must be a positive number of tokens")
        if budget is not None and not budget > 0:
            raise InvalidInputError("budget must be > 0 seconds per query")
        for name, price in (("price_in", price_in), ("price_out", price_out)):
            if price is not None and not (price >= 0 and math.isfinite(price)):
                raise InvalidInputError(f"{name} must be a price >= 0 (USD per 1M tokens)")
        self.model = model
        self.window = window
        self.step = step
        self.context = context
        self.passage_tokens = passage_tokens
        self.budget = budget
        self.price_in = price_in
        self.price_out = price_out
        self.url = endpoint
        self._passage_budget("")  # refuse a window that cannot fit, before any request
        key = self._key(endpoint, api_key, key_env)
        super().__init__(default_name=f"listwise:{url}?model={model}", api_key=key, **options)
        self._memo: OrderedDict[tuple[str, tuple[str, ...]], _Usage] = OrderedDict()
        self._memo_lock = threading.Lock()

    @staticmethod
    def _key(endpoint: str, api_key: str | None, key_env: str | None) -> str | None:
        if api_key or key_env:
            return resolve_api_key(api_key, (key_env,) if key_env else (), "listwise")
        if urlsplit(endpoint).hostname == "api.openai.com":
            return resolve_api_key(None, ("OPENAI_API_KEY",), "listwise")
        return None

    # -- budgets ----------------------------------------------------------------------

    def _passage_budget(self, query: str) -> int:
        """Tokens per passage for `query`; `InvalidInputError` when the window cannot fit."""
        room = passage_budget(query, self.window, self.context)
        wanted = self.passage_tokens if self.passage_tokens is not None else room
        if room < MIN_PASSAGE_TOKENS or wanted > room:
            each = max(wanted, MIN_PASSAGE_TOKENS)
            frame = estimate_prompt_tokens(build_messages(query, [""] * self.window))
            need = frame + reply_budget(self.window) + self.window * each
            raise InvalidInputError(
                f"listwise: a window of {self.window} passages at {each} tokens each needs "
                f"about {need} tokens with the instructions"
                + (" and this query" if query else "")
                + f" and the reply, more than the model's context of {self.context} tokens; "
                "use a smaller ?window= (and ?step=), fewer ?passage_tokens=, or set "
                "?context= to the context length the server was started with"
            )
        return wanted

    # -- reranking --------------------------------------------------------------------

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        """Rerank with sliding windows of chat completions (module docstring).

        `Ranking.stats` holds ``listwise.*`` counters: ``windows``, ``windows_failed``,
        ``requests``, ``prompt_tokens``, ``completion_tokens``, ``usage_estimated`` (replies
        without ``usage``, whose tokens were estimated), ``passages_truncated`` and one
        ``repairs.KIND`` per `Repairs` field; `Ranking.warnings` says which windows
        failed and why.
        """
        started = time.perf_counter()
        docs, texts = self._checked_candidates(query, documents, top_n)
        if not docs:
            return Ranking(query=query, hits=(), timings_ms={"rerank": 0.0})
        per_passage = self._passage_budget(query)
        cut = [truncate_tokens(t, per_passage) for t in texts]
        passages = [p for p, _ in cut]
        deadline = None if self.budget is None else time.monotonic() + self.budget

        order = list(range(len(docs)))
        windows = plan_windows(len(docs), self.window, self.step)
        repairs = Repairs()
        usage = _Usage()
        failures: list[str] = []
        for number, span in enumerate(windows, start=1):
            members = order[span.start : span.stop]
            if len(members) < 2:
                continue  # nothing to order
            messages = build_messages(query, [passages[i] for i in members])
            try:
                reply = self._chat(messages, len(members), deadline)
            except ProviderError as exc:
                if _fatal(exc):
                    raise
                where = f"window {number} of {len(windows)} (ranks {span.start + 1}-{span.stop})"
                failures.append(f"{where}: {exc}")
                continue
            usage = _Usage(
                usage.requests + 1,
                usage.prompt_tokens + _or(reply.prompt_tokens, estimate_prompt_tokens(messages)),
                usage.completion_tokens
                + _or(reply.completion_tokens, estimate_tokens(reply.content)),
                usage.estimated + (reply.prompt_tokens is None or reply.completion_tokens is None),
            )
            permutation = parse_permutation(reply.content, len(members))
            repairs = repairs + permutation.repairs
            order[span.start : span.stop] = [members[p] for p in permutation.order]

        self._remember(query, texts, usage)
        scores = np.empty(len(docs))
        scores[order] = 1.0 / np.arange(1, len(docs) + 1, dtype=np.float64)
        elapsed = (time.perf_counter() - started) * 1000.0
        ranking = build_ranking(query, docs, scores, scores, top_n, timings_ms={"rerank": elapsed})
        stats: dict[str, float] = {
            "listwise.windows": float(len(windows)),
            "listwise.windows_failed": float(len(failures)),
            "listwise.requests": float(usage.requests),
            "listwise.prompt_tokens": float(usage.prompt_tokens),
            "listwise.completion_tokens": float(usage.completion_tokens),
            "listwise.usage_estimated": float(usage.estimated),
            "listwise.passages_truncated": float(sum(truncated for _, truncated in cut)),
            **{f"listwise.repairs.{k}": float(v) for k, v in repairs.as_dict().items()},
        }
        warnings: tuple[str, ...] = ()
        if failures:
            shown = "; ".join(failures[:3]) + ("; ..." if len(failures) > 3 else "")
            warnings = (
                f"listwise: {len(failures)} of {len(windows)} windows failed and kept their "
                f"previous order: {shown}",
            )
        return Ranking(
            query=ranking.query,
            hits=ranking.hits,
            timings_ms=ranking.timings_ms,
            stats=stats,
            warnings=warnings,
        )

    def _chat(
        self, messages: list[dict[str, str]], n: int, deadline: float | None
    ) -> ChatReply:
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": reply_budget(n),
            "stream": False,
        }
        return read_chat_completion(self._post(self.url, body, deadline=deadline), self.url)

    # -- cost -------------------------------------------------------------------------

    def _remember(self, query: str, texts: Sequence[str], usage: _Usage) -> None:
        key = (query, tuple(texts))
        with self._memo_lock:
            self._memo[key] = usage
            self._memo.move_to_end(key)
            while len(self._memo) > _MEMO_SIZE:
                self._memo.popitem(last=False)

    def cost_units(self, query: str, documents: Sequence[Candidate]) -> CostEstimate:
        """What reranking `documents` for `query` costs: the tokens the server reported
        (``usage``) when this reranker has just reranked exactly these, else an estimate
        (every window's estimated prompt and a full reply). No request is sent."""
        texts = [candidate_text(c) for c in documents]
        if not texts:
            return CostEstimate(requests=0)
        with self._memo_lock:
            used = self._memo.get((query, tuple(texts)))
        if used is None:
            used = self._estimate(query, texts)
        return CostEstimate(
            requests=used.requests,
            tokens=used.prompt_tokens + used.completion_tokens,
            usd=self._usd(used),
        )

    def _estimate(self, query: str, texts: Sequence[str]) -> _Usage:
        per_passage = self._passage_budget(query)
        passages = [truncate_tokens(t, per_passage)[0] for t in texts]
        total = _Usage()
        for span in plan_windows(len(texts), self.window, self.step):
            if len(span) < 2:
                continue
            # Which passages a window holds depends on earlier replies; the sizes of the
            # first-stage ones are the best guess before asking.
            messages = build_messages(query, passages[span.start : span.stop])
            total = _Usage(
                total.requests + 1,
                total.prompt_tokens + estimate_prompt_tokens(messages),
                total.completion_tokens + _ID_TOKENS * len(span),
            )
        return total

    def _usd(self, used: _Usage) -> float | None:
        if self.price_in is None and self.price_out is None:
            return None
        return (
            used.prompt_tokens * (self.price_in or 0.0)
            + used.completion_tokens * (self.price_out or 0.0)
        ) / 1_000_000


def _or(measured: int | None, estimated: int) -> int:
    return estimated if measured is None else measured


def _fatal(exc: ProviderError) -> bool:
    """Errors every window would repeat: a rejected key, a wrong path or model (404/405),
    an answer that is not a chat completion. The others fail one window."""
    if isinstance(exc, ProviderAuthError):
        return True
    return exc.status is not None and (200 <= exc.status < 300 or exc.status in (404, 405))
