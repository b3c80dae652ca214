"""Jina AI rerank over HTTP (`POST https://api.jina.ai/v1/rerank`).

Wire format (api.jina.ai/redoc, as used by the LangChain, AutoRAG and Haystack
integrations and shown in their recorded responses):

- request: `{"model", "query", "documents": [str], "top_n"?, "return_documents"?}`;
- response: `{"model", "usage": {"total_tokens"}, "results": [{"index",
  "relevance_score", "document"?: {"text"}}]}`;
- auth: `Authorization: Bearer <key>`; errors: `{"detail": "..."}`.

Jina publishes no per-request document limit that we could verify; requests are
split at `max_docs_per_request` (default 1,000) and `max_tokens_per_request`
(default none). Billing is per token (`usage.total_tokens`); the estimate counts
the query once per document plus every document, like Voyage. Scores are in [0, 1].
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

DEFAULT_BASE_URL = "https://api.jina.ai"
API_KEY_ENV = ("JINA_API_KEY",)


class JinaReranker(ApiReranker):
    """Reranks with a Jina model (e.g. `jina-reranker-v2-base-multilingual`)."""

    provider = "jina"
    calibration = "identity"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_docs_per_request: int = 1000,
        max_tokens_per_request: int | None = None,
        client: httpx.Client | None = None,
        name: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] | None = None,
    ) -> None:
        if not model:
            raise InvalidInputError(
                "a Jina model name is required, e.g. 'jina-reranker-v2-base-multilingual'"
            )
        key = resolve_api_key(api_key, API_KEY_ENV, self.provider)
        super().__init__(
            name=name or f"jina:{model}",
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
        self.url = join_url(base_url or DEFAULT_BASE_URL, "v1/rerank")

    def _score_batch(self, query: str, texts: Sequence[str]) -> list[float]:
        body = {
            "model": self.model,
            "query": query,
            "documents": list(texts),
            "top_n": len(texts),
            "return_documents": False,
        }
        answer = self._post(self.url, body)
        if not isinstance(answer, dict):
            raise self._malformed("the body is not an object")
        return self._scores_from_results(answer.get("results"), len(texts))

    def _batch_cost(self, query: str, texts: Sequence[str]) -> CostEstimate:
        q = estimate_tokens(query)
        return CostEstimate(requests=1, tokens=sum(q + estimate_tokens(t) for t in texts))
