"""What every hosted reranker shares: keys, request splitting, score merging, cost.

A provider subclass says how to send one batch (`_score_batch`, returning one raw
score per text of the batch, in batch order) and what one call costs. `ApiReranker`
splits the candidates into contiguous batches that respect the provider's limits
(documents per request, estimated tokens per request), asks for *all* scores of
each batch, puts them back at the candidates' original positions, and only then
ranks and cuts to `top_n` with `build_ranking`, so a split never changes the result.

Token counts here are estimates without the provider's tokenizer
(`shortlist.corpus.tokenizer.estimate_tokens`, which leans high). They decide request
splitting and cost estimates only; providers count exactly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict, Unpack

import httpx
import numpy as np

from shortlist.corpus.tokenizer import estimate_tokens
from shortlist.errors import InvalidInputError, ProviderAuthError, ProviderError
from shortlist.rerank.api.http import JsonTransport, RetryPolicy
from shortlist.rerank.base import (  # CostEstimate is re-exported here
    Candidate,
    CostEstimate,
    build_ranking,
    calibrate,
    candidate_text,
)
from shortlist.types import Ranking
from shortlist.validate import check_candidates


def resolve_api_key(
    api_key: str | None, env_vars: Sequence[str], provider: str, *, required: bool = True
) -> str | None:
    """The explicit key, else the first set environment variable among `env_vars`.

    Raises `ProviderAuthError` naming the variables when a required key is missing.
    """
    if api_key:
        return api_key
    for var in env_vars:
        value = os.environ.get(var)
        if value:
            return value
    if not required:
        return None
    names = " or ".join(env_vars)
    raise ProviderAuthError(
        f"{provider}: no API key; pass api_key=... or set the environment variable {names}",
        provider=provider,
    )


def plan_batches(
    query_tokens: int,
    doc_tokens: Sequence[int],
    *,
    max_docs: int,
    max_tokens: int | None,
) -> list[range]:
    """Split documents into contiguous ranges of at most `max_docs` documents whose
    estimated size `query_tokens * n + sum(doc_tokens)` stays within `max_tokens`.

    A single document always forms a batch of its own, even when it alone exceeds
    `max_tokens` (the provider then truncates it or says why it cannot).
    """
    batches: list[range] = []
    start = 0
    size = 0
    for i, tokens in enumerate(doc_tokens):
        cost = query_tokens + tokens
        full = i - start >= max_docs
        over = max_tokens is not None and i > start and size + cost > max_tokens
        if full or over:
            batches.append(range(start, i))
            start, size = i, 0
        size += cost
    if start < len(doc_tokens):
        batches.append(range(start, len(doc_tokens)))
    return batches


class TransportOptions(TypedDict, total=False):
    """Keywords every hosted reranker accepts, besides its own.

    - `timeout`: seconds per HTTP request (default 30);
    - `max_retries`: retries on 429, 5xx and connection errors (default 5);
    - `max_docs_per_request`, `max_tokens_per_request`: request splitting limits (defaults:
      the provider's documented limits, `ApiReranker.max_docs_per_request` and
      `ApiReranker.max_tokens_per_request`; `None` tokens means no token limit);
    - `client`: an `httpx.Client` to share (not closed by the reranker);
    - `name`: the reranker's name (default ``provider:model``);
    - `sleep`, `rng`: the back-off clock and jitter, replaceable in tests.
    """

    timeout: float
    max_retries: int
    max_docs_per_request: int
    max_tokens_per_request: int | None
    client: httpx.Client | None
    name: str | None
    sleep: Callable[[float], None]
    rng: Callable[[], float] | None


class ApiReranker:
    """Base class of the hosted rerankers; implements `shortlist.rerank.base.Reranker`.

    Subclasses set `provider`, `calibration` and their documented request limits as class
    attributes, and implement `_score_batch` and `_batch_cost`. The API key is read once,
    at construction, sent as ``Authorization: Bearer``, and never shown.
    """

    provider: str = "api"
    calibration: str = "identity"
    max_docs_per_request: int = 1000
    max_tokens_per_request: int | None = None
    expects: str = "the provider's JSON answer"  # what a non-JSON answer is told it should be

    def __init__(
        self, *, default_name: str, api_key: str | None, **options: Unpack[TransportOptions]
    ) -> None:
        max_docs = options.get("max_docs_per_request", type(self).max_docs_per_request)
        max_tokens = options.get("max_tokens_per_request", type(self).max_tokens_per_request)
        timeout = options.get("timeout", 30.0)
        max_retries = options.get("max_retries", 5)
        if max_docs < 1:
            raise InvalidInputError("max_docs_per_request must be >= 1")
        if max_tokens is not None and max_tokens < 1:
            raise InvalidInputError("max_tokens_per_request must be >= 1 (or None for no limit)")
        if max_retries < 0:
            raise InvalidInputError("max_retries must be >= 0")
        if timeout <= 0:
            raise InvalidInputError("timeout must be > 0 seconds")
        self._name = options.get("name") or default_name
        self.max_docs_per_request = max_docs
        self.max_tokens_per_request = max_tokens
        rng = options.get("rng")
        auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._transport = JsonTransport(
            self.provider,
            headers={"Content-Type": "application/json", "Accept": "application/json", **auth},
            timeout=timeout,
            retry=RetryPolicy(max_retries=max_retries),
            client=options.get("client"),
            sleep=options.get("sleep", time.sleep),
            expects=self.expects,
            **({"rng": rng} if rng is not None else {}),
        )

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r})"

    def close(self) -> None:
        """Release the HTTP connection pool (only when this reranker created it)."""
        self._transport.close()

    def __enter__(self) -> ApiReranker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rerank(
        self, query: str, documents: Sequence[Candidate], top_n: int | None = None
    ) -> Ranking:
        """Score every candidate with the provider, then rank (see module docstring)."""
        started = time.perf_counter()
        docs, texts = self._checked_candidates(query, documents, top_n)
        if not docs:
            return Ranking(query=query, hits=(), timings_ms={"rerank": 0.0})
        raw = np.full(len(texts), np.nan)
        for batch in self._batches(query, texts):
            scores = self._score_batch(query, [texts[i] for i in batch])
            if len(scores) != len(batch):
                raise ProviderError(
                    f"{self.provider}: got {len(scores)} scores for {len(batch)} documents",
                    provider=self.provider,
                )
            raw[batch.start : batch.stop] = scores
        calibrated = calibrate(raw, self.calibration)
        elapsed = (time.perf_counter() - started) * 1000.0
        return build_ranking(query, docs, raw, calibrated, top_n, timings_ms={"rerank": elapsed})

    def cost_units(self, query: str, documents: Sequence[Candidate]) -> CostEstimate:
        """Estimated billing for reranking `documents` for `query` (no request is sent)."""
        texts = [candidate_text(c) for c in documents]
        if not texts:
            return CostEstimate(requests=0)
        total = CostEstimate(requests=0)
        for batch in self._batches(query, texts):
            one = self._batch_cost(query, [texts[i] for i in batch])
            total = CostEstimate(
                requests=total.requests + one.requests,
                search_units=total.search_units + one.search_units,
                tokens=total.tokens + one.tokens,
            )
        return total

    def _checked_candidates(
        self, query: str, documents: Sequence[Candidate], top_n: int | None
    ) -> tuple[list[Candidate], list[str]]:
        """The candidates and their texts, after the checks every `rerank` makes first:
        `top_n` >= 0 or None, and (when there are candidates) a non-empty query and
        texts `check_candidates` accepts. Raises `InvalidInputError`; no candidates
        give two empty lists."""
        if top_n is not None and top_n < 0:
            raise InvalidInputError("top_n must be >= 0 (or None for all)")
        docs = list(documents)
        if not docs:
            return [], []
        if not query.strip():
            raise InvalidInputError(f"{self.provider}: the query is empty; pass a non-empty query")
        texts = [candidate_text(c) for c in docs]
        check_candidates(query, texts)
        return docs, texts

    def _batches(self, query: str, texts: Sequence[str]) -> list[range]:
        return plan_batches(
            estimate_tokens(query),
            [estimate_tokens(t) for t in texts],
            max_docs=self.max_docs_per_request,
            max_tokens=self.max_tokens_per_request,
        )

    def _post(self, url: str, body: Mapping[str, Any], *, deadline: float | None = None) -> Any:
        return self._transport.post_json(url, body, deadline=deadline)

    def _score_batch(self, query: str, texts: Sequence[str]) -> list[float]:
        """Raw scores for `texts`, one per text, in the order given."""
        raise NotImplementedError

    def _batch_cost(self, query: str, texts: Sequence[str]) -> CostEstimate:
        """What one request for `texts` is billed."""
        return CostEstimate(requests=1)

    def _scores_from_results(
        self, results: Any, n: int, *, score_key: str = "relevance_score"
    ) -> list[float]:
        """Map provider results `[{index, <score_key>}, ...]` back to batch order."""
        if not isinstance(results, list):
            raise self._malformed("the results are not a list")
        scores: list[float | None] = [None] * n
        for item in results:
            if not isinstance(item, dict):
                raise self._malformed("a result is not an object")
            index, score = item.get("index"), item.get(score_key)
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < n:
                raise self._malformed(f"result index {index!r} is not in [0, {n})")
            if not isinstance(score, int | float) or isinstance(score, bool):
                raise self._malformed(f"result {index} has no numeric {score_key!r}")
            if scores[index] is not None:
                raise self._malformed(f"result index {index} appears twice")
            scores[index] = float(score)
        missing = [i for i, s in enumerate(scores) if s is None]
        if missing:
            raise self._malformed(f"no score for {len(missing)} of {n} documents")
        return [s for s in scores if s is not None]

    def _malformed(self, what: str) -> ProviderError:
        return ProviderError(
            f"{self.provider}: unexpected response format: {what}", provider=self.provider
        )


class KeyedApiReranker(ApiReranker):
    """A hosted provider reached at a base URL with a model name and a required API key.

    Subclasses declare the provider's facts as class attributes: `default_base_url`,
    `api_key_env` (environment variables tried in order when no `api_key` is given),
    `endpoint` (the rerank path under the base URL) and `model_example` (for messages).
    """

    default_base_url: str = ""
    api_key_env: tuple[str, ...] = ()
    endpoint: str = "v1/rerank"
    model_example: str = ""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        **options: Unpack[TransportOptions],
    ) -> None:
        if not model:
            raise InvalidInputError(
                f"a {self.provider} model name is required, e.g. {self.model_example!r}"
            )
        key = resolve_api_key(api_key, self.api_key_env, self.provider)
        super().__init__(default_name=f"{self.provider}:{model}", api_key=key, **options)
        self.model = model
        self.url = join_url(base_url or self.default_base_url, self._endpoint())

    def _endpoint(self) -> str:
        return self.endpoint


def join_url(base_url: str, path: str) -> str:
    """`base_url` (with or without a trailing slash) joined with `path`."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")
