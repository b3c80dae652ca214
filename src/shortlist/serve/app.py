"""The HTTP app: Cohere- and TEI-compatible reranking, search over an index, health, metrics.

`create_app(config, rerankers, index)` takes already-built objects and never loads a model
or opens a file because of a request: a request's `model` must name a served reranker (its
spec string, a `--name` alias, or `default`), otherwise 404; with
`ServeConfig.accept_any_model`, any other name is answered by the default model (logged
once per name). The same reranker object given under several names is one model with
several aliases (one slot, one batcher).

Endpoints:

- `POST /v1/rerank`, `POST /v2/rerank`: Cohere's rerank wire format (see `schemas`).
- `POST /rerank`: text-embeddings-inference's format; `GET /info`: TEI's model info
  (see `tei`).
- `POST /v1/search`: first stage over the served index, then rerank (404 without an index).
- `GET /health` (liveness), `GET /ready` (models started, not shutting down; 503 otherwise).
- `GET /metrics`: Prometheus text (see `metrics.Metrics`). `GET /openapi.json`: the spec.

Errors have the body `{"message": ..., "error": {"type": ..., "message": ...}}`
(`message` at the top level is what Cohere's SDK reads), except on TEI's `/rerank`,
where they have TEI's `{"error": ..., "error_type": ...}`. A `ShortlistError` maps to its
`http_status`; request validation errors to 422 (400 for a body that is not JSON); a body
over `max_request_bytes` (by Content-Length or by actual size) to 413; a full scoring queue
to 503 with `Retry-After`. When `api_key` is set, the POST endpoints need
`Authorization: Bearer <key>` (401 otherwise); health, readiness and metrics stay open.

Long documents are the reranker's business (it windows them and keeps the best window;
see `service`). Cohere v2's `max_tokens_per_doc` and v1's `max_chunks_per_doc` are passed
to the reranker's plan when it supports them, else reported as ignored in `meta.warnings`;
so is every other request field the server does not know (cohere 7's `relevant_spans`,
v1's `rank_fields`, `priority`, ...). On `/rerank`, which has no place for warnings in
its body, and on `/v1/search`, whose body carries only the pipeline's own warnings, they
go to the `X-Shortlist-Warning` response header (and on `/rerank`, `truncate: true` is
one: texts are windowed, never truncated).

Every response carries `X-Request-ID` (the client's, or a new one) and every reranking
response `X-Shortlist-Model` (the model that answered); each request is logged to
`shortlist.access` (see `access`).
A ranking's own warnings (`Ranking.warnings`, e.g. a listwise window that failed and kept
its order) are added to `meta.warnings` too.

`/v1/search` runs the library's `Pipeline` (first stage over the served index, the
reranker bound to the index's stored vectors, cutoff) with the slot's batcher as the
reranker's scoring executor; its `timings_ms` use the pipeline's timing keys. A valid
`/v1/search` request is answered on the direct path (`direct`): the same endpoint function
without FastAPI's routing layers; an invalid one, or one without the right key, goes
through the route, so its error is FastAPI's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from shortlist import __version__
from shortlist.errors import InvalidInputError, ShortlistError
from shortlist.pipeline import Pipeline
from shortlist.pipeline_file import PipelineConfig
from shortlist.rerank.base import (
    PlannedReranker,
    Reranker,
    RerankOptions,
    bind_to_store,
    candidate_text,
    local_executor,
)
from shortlist.retrieve.stages import first_stage
from shortlist.serve.access import MODEL_HEADER, AccessLog
from shortlist.serve.batching import DynamicBatcher, QueueFullError, estimate_pair_tokens
from shortlist.serve.direct import DirectRoute, key_matches
from shortlist.serve.live import Generation, LiveIndex
from shortlist.serve.metrics import Metrics
from shortlist.serve.schemas import (
    ApiMeta,
    ApiVersion,
    BilledUnits,
    CohereRerankResponse,
    CohereRerankResult,
    CohereV1RerankRequest,
    CohereV2RerankRequest,
    DocumentIn,
    ErrorResponse,
    ResultDocument,
    SearchRequest,
    SearchResponse,
    TeiError,
    TeiInfo,
    TeiRank,
    TeiRerankRequest,
)
from shortlist.serve.service import ModelSlot
from shortlist.serve.tei import TEI_PATH, tei_error_body, tei_info
from shortlist.types import Ranking
from shortlist.validate import check_query, check_text, text_problem

if TYPE_CHECKING:
    from shortlist.serve.playground import PlaygroundConfig
    from shortlist.store.index import Index

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class ServeConfig:
    """Limits, auth and batching of the service. All limits are per request."""

    api_key: str | None = None
    max_documents: int = 1000
    max_request_bytes: int = 8 * 1024 * 1024
    max_top_n: int = 1000
    batching: bool = True
    max_batch_tokens: int = 16384
    max_batch_pairs: int = 512
    max_wait_ms: float = 5.0
    queue_size: int = 256
    accept_any_model: bool = False
    """Answer a request naming an unknown model with the default model (single-model
    servers behind clients with a fixed model name); logged once per name."""


class ModelNotServedError(ShortlistError):
    http_status = 404


class NoIndexServedError(ShortlistError):
    http_status = 404


class LimitExceededError(InvalidInputError):
    """A request over one of the server's limits; the message names the limit."""


