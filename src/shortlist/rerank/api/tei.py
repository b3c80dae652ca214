"""Hugging Face text-embeddings-inference (TEI) `POST {url}/rerank`.

Wire format (TEI's `router/src/http/types.rs` `RerankRequest`/`Rank`, and the
Azure ML model cards that document the options):

- request: `{"query", "texts": [str], "raw_scores", "return_text", "truncate",
  "truncation_direction"?}`; `raw_scores=false` (the default) returns normalised
  scores in [0, 1] (the sigmoid of the logit), `truncate=false` (the default) makes
  TEI reject inputs longer than the model's maximum instead of cutting them;
- response: `[{"index", "score", "text"?}]`, best first;
- auth only when the server was started with `--api-key`: `Authorization: Bearer`;
  errors: `{"error": "...", "error_type": "..."}`.

Limits: the server's `--max-client-batch-size` (default 32, TEI
`docs/source/en/cli_arguments.md`) texts per request, so
requests are split at `max_docs_per_request` (default 32). Calibration: `identity`
for normalised scores, `sigmoid` when `raw_scores=True` (raw logits). TEI is
self-hosted: the cost estimate counts requests only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import httpx

from shortlist.errors import InvalidInputError
from shortlist.rerank.api.base import ApiReranker, join_url


class TEIReranker(ApiReranker):
    """Reranks with a reranker model served by text-embeddings-inference at `url`."""

    provider = "tei"

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        raw_scores: bool = False,
        truncate: bool = False,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_docs_per_request: int = 32,
        client: httpx.Client | None = None,
        name: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError(
                f"TEI url {url!r} must start with http:// or https://, e.g. http://localhost:8080"
            )
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__(
            name=name or f"tei:{url}",
            headers=headers,
            timeout=timeout,
            max_retries=max_retries,
            max_docs_per_request=max_docs_per_request,
            max_tokens_per_request=None,
            client=client,
            sleep=sleep,
            rng=rng,
        )
        self.raw_scores = raw_scores
        self.truncate = truncate
        self.calibration = "sigmoid" if raw_scores else "identity"
        self.url = join_url(url, "rerank")

    def _score_batch(self, query: str, texts: Sequence[str]) -> list[float]:
        body = {
            "query": query,
            "texts": list(texts),
            "raw_scores": self.raw_scores,
            "return_text": False,
            "truncate": self.truncate,
        }
        answer = self._post(self.url, body)
        return self._scores_from_results(answer, len(texts), score_key="score")
