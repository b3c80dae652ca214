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

DEFAULT_BASE_URL = "https://api.cohere.com"
API_KEY_ENV = ("COHERE_API_KEY", "CO_API_KEY")
DOCS_PER_SEARCH_UNIT = 100
TOKENS_PER_BILLED_CHUNK = 500


class CohereReranker(ApiReranker):
    """Reranks with a Cohere model (e.g. `rerank-v3.5`) through the v2 or v1 API."""

    provider = "cohere"
    calibration = "identity"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        api_version: str = "v2",
        timeout: float = 30.0,
        max_retries: int = 5,
        max_docs_per_request: int = 1000,
        max_tokens_per_doc: int | None = None,
        max_chunks_per_doc: int | None = None,
        client: httpx.Client | None = None,
        name: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] | None = None,
    ) -> None:
        if api_version not in ("v1", "v2"):
            raise InvalidInputError(f"unknown Cohere api_version {api_version!r}; use 'v2' or 'v1'")
        if api_version == "v2" and max_chunks_per_doc is not None:
            raise InvalidInputError("max_chunks_per_doc is a v1 option; use max_tokens_per_doc")
        if api_version == "v1" and max_tokens_per_doc is not None:
            raise InvalidInputError("max_tokens_per_doc is a v2 option; use max_chunks_per_doc")
        if not model:
            raise InvalidInputError("a Cohere model name is required, e.g. 'rerank-v3.5'")
        key = resolve_api_key(api_key, API_KEY_ENV, self.provider)
        super().__init__(
            name=name or f"cohere:{model}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
            max_retries=max_retries,
            max_docs_per_request=max_docs_per_request,
            max_tokens_per_request=None,
            client=client,
            sleep=sleep,
            rng=rng,
        )
        self.model = model
        self.api_version = api_version
        self.max_tokens_per_doc = max_tokens_per_doc
        self.max_chunks_per_doc = max_chunks_per_doc
        self.url = join_url(base_url or DEFAULT_BASE_URL, f"{api_version}/rerank")

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
    chunks = sum(math.ceil(estimate_tokens(t) / room) for t in texts)
    return math.ceil(chunks / DOCS_PER_SEARCH_UNIT)
