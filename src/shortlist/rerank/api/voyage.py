"""Voyage AI rerank over HTTP (`POST https://api.voyageai.com/v1/rerank`).

Wire format (Voyage's API reference as generated into its `voyageai` SDKs'
`RerankRequest`; models and context lengths from docs.voyageai.com/docs/reranker):

- request: `{"query", "documents": [str], "model", "top_k"?, "return_documents"?,
  "truncation"?}` (`truncation` defaults to true on Voyage's side);
- response: `{"object": "list", "data": [{"index", "relevance_score", "document"?}],
  "model", "usage": {"total_tokens"}}`;
- auth: `Authorization: Bearer <key>`; errors: `{"detail": "..."}`.

Limits: at most 1,000 documents per request, and a total of
`query tokens * number of documents + sum of document tokens` per request that is
100K for rerank-1, 300K for rerank-lite-1 and larger for the 2.x models (Voyage's
API reference and FAQ "What is the total number of tokens for the rerankers?").
Requests are split at `max_docs_per_request` (1,000) and at an estimated
`max_tokens_per_request` (default 100,000, the smallest documented limit).
Billing is per token, by the same total (`usage.total_tokens`). Scores are in [0, 1].
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import httpx

from shortlist.errors import InvalidInputError
from shortlist.rerank.api.base import (
    ApiReranker,
    CostEstimate,
    estimate_tokens,
    join_url,
    resolve_api_key,
)

DEFAULT_BASE_URL = "https://api.voyageai.com"
API_KEY_ENV = ("VOYAGE_API_KEY",)


class VoyageReranker(ApiReranker):
    """Reranks with a Voyage model (e.g. `rerank-2.5`)."""

    provider = "voyage"
    calibration = "identity"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        truncation: bool = True,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_docs_per_request: int = 1000,
        max_tokens_per_request: int | None = 100_000,
        client: httpx.Client | None = None,
        name: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] | None = None,
    ) -> None:
        if not model:
            raise InvalidInputError("a Voyage model name is required, e.g. 'rerank-2.5'")
        key = resolve_api_key(api_key, API_KEY_ENV, self.provider)
        super().__init__(
            name=name or f"voyage:{model}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
            max_retries=max_retries,
            max_docs_per_request=max_docs_per_request,
            max_tokens_per_request=max_tokens_per_request,
            client=client,
            sleep=sleep,
            rng=rng,
        )
        self.model = model
        self.truncation = truncation
        self.url = join_url(base_url or DEFAULT_BASE_URL, "v1/rerank")

    def _score_batch(self, query: str, texts: Sequence[str]) -> list[float]:
        body = {
            "query": query,
            "documents": list(texts),
            "model": self.model,
            "top_k": len(texts),
            "return_documents": False,
            "truncation": self.truncation,
        }
        answer = self._post(self.url, body)
        if not isinstance(answer, dict):
            raise self._malformed("the body is not an object")
        return self._scores_from_results(answer.get("data"), len(texts))

    def _batch_cost(self, query: str, texts: Sequence[str]) -> CostEstimate:
        q = estimate_tokens(query)
        return CostEstimate(requests=1, tokens=sum(q + estimate_tokens(t) for t in texts))
