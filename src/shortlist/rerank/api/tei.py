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

The key of a spec (`tei:URL?api_key_env=VAR`) is read from the environment variable
named VAR, never written into the spec itself, so a spec can be logged, put in a
pipeline file or shown in an error without leaking it; `api_key_env` is taken off the
URL before any request.

Limits: the server's `--max-client-batch-size` (default 32, TEI
`docs/source/en/cli_arguments.md`) texts per request, so
requests are split at `max_docs_per_request` (default 32). Calibration: `identity`
for normalised scores, `sigmoid` when `raw_scores=True` (raw logits). TEI is
self-hosted: the cost estimate counts requests only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Unpack
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shortlist.errors import InvalidInputError, ProviderAuthError
from shortlist.rerank.api.base import ApiReranker, TransportOptions, join_url

API_KEY_ENV_PARAM = "api_key_env"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TEIReranker(ApiReranker):
    """Reranks with a reranker model served by text-embeddings-inference at `url`.

    Options besides `TransportOptions`: `api_key` (only for a server started with
    ``--api-key``; else the variable named by `?api_key_env=VAR` in `url`),
    `raw_scores` (logits instead of sigmoid scores) and `truncate`.
    Raises `ProviderAuthError` when the named variable is unset or empty.
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
        base, key_env = _split_key_env(url)
        if api_key is None and key_env is not None:
            api_key = os.environ.get(key_env) or None
            if api_key is None:
                raise ProviderAuthError(
                    f"tei: the spec names the API key variable {key_env} (api_key_env), but it "
                    f"is not set; export {key_env}=KEY",
                    provider="tei",
                )
        super().__init__(default_name=f"tei:{url}", api_key=api_key, **options)
        self.raw_scores = raw_scores
        self.truncate = truncate
        self.calibration = "sigmoid" if raw_scores else "identity"
        self.url = join_url(base, "rerank")

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


def _split_key_env(url: str) -> tuple[str, str | None]:
    """`url` without its `api_key_env` query parameter, and that parameter's value."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name == "api_key" for name, _ in query):
        # Refused rather than sent on: a key in a spec ends up in logs and files.
        raise InvalidInputError(
            "tei: do not put the API key in the spec (it would be shown wherever the spec "
            f"is); export it and name the variable: tei:URL?{API_KEY_ENV_PARAM}=VAR"
        )
    names = [value for name, value in query if name == API_KEY_ENV_PARAM]
    if not names:
        return url, None
    if len(names) > 1 or not _ENV_NAME.fullmatch(names[0]):
        raise InvalidInputError(
            f"tei: {API_KEY_ENV_PARAM} must name one environment variable, e.g. "
            f"tei:http://localhost:8080?{API_KEY_ENV_PARAM}=TEI_API_KEY"
        )
    rest = urlencode([(n, v) for n, v in query if n != API_KEY_ENV_PARAM])
    return urlunsplit(parts._replace(query=rest)), names[0]
