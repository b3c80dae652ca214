"""A thin typed client for a `shortlist serve` server: search, rerank and health.

    from shortlist.client import Client

    with Client("http://127.0.0.1:8000", api_key=None) as client:
        found = client.search("how do I rotate logs", k=50, top_n=5)
        for hit in found.ranking:
            print(hit.rank, hit.doc_id, round(hit.score, 3))
        reranked = client.rerank("how do I rotate logs", ["logrotate ...", "cron ..."])

Answers come back as the library's own records (`shortlist.types.Ranking` of `Hit`s),
so code written against a local `Pipeline` or `Reranker` reads them unchanged, plus
what only a server knows: the index generation that answered, the model that
answered, warnings about ignored options and the request id (`X-Request-ID`, sent
when given, else the server's).

Errors: `ServerError` (an HTTP error answer; `status`, `kind` and the server's
message, which names the fix) and `ServerUnreachableError` (no answer at all). Both
are `ShortlistError`s. The API key is sent as `Authorization: Bearer` and never
appears in a message or `repr`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from shortlist.errors import ShortlistError
from shortlist.types import Hit, Ranking

GENERATION_HEADER = "X-Shortlist-Generation"
MODEL_HEADER = "X-Shortlist-Model"
REQUEST_ID_HEADER = "X-Request-ID"


class ServerError(ShortlistError):
    """The server answered with an error status; `status`, `kind` (the server's error
    type, e.g. `model_not_served_error`) and its message."""

    exit_code = 5

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(f"server answered HTTP {status} ({kind}): {message}")
        self.status = status
        self.kind = kind
        self.http_status = status


class ServerUnreachableError(ShortlistError):
    """No answer from the server (refused, timed out, bad URL)."""

    exit_code = 5
    http_status = 503


@dataclass(frozen=True, slots=True)
class SearchResult:
    """`/v1/search`: the ranking, and the index generation that answered (None when the
    server serves a fixed index)."""

    ranking: Ranking
    generation: str | None
    request_id: str


@dataclass(frozen=True, slots=True)
class RerankResult:
    """A rerank answer: the ranking (each hit's `index` is its position in the documents
    given, `id` that position as a string, `text` the document), the model that
    answered, and warnings about options the server ignored."""

    ranking: Ranking
    model: str | None
    warnings: tuple[str, ...]
    request_id: str


@dataclass(frozen=True, slots=True)
class Readiness:
    """`/ready`: whether the server takes requests, the model names it answers to, and
    the index generation it serves."""

    ready: bool
    models: tuple[str, ...] = ()
    index: bool = False
    generation: str | None = None


class Client:
    """Client of one server at `base_url`; `api_key` when it was started with one.

    `timeout` is seconds per request. `http` shares an `httpx.Client` (not closed by
    this client). Use as a context manager, or call `close()`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ShortlistError(
                f"base_url {base_url!r} must start with http:// or https://, "
                "e.g. http://127.0.0.1:8000"
            )
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._own = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._timeout = timeout

    def __repr__(self) -> str:
        auth = ", api_key=***" if self._headers else ""
        return f"Client({self.base_url!r}{auth})"

    def close(self) -> None:
        if self._own:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        top_n: int = 10,
        mode: Literal["bm25", "dense", "hybrid"] | None = None,
        filter: Mapping[str, Any] | None = None,
        rerank: bool | str = True,
        request_id: str | None = None,
    ) -> SearchResult:
        """First stage over the served index (top `k`), reranked (`rerank`: True for
        the default model, a served model name, or False), best `top_n` kept."""
        body: dict[str, Any] = {"query": query, "top_n": top_n, "rerank": rerank}
        if k is not None:
            body["k"] = k
        if mode is not None:
            body["mode"] = mode
        if filter is not None:
            body["filter"] = dict(filter)
        response = self._call("POST", "/v1/search", body, request_id)
        data = response.json()
        hits = tuple(_hit(h) for h in data["results"])
        ranking = Ranking(query=data["query"], hits=hits, timings_ms=data["timings_ms"])
        return SearchResult(
            ranking, response.headers.get(GENERATION_HEADER), _request_id(response)
        )

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        *,
        model: str = "default",
        top_n: int | None = None,
        request_id: str | None = None,
    ) -> RerankResult:
        """Rerank `documents` for `query` with a served model (Cohere v2's `/v2/rerank`)."""
        docs = list(documents)
        body: dict[str, Any] = {"model": model, "query": query, "documents": docs}
        if top_n is not None:
            body["top_n"] = top_n
        response = self._call("POST", "/v2/rerank", body, request_id)
        data = response.json()
        hits = tuple(
            Hit(
                id=str(r["index"]),
                score=float(r["relevance_score"]),
                rank=rank,
                text=docs[r["index"]],
                index=r["index"],
            )
            for rank, r in enumerate(data["results"], start=1)
        )
        return RerankResult(
            Ranking(query=query, hits=hits),
            response.headers.get(MODEL_HEADER),
            tuple(data.get("meta", {}).get("warnings") or ()),
            _request_id(response),
        )

    def health(self) -> bool:
        """Liveness: True when the server answers `/health`; False when it cannot be
        reached or answers an error."""
        try:
            self._call("GET", "/health", None, None)
        except (ServerError, ServerUnreachableError):
            return False
        return True

    def ready(self) -> Readiness:
        """Readiness (`/ready`): not ready while starting or shutting down. Raises
        `ServerUnreachableError` when there is no answer."""
        try:
            data = self._call("GET", "/ready", None, None).json()
        except ServerError as exc:
            if exc.status == 503:
                return Readiness(ready=False)
            raise
        generation = data.get("generation")
        return Readiness(
            ready=data.get("status") == "ready",
            models=tuple(data.get("models", ())),
            index=bool(data.get("index")),
            generation=generation.get("name") if isinstance(generation, dict) else None,
        )

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None, request_id: str | None
    ) -> httpx.Response:
        headers = dict(self._headers)
        if request_id is not None:
            headers[REQUEST_ID_HEADER] = request_id
        try:
            response = self._http.request(
                method, self.base_url + path, json=body, headers=headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise ServerUnreachableError(
                f"no answer from {self.base_url}{path}: {type(exc).__name__}; is "
                "`shortlist serve` running there?"
            ) from None
        if response.status_code >= 400:
            raise _server_error(response)
        return response


def _server_error(response: httpx.Response) -> ServerError:
    kind, message = "http_error", response.text[:500]
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):  # the Cohere-shaped body of every route but /rerank
            kind = str(error.get("type", kind))
            message = str(data.get("message", error.get("message", message)))
        elif isinstance(error, str):  # TEI's shape
            kind, message = str(data.get("error_type", kind)), error
    return ServerError(response.status_code, kind, message)


def _request_id(response: httpx.Response) -> str:
    return response.headers.get(REQUEST_ID_HEADER, "")


def _hit(data: Mapping[str, Any]) -> Hit:
    fields = (
        "first_stage_rank",
        "first_stage_score",
        "index",
        "raw_score",
        "calibrated_score",
        "window",
    )
    return Hit(
        id=data["id"],
        score=float(data["score"]),
        rank=int(data["rank"]),
        doc_id=data.get("doc_id", ""),
        text=data.get("text", ""),
        metadata=data.get("metadata") or {},
        **{name: data[name] for name in fields if data.get(name) is not None},
    )
