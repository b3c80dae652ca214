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

from collections.abc import Sequence

from shortlist.corpus.tokenizer import estimate_tokens
from shortlist.rerank.api.base import CostEstimate, KeyedApiReranker


class JinaReranker(KeyedApiReranker):
    """Reranks with a Jina model (e.g. `jina-reranker-v2-base-multilingual`).

    Options: `api_key` (else ``JINA_API_KEY``), `base_url` and `TransportOptions`.
    """

    provider = "jina"
    calibration = "identity"
    default_base_url = "https://api.jina.ai"
    api_key_env = ("JINA_API_KEY",)
    model_example = "jina-reranker-v2-base-multilingual"

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
