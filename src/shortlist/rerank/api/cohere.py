"""Cohere Rerank over HTTP (`POST /v2/rerank`, or `POST /v1/rerank`).

Wire format (docs.cohere.com/reference/rerank, and the request/response models of the
official `cohere` Python SDK 5.x-7.x):

- v2 request: `{"model", "query", "documents": [str], "top_n", "max_tokens_per_doc"?}`;
- v1 request: `{"model", "query", "documents": [str | {"text"}], "top_n",
  "return_documents", "max_chunks_per_doc"?}`;
- response (both): `{"id", "results": [{"index", "relevance_score", "document"?}],
  "meta": {"api_version", "billed_units": {"search_units"}}}`;
- auth: `Authorization: Bearer <key>`; errors: `{"message": "..."}`.

Limits: at most 10,000 documents and 2,048 query tokens per request
(docs.cohere.com/docs/reranking-best-practices), fewer than 1,000 documents
recommended (the SDK's `documents` docstring); so requests are split at
`max_docs_per_request` (default 1,000). Relevance scores are in [0, 1]
(calibration `identity`).

Billing (cohere.com/pricing FAQ): one search unit is one query with up to 100
documents; a document longer than 500 tokens including the query is split into
chunks that each count as a document. The 500-token chunking rule is Cohere's
long-standing FAQ wording; `meta.billed_units.search_units` in each answer is the
authoritative count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Unpack

from shortlist.corpus.tokenizer import estimate_tokens
from shortlist.errors import InvalidInputError
from shortlist.rerank.api.base import (
    CostEstimate,
    KeyedApiReranker,
    TransportOptions,
)

DOCS_PER_SEARCH_UNIT = 100
TOKENS_PER_BILLED_CHUNK = 500


class CohereReranker(KeyedApiReranker):
    """Reranks with a Cohere model (e.g. `rerank-v3.5`) through the v2 or v1 API.

    Options besides `TransportOptions`: `api_key` (else ``COHERE_API_KEY`` or ``CO_API_KEY``),
    `base_url`, `api_version` (``v2`` or ``v1``), and the per-version document truncation,
    `max_tokens_per_doc` (v2) or `max_chunks_per_doc` (v1).
    """

    provider = "cohere"
    calibration = "identity"
    default_base_url = "https://api.cohere.com"
    api_key_env = ("COHERE_API_KEY", "CO_API_KEY")
    model_example = "rerank-v3.5"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        api_version: str = "v2",
        max_tokens_per_doc: int | None = None,
        max_chunks_per_doc: int | None = None,
        **options: Unpack[TransportOptions],
    ) -> None:
        if api_version not in ("v1", "v2"):
            raise InvalidInputError(f"unknown Cohere api_version {api_version!r}; use 'v2' or 'v1'")
        if api_version == "v2" and max_chunks_per_doc is not None:
            raise InvalidInputError("max_chunks_per_doc is a v1 option; use max_tokens_per_doc")
        if api_version == "v1" and max_tokens_per_doc is not None:
            raise InvalidInputError("max_tokens_per_doc is a v2 option; use max_chunks_per_doc")
        self.api_version = api_version
        self.max_tokens_per_doc = max_tokens_per_doc
        self.max_chunks_per_doc = max_chunks_per_doc
        super().__init__(model, api_key=api_key, base_url=base_url, **options)

    def _endpoint(self) -> str:
        return f"{self.api_version}/rerank"

    def _score_batch(self, query: str, texts: Sequence[str]) -> list[float]:
        body: dict[str, object] = {
            "model": self.model,
            "query": query,
            "documents": list(texts),
            "top_n": len(texts),
        }
        if self.api_version == "v2":
            if self.max_tokens_per_doc is not None:
                body["max_tokens_per_doc"] = self.max_tokens_per_doc
        else:
            body["return_documents"] = False
            if self.max_chunks_per_doc is not None:
                body["max_chunks_per_doc"] = self.max_chunks_per_doc
        answer = self._post(self.url, body)
        if not isinstance(answer, dict):
            raise self._malformed("the body is not an object")
        return self._scores_from_results(answer.get("results"), len(texts))

    def _batch_cost(self, query: str, texts: Sequence[str]) -> CostEstimate:
        return CostEstimate(requests=1, search_units=search_units(query, texts))


def search_units(query: str, texts: Sequence[str]) -> int:
    """Cohere search units billed for one request (see module docstring), estimated."""
    room = max(1, TOKENS_PER_BILLED_CHUNK - estimate_tokens(query))
    chunks = sum(max(1, math.ceil(estimate_tokens(t) / room)) for t in texts)
    return math.ceil(chunks / DOCS_PER_SEARCH_UNIT)
