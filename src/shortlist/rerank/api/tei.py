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

from collections.abc import Sequence
from typing import Unpack

from shortlist.errors import InvalidInputError
from shortlist.rerank.api.base import ApiReranker, TransportOptions, join_url


class TEIReranker(ApiReranker):
    """Reranks with a reranker model served by text-embeddings-inference at `url`.

    Options besides `TransportOptions`: `api_key` (only for a server started with
    ``--api-key``), `raw_scores` (logits instead of sigmoid scores) and `truncate`.
    """

    provider = "tei"
    max_docs_per_request = 32

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        raw_scores: bool = False,
        truncate: bool = False,
        **options: Unpack[TransportOptions],
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError(
                f"TEI url {url!r} must start with http:// or https://, e.g. http://localhost:8080"
            )
        super().__init__(default_name=f"tei:{url}", api_key=api_key, **options)
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