class UnauthorizedError(ShortlistError):
    http_status = 401


class NotReadyError(ShortlistError):
    http_status = 503


GENERATION_HEADER = "X-Shortlist-Generation"
"""Response header of /v1/search: the index generation that answered (e.g. gen-000003)."""

_GENERATION_DOC = {
    GENERATION_HEADER: {
        "description": "The index generation that answered (when the server follows an index "
        "folder); every result comes from this one generation.",
        "schema": {"type": "string", "pattern": "^gen-[0-9]{6}$"},
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorResponse, "description": "Client error"},
    "5XX": {"model": ErrorResponse, "description": "Server error"},
}
_TEI_ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": TeiError, "description": "Client error (TEI's shape)"},
    "5XX": {"model": TeiError, "description": "Server error (TEI's shape)"},
}
_WARNING_HEADER = "X-Shortlist-Warning"
_KNOWN_PATHS = frozenset(
    {"/v1/rerank", "/v2/rerank", "/rerank", "/info", "/v1/search", "/health", "/ready", "/metrics"}
)
_FALLBACKS_LOGGED = 1000
"""--accept-any-model logs each new unknown name once, up to this many names."""
log = logging.getLogger("shortlist.serve")


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"message": message, "error": {"type": kind, "message": message}}


def _error_body_for(path: str, status: int, kind: str, message: str) -> dict[str, Any]:
    """The error body in the shape of the route's API (TEI's on `/rerank`)."""
    if path == TEI_PATH:
        return tei_error_body(status, message, kind)
    return error_body(kind, message)


def _depth_of(slot: ModelSlot) -> Callable[[], int]:
    return lambda: sum(b.queue_depth for b in slot.batchers.values())


class _AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: an error message can always be sent, whatever it quotes."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


