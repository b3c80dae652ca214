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

from collections.abc import Sequence
from typing import Unpack

from shortlist.corpus.tokenizer import estimate_tokens
from shortlist.rerank.api.base import (
    CostEstimate,
    KeyedApiReranker,
    TransportOptions,
)


class VoyageReranker(KeyedApiReranker):
    """Reranks with a Voyage model (e.g. `rerank-2.5`).

    Options besides `TransportOptions`: `api_key` (else ``VOYAGE_API_KEY``), `base_url`,
    and `truncation` (let Voyage cut documents that exceed the model's context).
    """

    provider = "voyage"
    calibration = "identity"
    default_base_url = "https://api.voyageai.com"
    api_key_env = ("VOYAGE_API_KEY",)
    model_example = "rerank-2.5"
    max_tokens_per_request = 100_000

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        truncation: bool = True,
        **options: Unpack[TransportOptions],
    ) -> None:
        super().__init__(model, api_key=api_key, base_url=base_url, **options)
        self.truncation = truncation

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
