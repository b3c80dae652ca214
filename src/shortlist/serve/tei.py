"""What a text-embeddings-inference (TEI) client expects besides `POST /rerank`.

- `GET /info`: TEI's `Info` object (`router/src/http/types.rs` upstream), which TEI
  clients read for the model id and the request limits: `model_id`, `model_type`,
  `max_input_length`, `max_client_batch_size`, `max_batch_tokens`, ... Values are
  this server's: `max_client_batch_size` is the documents limit (`--max-docs`),
  `max_input_length` the default model's window when it has one, else 512 (long texts
  are windowed, never truncated, so this is no limit on the input), `model_dtype` the
  dtype of the scores returned (float32, int8 backends included).
- Errors of the `/rerank` route: `{"error": message, "error_type": kind}` with TEI's
  kinds (`Validation`, `Overloaded`, `Unhealthy`, `Backend`; and `Unauthorized`,
  `NotFound`, for which TEI sends no body).
"""

from __future__ import annotations

from typing import Any

TEI_PATH = "/rerank"
"""The one route whose errors use TEI's shape."""

_DEFAULT_WINDOW = 512


def tei_error_type(status: int, kind: str = "") -> str:
    """TEI's `error_type` for an HTTP status (and shortlist's error `kind`)."""
    if kind == "queue_full_error":
        return "Overloaded"
    if status == 401:
        return "Unauthorized"
    if status == 404:
        return "NotFound"
    if status == 429:
        return "Overloaded"
    if status == 503:
        return "Unhealthy"
    if status >= 500:
        return "Backend"
    return "Validation"


def tei_error_body(status: int, message: str, kind: str = "") -> dict[str, Any]:
    return {"error": message, "error_type": tei_error_type(status, kind)}


def tei_info(
    *,
    model_id: str,
    max_length: int | None,
    max_documents: int,
    max_batch_tokens: int,
    max_batch_pairs: int,
    queue_size: int,
    version: str,
    models: list[str],
) -> dict[str, Any]:
    """The body of `GET /info` (see the module docstring); `models` lists every name a
    request may give as `model`, an addition TEI does not have."""
    return {
        "model_id": model_id,
        "model_sha": None,
        "model_dtype": "float32",
        "model_type": {"reranker": {"id2label": {"0": "LABEL_0"}}},
        "max_concurrent_requests": queue_size,
        "max_input_length": max_length if max_length is not None else _DEFAULT_WINDOW,
        "max_batch_tokens": max_batch_tokens,
        "max_batch_requests": max_batch_pairs,
        "max_client_batch_size": max_documents,
        "auto_truncate": False,
        "tokenization_workers": 1,
        "version": version,
        "sha": None,
        "docker_label": None,
        "models": models,
    }