def _error(
    request: Request,
    status: int,
    kind: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> Any:
    body = _error_body_for(request.url.path, status, kind, message)
    return _AsciiJSONResponse(body, status_code=status, headers=headers)


class _Edge:
    """Outermost ASGI layer: request metrics and the request body size limit; POST
    requests to a path in `direct` are offered to its `DirectRoute` first."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_bytes: int,
        direct: Mapping[str, DirectRoute] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.direct = dict(direct or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in _KNOWN_PATHS else "other"
        status = [500]
        responded = [False]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                responded[0] = True
            await send(message)

        started = time.perf_counter()
        try:
            if scope.get("method") not in ("POST", "PUT", "PATCH"):
                await self.app(scope, receive, send_status)
                return
            body = await self._read_body(scope, receive, send_status)
            if body is None:
                return
            route = self.direct.get(path) if scope.get("method") == "POST" else None
            if route is not None and await route.answer(scope, body, send_status):
                return
            await self.app(scope, _replay(body, receive), send_status)
        except asyncio.CancelledError:
            # uvicorn cancels requests still running at the graceful-shutdown deadline;
            # the client gets a retryable 503 instead of uvicorn's bare 500.
            task = asyncio.current_task()
            if responded[0] or task is None or not task.cancelling():
                raise
            task.uncancel()
            message = "the server is shutting down and could not finish this request; retry"
            await _send_json(
                send_status,
                503,
                _error_body_for(path, 503, "shutting_down", message),
                headers={"Retry-After": "1", "Connection": "close"},
            )
        finally:
            self.metrics.requests.labels(endpoint=endpoint, status=str(status[0])).inc()
            self.metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - started)

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body; None when a 4xx was already sent (or the client went away)."""
        limit = self.max_bytes
        path = scope.get("path", "")

        def body(status: int, kind: str, message: str) -> dict[str, Any]:
            return _error_body_for(path, status, kind, message)

        too_big = f"request body is larger than max_request_bytes={limit} (server limit)"
        for name, value in scope.get("headers", []):
            if name == b"content-type" and not _is_json(value):
                shown = value.decode("latin-1")[:80]
                hint = (
                    f"unsupported Content-Type {shown!r}; send the body as JSON with "
                    "'Content-Type: application/json'"
                )
                await _send_json(send, 415, body(415, "unsupported_media_type", hint))
                return None
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, body(400, "invalid_request", "bad Content-Length"))
                    return None
                if declared > limit:
                    await _send_json(send, 413, body(413, "payload_too_large", too_big))
                    return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _send_json(send, 413, body(413, "payload_too_large", too_big))
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(whole: bytes, receive: Receive) -> Receive:
    """`receive` for the app: the body read by the edge, then the connection's own."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": whole, "more_body": False}
        return await receive()

    return replay


def _is_json(content_type: bytes) -> bool:
    """`application/json` or a `+json` type, parameters (charset) ignored."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class _FixedIndex:
    """An index that never changes (anything with `search`), behind `LiveIndex`'s interface."""

    def __init__(self, index: Any) -> None:
        self.index = index

    @contextmanager
    def lease(self) -> Iterator[tuple[Any, Generation | None]]:
        yield self.index, None

    @property
    def generation(self) -> Generation | None:
        return None


def create_app(
    config: ServeConfig,
    rerankers: Mapping[str, Reranker],
    index: Index | LiveIndex | None = None,
    pipeline: PipelineConfig | None = None,
    playground: PlaygroundConfig | None = None,
) -> FastAPI:
    """The service over already-built rerankers (`{name: reranker}`, the first is `default`)
    and an optional index: a `LiveIndex` (switched to each new generation while serving,
    and closed at shutdown) or anything with `search(query, k=, mode=, filter=) -> Ranking`.

    `pipeline` (a pipeline file) sets what `/v1/search` runs when a request leaves it
    open: the first stage with its parameters (when `mode` is omitted or the file's), K,
    top N, and the reranker (served under its spec, which must be in `rerankers`).

    `playground` adds the web playground at `/` and its JSON endpoints (see
    `shortlist.serve.playground`)."""
    wanted = pipeline.reranker if pipeline is not None else None
    if wanted is not None and wanted not in rerankers:
        raise InvalidInputError(
            f"the pipeline file's reranker {wanted!r} is not among the served "
            "rerankers; serve it under its spec"
        )
    if pipeline is not None and (
        pipeline.k > config.max_documents or pipeline.top_n > config.max_top_n
    ):
        raise InvalidInputError(
            f"the pipeline file's k={pipeline.k} / top_n={pipeline.top_n} exceed the server's "
            f"limits ({config.max_documents} documents, top_n {config.max_top_n}); raise "
            "--max-docs / --max-top-n or lower them in the file"
        )
    if not rerankers and index is None:
        raise InvalidInputError("nothing to serve: give at least one reranker or an index")
    served: LiveIndex | _FixedIndex | None = None
    if isinstance(index, LiveIndex):
        served = index
    elif index is not None:
        served = _FixedIndex(index)
    metrics = Metrics()
    slots: dict[str, ModelSlot] = {}
    by_name: dict[str, ModelSlot] = {}
    first_name: dict[int, str] = {}  # id(slot) -> the name it is served and measured under
    seen: dict[int, ModelSlot] = {}  # id(given reranker) -> its slot: aliases share one
    for alias, given in rerankers.items():
        if id(given) in seen:
            by_name.setdefault(alias, seen[id(given)])
            continue
        # Bound once so a bi-encoder shares the index's encoder (one model in memory, its
        # batcher included); /v1/search binds again to the generation it searches.
        reranker = given
        if served is not None:
            with served.lease() as (current, _generation):
                reranker = bind_to_store(given, current)

        def make_batcher(
            stage: PlannedReranker, active: Callable[[], int], alias: str = alias
        ) -> DynamicBatcher:
            return DynamicBatcher(
                stage.score_units,
                max_batch_tokens=config.max_batch_tokens,
                max_batch_pairs=config.max_batch_pairs,
                max_wait_ms=config.max_wait_ms,
                queue_size=config.queue_size,
                on_batch=metrics.batch_observer(alias),
                on_queue_wait=metrics.queue_observer(),
                active_requests=active,
            )

        slot = ModelSlot.build(reranker, make_batcher if config.batching else None)
        if slot.batchers:
            metrics.watch_queue(alias, _depth_of(slot))
        slots[alias] = slot
        seen[id(given)] = slot
        first_name[id(slot)] = alias
        by_name.setdefault(alias, slot)
        by_name.setdefault(reranker.name, slot)
    default = next(iter(slots.values()), None)
    state = {"ready": False}
    fallbacks_logged: set[str] = set()
    metrics.set_build_info(__version__, list(slots))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for slot in slots.values():
            await slot.start()
        watcher = None
        if isinstance(served, LiveIndex):
            watcher = asyncio.create_task(_follow(served), name="shortlist-index-watcher")
        state["ready"] = True
        try:
            yield
        finally:
            # uvicorn has already let in-flight requests finish; drain what they queued.
            state["ready"] = False
            if watcher is not None:
                watcher.cancel()
                with suppress(asyncio.CancelledError):
                    await watcher
            for slot in slots.values():
                await slot.close()
            if isinstance(served, LiveIndex):
                served.close()

    app = FastAPI(
        title="shortlist",
        summary="Retrieve-and-rerank service, Cohere- and TEI-compatible.",
        version="1",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.slots = slots
    app.state.model_names = {
        first_name[id(slot)]: sorted(n for n, s in by_name.items() if s is slot)
        for slot in slots.values()
    }

    bearer = HTTPBearer(auto_error=False)

    def authorize(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        if config.api_key is None:
            return
        given = creds.credentials if creds is not None else ""
        if not key_matches(given, config.api_key):
            raise UnauthorizedError(
                "missing or wrong API key; send the header 'Authorization: Bearer <key>'"
            )

    def resolve(model: str | None) -> ModelSlot:
        if default is None:
            raise ModelNotServedError("no reranker is served; start with shortlist serve --rerank")
        if model is None or model == "default":
            return default
        slot = by_name.get(model)
        if slot is None and config.accept_any_model:
            if model not in fallbacks_logged and len(fallbacks_logged) < _FALLBACKS_LOGGED:
                fallbacks_logged.add(model)
                log.info(
                    "model %r is not served; answering it with the default model %r "
                    "(--accept-any-model; logged once per name)",
                    model[:80],
                    first_name[id(default)],
                )
            return default
        if slot is None:
            served = ", ".join(sorted(by_name))
            shown = model if len(model) <= 80 else model[:77] + "..."
            raise ModelNotServedError(
                f"model {shown!r} is not served; use one of: default, {served}"
            )
        return slot

    def check_inputs(query: str, texts: Sequence[str], field: str) -> None:
        check_query(query, "query")
        for i, text in enumerate(texts):
            check_text(text, f"{field}[{i}]")

    def check_limits(n_docs: int, top_n: int | None) -> None:
        if n_docs > config.max_documents:
            raise LimitExceededError(
                f"too many documents: {n_docs} > max_documents={config.max_documents} "
                "(server limit --max-docs)"
            )
        if top_n is not None and top_n > config.max_top_n:
            raise LimitExceededError(
                f"top_n={top_n} is over the server limit max_top_n={config.max_top_n}"
            )

    async def score(
        slot: ModelSlot,
        query: str,
        documents: list[Any],
        top_n: int | None,
        options: RerankOptions | None = None,
    ) -> tuple[Ranking, list[str]]:
        if not state["ready"]:
            raise NotReadyError("the server is starting or shutting down; retry later")
        started = time.perf_counter()
        ranking, warnings = await slot.rerank(query, documents, top_n, options)
        elapsed = time.perf_counter() - started
        metrics.stage.labels(stage="rerank").observe(elapsed)
        tokens = sum(estimate_pair_tokens(query, candidate_text(d)) for d in documents)
        metrics.observe_rerank(first_name[id(slot)], elapsed, len(documents), tokens)
        return ranking, warnings

    async def cohere(
        body: CohereV1RerankRequest | CohereV2RerankRequest,
        version: str,
        options: RerankOptions,
        response: Response,
    ) -> CohereRerankResponse:
        """Both Cohere versions: same fields but the model and the per-document option."""
        slot = resolve(body.model)
        response.headers[MODEL_HEADER] = first_name[id(slot)]
        texts = _texts(body.documents)
        check_inputs(body.query, texts, "documents")
        check_limits(len(texts), body.top_n)
        ranking, warnings = await score(slot, body.query, texts, body.top_n, options)
        warnings = [*warnings, *_ignored_warnings(body.ignored_fields)]
        return _cohere_response(ranking, texts, body.return_documents, version, warnings)

    @app.exception_handler(ShortlistError)
    async def shortlist_error(request: Request, exc: ShortlistError) -> Response:
        headers = None
        if isinstance(exc, QueueFullError):
            headers = {"Retry-After": str(exc.retry_after)}
        elif isinstance(exc, NotReadyError):
            headers = {"Retry-After": "1"}
        return _error(request, exc.http_status, _snake(type(exc).__name__), str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(request, 400, "invalid_request", "the request body is not valid JSON")
        parts = []
        for e in errors[:5]:
            loc = _location(e.get("loc", ()))
            problem = e.get("msg", "invalid")
            if e.get("type") == "string_unicode":  # pydantic's words for a lone surrogate
                problem = text_problem(e.get("input")) or problem
            parts.append(f"{loc}: {problem}")
        return _error(request, 422, "invalid_request", "invalid request: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(request, exc.status_code, "http_error", str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        return _error(request, 500, "internal_error", "internal server error")

    # Security is declared (and checked) only when there is a key to check.
    auth = [Depends(authorize)] if config.api_key is not None else []

    @app.post(
        "/v1/rerank",
        response_model=CohereRerankResponse,
        response_model_exclude_none=True,
        responses=_ERRORS,
        dependencies=auth,
        tags=["rerank"],
    )
    async def rerank_v1(body: CohereV1RerankRequest, response: Response) -> CohereRerankResponse:
        """Cohere v1 rerank."""
        options = RerankOptions(max_chunks_per_doc=body.max_chunks_per_doc)
        return await cohere(body, "1", options, response)

    @app.post(
        "/v2/rerank",
        response_model=CohereRerankResponse,
        response_model_exclude_none=True,
        responses=_ERRORS,
        dependencies=auth,
        tags=["rerank"],
    )
    async def rerank_v2(body: CohereV2RerankRequest, response: Response) -> CohereRerankResponse:
        """Cohere v2 rerank."""
        options = RerankOptions(max_tokens_per_doc=body.max_tokens_per_doc)
        return await cohere(body, "2", options, response)

    @app.post(
        "/rerank",
        response_model=list[TeiRank],
        response_model_exclude_none=True,
        responses=_TEI_ERRORS,
        dependencies=auth,
        tags=["rerank"],
    )
    async def rerank_tei(body: TeiRerankRequest, response: Response) -> list[TeiRank]:
        """text-embeddings-inference rerank: all texts, best first.

        Ignored options (unknown fields, `truncate: true`) are named in the
        `X-Shortlist-Warning` response header, one `; `-separated list."""
        slot = resolve(None)
        response.headers[MODEL_HEADER] = first_name[id(slot)]
        check_inputs(body.query, body.texts, "texts")
        check_limits(len(body.texts), None)
        ranking, warnings = await score(slot, body.query, list(body.texts), None)
        warnings = [*warnings, *_ignored_warnings(body.ignored_fields)]
        if body.truncate:
            warnings.append(
                "truncate=true is not supported and was ignored: long texts are windowed "
                "by the reranker, never truncated"
            )
        if warnings:
            response.headers[_WARNING_HEADER] = _header_text("; ".join(warnings))
        out = []
        for hit in ranking:
            assert hit.index is not None
            value = hit.raw_score if body.raw_scores else hit.calibrated_score
            out.append(
                TeiRank(
                    index=hit.index,
                    score=float(value if value is not None else hit.score),
                    text=body.texts[hit.index] if body.return_text else None,
                )
            )
        return out

    async def search_answer(body: SearchRequest) -> Response:
        """`/v1/search`, routed or direct (`shortlist.serve.direct`): one function."""
        if served is None:
            raise NoIndexServedError("no index is served; start with shortlist serve --index DIR")
        check_query(body.query, "query")
        headers: dict[str, str] = {}
        ignored = _ignored_warnings(body.ignored_fields)
        if ignored:
            headers[_WARNING_HEADER] = _header_text("; ".join(ignored))
        with served.lease() as (index, generation):
            answer = await search_in(index, body, headers)
        if generation is not None:
            headers[GENERATION_HEADER] = generation.name
        # Serialized once, by pydantic-core: FastAPI's response_model path would validate
        # the model a second time and re-encode it through jsonable_encoder.
        return Response(answer, media_type="application/json", headers=headers)

    @app.post(
        "/v1/search",
        response_model=SearchResponse,
        responses={**_ERRORS, 200: {"headers": _GENERATION_DOC}},
        dependencies=auth,
        tags=["search"],
    )
    async def search(body: SearchRequest) -> Response:
        """First stage over the served index (top `k`), then rerank to `top_n`.

        The whole request runs on one index generation, named in the response header
        `X-Shortlist-Generation` (when the index is a `LiveIndex`)."""
        return await search_answer(body)

    async def search_in(index: Any, body: SearchRequest, headers: dict[str, str]) -> bytes:
        k = body.k if body.k is not None else min(100, config.max_documents)
        if pipeline is not None and body.k is None:
            k = pipeline.k
        top_n = body.top_n
        if pipeline is not None and "top_n" not in body.model_fields_set:
            top_n = pipeline.top_n
        check_limits(k, top_n)
        slot = None
        # Without a served reranker, search is first stage only unless one is asked for.
        asked = "rerank" in body.model_fields_set
        if pipeline is not None and not asked:
            # The pipeline file decides: its reranker, or none.
            slot = resolve(pipeline.reranker) if pipeline.reranker is not None else None
        elif body.rerank is not False and (default is not None or asked):
            slot = resolve(None if body.rerank is True else str(body.rerank))
        if not state["ready"]:
            raise NotReadyError("the server is starting or shutting down; retry later")
        if slot is not None:
            headers[MODEL_HEADER] = first_name[id(slot)]
        mode: Any = body.mode
        if pipeline is not None and mode in (None, pipeline.mode):
            mode = pipeline.first_stage_spec()
        elif mode is None:
            # The default of an index without vectors is BM25, as in the CLI.
            mode = "hybrid" if index.has_dense else "bm25"
        runner = Pipeline(
            first_stage(index, mode),
            slot.reranker if slot is not None else None,
            k=k,
            top_n=top_n,
        )
        loop = asyncio.get_running_loop()
        executor = slot.executor(loop) if slot is not None else local_executor

        def run() -> bytes:
            # The answer is built in the worker thread too: the event loop only dispatches.
            ranking = runner.run(body.query, filter=body.filter, executor=executor)
            timings = dict(ranking.timings_ms)
            for stage in ("retrieve", "rerank"):
                if stage in timings:
                    metrics.stage.labels(stage=stage).observe(timings[stage] / 1000.0)
            answer = SearchResponse.model_validate(
                {
                    "query": body.query,
                    "results": [h.to_dict() for h in ranking],
                    "timings_ms": timings,
                    "warnings": list(ranking.warnings) or None,
                }
            )
            return answer.model_dump_json().encode()

        if slot is None:
            return await run_in_threadpool(run)
        async with slot.serving():
            return await run_in_threadpool(run)

    @app.get("/info", tags=["rerank"], response_model=TeiInfo, responses=_ERRORS)
    async def info() -> dict[str, Any]:
        """text-embeddings-inference's model info, for TEI clients: the default model
        (`model_id`) and this server's limits (`max_client_batch_size`, ...)."""
        if default is None:
            raise ModelNotServedError("no reranker is served; start with shortlist serve --rerank")
        max_length = getattr(default.reranker, "max_length", None)
        return tei_info(
            model_id=first_name[id(default)],
            max_length=max_length if isinstance(max_length, int) else None,
            max_documents=config.max_documents,
            max_batch_tokens=config.max_batch_tokens,
            max_batch_pairs=config.max_batch_pairs,
            queue_size=config.queue_size,
            version=__version__,
            models=sorted(by_name),
        )

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"], responses=_ERRORS)
    async def ready() -> dict[str, Any]:
        """Readiness: models started and the index open, not shutting down."""
        if not state["ready"]:
            raise NotReadyError("not ready: starting or shutting down")
        out: dict[str, Any] = {
            "status": "ready",
            "models": sorted(by_name),
            "index": served is not None,
        }
        generation = served.generation if served is not None else None
        if generation is not None:
            out["generation"] = {"name": generation.name, "number": generation.number}
        return out

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    if playground is not None:
        from shortlist.serve.playground import PlaygroundHost, add_playground

        host = PlaygroundHost(
            served=served,
            resolve=resolve,
            models=list(slots),
            pipeline=pipeline,
            is_ready=lambda: state["ready"],
            auth=auth,
            auth_required=config.api_key is not None,
            max_documents=config.max_documents,
            max_top_n=config.max_top_n,
        )
        add_playground(app, host, playground)

    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = base_openapi()
            _state_limits(
                spec,
                config,
                models=["default", *sorted(by_name)] if default is not None else [],
                modes=_modes_of(served),
            )
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    direct = {
        "/v1/search": DirectRoute(
            SearchRequest, search_answer, config.api_key, app.exception_handlers
        )
    }
    app.add_middleware(_Edge, metrics=metrics, max_bytes=config.max_request_bytes, direct=direct)
    app.add_middleware(AccessLog)  # outermost: its latency and request id cover everything
    return app


def _modes_of(served: LiveIndex | _FixedIndex | None) -> list[str] | None:
    """First-stage modes the served index answers (None: unknown, not stated)."""
    if served is None:
        return None
    with served.lease() as (index, _):
        has_dense = getattr(index, "has_dense", None)
    if has_dense is None:
        return None
    return ["bm25", "dense", "hybrid"] if has_dense else ["bm25"]


def _state_limits(
    spec: dict[str, Any], config: ServeConfig, *, models: list[str], modes: list[str] | None
) -> None:
    """Write this server's limits and model names into its OpenAPI spec, so that a request
    valid by the spec is one the server accepts (and a generated client or fuzzer sees the
    real bounds): `model` enums, `top_n`/`k` maxima, `documents`/`texts` max items."""
    schemas = spec.get("components", {}).get("schemas", {})

    def prop(model: str, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = schemas.get(model, {}).get("properties", {}).get(name)
        return found

    def variants(p: dict[str, Any]) -> list[dict[str, Any]]:
        return [v for v in p.get("anyOf", [p]) if v.get("type") != "null"]

    model_names = models or ["default"]
    for model in ("CohereV1RerankRequest", "CohereV2RerankRequest"):
        p = prop(model, "model")
        if p is not None and not (models and config.accept_any_model):
            for v in variants(p):
                v["enum"] = model_names
    for model, field in (
        ("CohereV1RerankRequest", "documents"),
        ("CohereV2RerankRequest", "documents"),
        ("TeiRerankRequest", "texts"),
    ):
        p = prop(model, field)
        if p is not None:
            p["maxItems"] = config.max_documents
    for model in ("CohereV1RerankRequest", "CohereV2RerankRequest", "SearchRequest"):
        p = prop(model, "top_n")
        if p is not None:
            for v in variants(p):
                v["maximum"] = config.max_top_n
    p = prop("SearchRequest", "k")
    if p is not None:
        for v in variants(p):
            v["maximum"] = config.max_documents
    p = prop("SearchRequest", "rerank")
    if p is not None:
        if models and config.accept_any_model:
            p["anyOf"] = [{"type": "boolean"}, {"type": "string"}]
        elif models:
            p["anyOf"] = [{"type": "boolean"}, {"type": "string", "enum": models}]
        else:
            p.pop("anyOf", None)
            p.update({"type": "boolean", "enum": [False], "default": False})
    p = prop("SearchRequest", "mode")
    if p is not None and modes is not None:
        for v in variants(p):
            v["enum"] = modes


def _location(loc: Sequence[Any]) -> str:
    """A pydantic error location as a client reads it: `documents[3].text`."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


async def _follow(live: LiveIndex) -> None:
    """Poll the index folder for new generations until cancelled (off the event loop)."""
    while True:
        await asyncio.sleep(live.poll_interval_s)
        await asyncio.to_thread(live.refresh)


def _ignored_warnings(fields: Sequence[str]) -> list[str]:
    """One warning per request field the server does not know (at most 20, names cut)."""
    out = [f"{_shown(name)} is not supported by this server and was ignored" for name in fields]
    if len(out) > 20:
        out = [*out[:20], f"... and {len(out) - 20} more unsupported fields were ignored"]
    return out


def _shown(name: str) -> str:
    return name if len(name) <= 64 else name[:61] + "..."


def _header_text(text: str) -> str:
    """`text` as a header value: ASCII (others escaped), at most 2000 characters."""
    safe = text.encode("ascii", "backslashreplace").decode("ascii")
    safe = "".join(c if c.isprintable() else " " for c in safe)
    return safe if len(safe) <= 2000 else safe[:1997] + "..."


def _texts(documents: list[DocumentIn]) -> list[str]:
    return [d if isinstance(d, str) else d.text for d in documents]


def _cohere_response(
    ranking: Ranking, texts: list[str], return_documents: bool, version: str, warnings: list[str]
) -> CohereRerankResponse:
    results = []
    for hit in ranking:
        assert hit.index is not None
        results.append(
            CohereRerankResult(
                index=hit.index,
                relevance_score=float(hit.score),
                document=ResultDocument(text=texts[hit.index]) if return_documents else None,
            )
        )
    # Cohere bills one search unit per query with up to 100 documents.
    units = max(1, math.ceil(len(texts) / 100))
    return CohereRerankResponse(
        id=str(uuid.uuid4()),
        results=results,
        meta=ApiMeta(
            api_version=ApiVersion(version=version),
            billed_units=BilledUnits(search_units=units),
            warnings=[*warnings, *ranking.warnings] or None,
        ),
    )
