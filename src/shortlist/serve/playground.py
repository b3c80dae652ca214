"""The web playground: a page at `/` and the JSON endpoints it calls.

The page (`static/index.html`, `app.js`, `style.css`, package data, no build step and
no network) compares two or three pipelines side by side on the user's queries, saves
relevance marks, shows a saved `shortlist eval --json` file and streams an answer with
citations. It calls only the JSON endpoints below, which every other client may call too
(with the API key when the server has one); their schemas are in `playground_schemas`.

- `GET /v1/playground`: the served pipelines, models, modes, limits and features.
- `POST /v1/playground/search`: one pipeline, explained hit by hit.
- `GET|POST /v1/judgements`: marks saved as a BEIR folder (`judgements.JudgementStore`).
- `POST /v1/answer`: the packed prompt to the configured LLM, streamed back as SSE.
- `GET /v1/playground/eval`: the eval JSON the server was given.

A pipeline is a served one's name, or a spec `FIRST_STAGE[?PARAMS][+MODEL]` whose MODEL
is a served reranker: a request never loads a model (as for every other endpoint).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from shortlist.errors import InvalidInputError, ShortlistError
from shortlist.generate.chat import ChatClient, ChatConfig
from shortlist.generate.cost import Price
from shortlist.generate.sse import format_event
from shortlist.pipeline import Pipeline, parse_pipeline
from shortlist.pipeline_file import PipelineConfig
from shortlist.rerank.base import local_executor
from shortlist.retrieve.analyzer import TOKEN_PATTERN
from shortlist.retrieve.stages import first_stage
from shortlist.serve.judgements import JudgementStore
from shortlist.serve.playground_schemas import (
    AnswerRequest,
    ExplainedHit,
    ExplainRequest,
    ExplainResponse,
    JudgementRequest,
    Judgements,
    PlaygroundInfo,
    Segment,
    ServedPipeline,
)
from shortlist.serve.service import ModelSlot
from shortlist.types import Hit, Ranking
from shortlist.validate import check_query

STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
_WORD = re.compile(TOKEN_PATTERN)
PIPELINE_FILE_NAME = "pipeline file"


class PlaygroundFeatureError(ShortlistError):
    """A playground feature the server was not started with (judgements, LLM, eval)."""

    http_status = 404


class PlaygroundNotReadyError(ShortlistError):
    """The server is starting or shutting down."""

    http_status = 503


class PipelineNotServedError(ShortlistError):
    """A typed spec names a reranker the server does not serve."""

    http_status = 404


@dataclass(frozen=True)
class PlaygroundConfig:
    """What the playground offers beyond comparing pipelines: a judgements folder, an
    LLM for answers (with its price), a saved eval JSON to show, the prompt budget."""

    judgements_dir: Path | None = None
    llm: ChatConfig | None = None
    price: Price | None = None
    eval_json: Path | None = None
    budget_tokens: int = 2000


@dataclass(frozen=True)
class PlaygroundHost:
    """What the app lends the playground: its index (`lease()`), its rerankers by name,
    its pipeline file, readiness, auth dependencies and limits."""

    served: Any
    resolve: Callable[[str | None], ModelSlot]
    models: Sequence[str]
    pipeline: PipelineConfig | None
    is_ready: Callable[[], bool]
    auth: Sequence[Any]
    auth_required: bool
    max_documents: int
    max_top_n: int


@dataclass(frozen=True)
class _Chosen:
    name: str
    spec: str
    first_stage: str
    slot: ModelSlot | None
    k: int
    top_n: int


def add_playground(app: FastAPI, host: PlaygroundHost, config: PlaygroundConfig) -> None:
    """Register the page and its endpoints on `app`."""
    store = JudgementStore(config.judgements_dir) if config.judgements_dir else None
    if store is not None and host.served is not None:
        with host.served.lease() as (index, _generation):
            store.export_corpus(index)
    chat = ChatClient(config.llm) if config.llm is not None else None
    default_k = host.pipeline.k if host.pipeline is not None else min(50, host.max_documents)
    default_top_n = host.pipeline.top_n if host.pipeline is not None else min(10, host.max_top_n)
    auth = list(host.auth)

    def modes() -> list[str]:
        if host.served is None:
            return []
        with host.served.lease() as (index, _):
            return ["bm25", "dense", "hybrid"] if getattr(index, "has_dense", False) else ["bm25"]

    def served_pipelines() -> list[ServedPipeline]:
        out = []
        if host.pipeline is not None:
            p = host.pipeline
            out.append(ServedPipeline(name=PIPELINE_FILE_NAME, spec=p.spec, k=p.k, top_n=p.top_n))
        available = modes()
        out += [ServedPipeline(name=m, spec=m) for m in available]
        base = "hybrid" if "hybrid" in available else "bm25"
        out += [ServedPipeline(name=f"{base}+{m}", spec=f"{base}+{m}") for m in host.models]
        return out

    def choose(body: ExplainRequest) -> _Chosen:
        if host.served is None:
            raise PlaygroundFeatureError(
                "no index is served; start with shortlist serve --index DIR (or shortlist ui)"
            )
        check_query(body.query, "query")
        name = body.pipeline.strip()
        k, top_n = default_k, default_top_n
        spec = name
        if name == PIPELINE_FILE_NAME and host.pipeline is not None:
            spec, k, top_n = host.pipeline.spec, host.pipeline.k, host.pipeline.top_n
        parsed = parse_pipeline(spec)
        slot = None
        if parsed.reranker is not None:
            try:
                slot = host.resolve(parsed.reranker)
            except ShortlistError:
                served = ", ".join(host.models) or "none"
                raise PipelineNotServedError(
                    f"unknown spec {name!r}: the reranker {parsed.reranker!r} is not served "
                    f"(served: {served}); start the server with --rerank {parsed.reranker}"
                ) from None
        k = body.k if body.k is not None else k
        top_n = body.top_n if body.top_n is not None else top_n
        if k > host.max_documents or top_n > host.max_top_n:
            raise InvalidInputError(
                f"k={k} / top N={top_n} are over the server's limits ({host.max_documents} "
                f"candidates, top N {host.max_top_n})"
            )
        if not host.is_ready():
            raise PlaygroundNotReadyError("the server is starting or shutting down; retry")
        return _Chosen(name, str(parsed), parsed.first_stage, slot, k, top_n)

    async def run(body: ExplainRequest) -> ExplainResponse:
        chosen = choose(body)
        loop = asyncio.get_running_loop()
        executor = chosen.slot.executor(loop) if chosen.slot is not None else local_executor

        def work() -> ExplainResponse:
            with host.served.lease() as (index, _generation):
                runner = Pipeline(
                    first_stage(index, chosen.first_stage),
                    chosen.slot.reranker if chosen.slot is not None else None,
                    k=chosen.k,
                    top_n=chosen.top_n,
                )
                ranking = runner.run(body.query, filter=body.filter, executor=executor)
                return explain(index, body.query, chosen, runner.describe(), ranking)

        if chosen.slot is None:
            return await run_in_threadpool(work)
        async with chosen.slot.serving():
            return await run_in_threadpool(work)

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(_static("index.html"))

    @app.get("/playground/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        kind = STATIC_FILES.get(name)
        if kind is None:
            raise PlaygroundFeatureError(f"no playground file {name!r}")
        return Response(_static(name), media_type=kind, headers={"Cache-Control": "no-cache"})

    @app.get("/v1/playground", response_model=PlaygroundInfo, tags=["playground"])
    async def info() -> PlaygroundInfo:
        """What the playground can offer on this server."""
        return PlaygroundInfo(
            pipelines=served_pipelines(),
            models=list(host.models),
            modes=modes(),
            k=default_k,
            top_n=default_top_n,
            max_k=host.max_documents,
            max_top_n=host.max_top_n,
            judgements=store is not None,
            llm=config.llm.model if config.llm is not None else None,
            eval=config.eval_json is not None,
            auth=host.auth_required,
        )

    @app.post(
        "/v1/playground/search",
        response_model=ExplainResponse,
        dependencies=auth,
        tags=["playground"],
    )
    async def explain_search(body: ExplainRequest) -> ExplainResponse:
        """One pipeline's ranking, explained: first-stage rank and move, scores, title,
        metadata, BM25's matched terms, stage timings."""
        return await run(body)

    def judgements() -> JudgementStore:
        if store is None:
            raise PlaygroundFeatureError(
                "judgements are not saved on this server; start it with --judgements DIR"
            )
        return store

    @app.get("/v1/judgements", response_model=Judgements, dependencies=auth, tags=["playground"])
    async def get_judgements(query: str = Query(min_length=1)) -> Judgements:  # noqa: B008
        """The marks saved for a query."""
        s = judgements()
        qid, marks = await run_in_threadpool(s.marks, query)
        return Judgements(query_id=qid, query=query.strip(), marks=marks, folder=str(s.root))

    @app.post("/v1/judgements", response_model=Judgements, dependencies=auth, tags=["playground"])
    async def post_judgement(body: JudgementRequest) -> Judgements:
        """Mark a document relevant (1-3) or not (0) for a query; null removes the mark.
        Saved to qrels/test.tsv and queries.jsonl of the judgements folder."""
        s = judgements()
        check_query(body.query, "query")
        qid, marks = await run_in_threadpool(s.mark, body.query, body.doc_id, body.relevance)
        return Judgements(query_id=qid, query=body.query.strip(), marks=marks, folder=str(s.root))

    @app.get("/v1/playground/eval", dependencies=auth, tags=["playground"])
    async def saved_eval() -> Any:
        """The `shortlist eval --json` file the server was started with (--eval-json)."""
        if config.eval_json is None:
            raise PlaygroundFeatureError("no eval report on this server; start it with --eval-json")
        return json.loads(await run_in_threadpool(config.eval_json.read_text, "utf-8"))

    @app.post(
        "/v1/answer",
        dependencies=auth,
        tags=["playground"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def answer(body: AnswerRequest) -> StreamingResponse:
        """Rank, pack the top passages into a prompt, stream the LLM's answer as SSE."""
        from shortlist.generate.answer import PromptPacked, answer_events

        if chat is None:
            raise PlaygroundFeatureError(
                "no LLM is configured; start the server with --llm URL --llm-model NAME"
            )
        explained = await run(body)
        hits = [Hit(h.id, h.score, h.rank, doc_id=h.doc_id, text=h.text) for h in explained.results]
        ranking = Ranking(body.query, tuple(hits))
        events = answer_events(
            body.query,
            ranking,
            chat,
            budget_tokens=body.budget_tokens or config.budget_tokens,
            price=config.price,
        )
        packed = await run_in_threadpool(next, events)
        assert isinstance(packed, PromptPacked)
        # The first piece of the answer is awaited here, so that a down or wrong endpoint
        # is an ordinary JSON error (502) and not a broken stream.
        first = await run_in_threadpool(next, events)
        head = {
            **explained.model_dump(),
            "prompt": {
                "tokens": packed.packed.tokens,
                "budget": packed.packed.budget,
                "citations": packed.packed.to_dict()["citations"],
                "model": chat.config.model,
            },
        }
        return StreamingResponse(
            iterate_in_threadpool(_sse(head, first, events)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


def _sse(head: dict[str, Any], first: Any, events: Iterator[Any]) -> Iterator[str]:
    from shortlist.generate.answer import Answered
    from shortlist.generate.chat import TextDelta

    yield format_event("passages", json.dumps(head))

    def one(event: Any) -> str:
        if isinstance(event, TextDelta):
            return format_event("delta", json.dumps({"text": event.text}))
        if isinstance(event, Answered):
            return format_event("done", json.dumps(event.to_dict()))
        return ""

    try:
        yield one(first)
        for event in events:
            yield one(event)
    except ShortlistError as exc:
        body = {"message": str(exc), "type": type(exc).__name__}
        yield format_event("error", json.dumps(body))


def explain(
    index: Any, query: str, chosen: _Chosen, describe: str, ranking: Ranking
) -> ExplainResponse:
    """The explained form of `ranking` (see `ExplainedHit`)."""
    analyzer = getattr(index, "analyzer", None)
    highlighted = parse_pipeline(chosen.spec).mode != "dense" and analyzer is not None
    terms = set(analyzer.analyze(query)) if highlighted and analyzer is not None else set()
    passages = index.passages([h.id for h in ranking]) if hasattr(index, "passages") else []
    titles = {p.id: p.title for p in passages if p is not None}
    results = []
    for hit in ranking:
        first = hit.first_stage_rank
        if first is None or first > chosen.top_n:
            move = "new"
        else:
            move = "up" if first > hit.rank else "down" if first < hit.rank else "same"
        title = titles.get(hit.id, "")
        results.append(
            ExplainedHit.model_validate(
                {
                    **hit.to_dict(),
                    "title": title,
                    "move": move,
                    "move_by": (first - hit.rank) if first is not None else 0,
                    "segments": segments(hit.text, terms, analyzer),
                    "title_segments": segments(title, terms, analyzer),
                }
            )
        )
    return ExplainResponse(
        query=query,
        pipeline=chosen.name,
        spec=chosen.spec,
        describe=describe,
        k=chosen.k,
        top_n=chosen.top_n,
        highlighted=highlighted,
        results=results,
        timings_ms=dict(ranking.timings_ms),
    )


def segments(text: str, terms: set[str], analyzer: Any) -> list[Segment]:
    """`text` cut into runs, the words whose BM25 term is in `terms` marked."""
    if not text:
        return []
    if not terms:
        return [Segment(text=text, match=False)]
    words = list(_WORD.finditer(text))
    analyzed = analyzer.analyze_many([w.group() for w in words]) if words else []
    out: list[Segment] = []
    at = 0
    for word, term in zip(words, analyzed, strict=True):
        if term and term[0] in terms:
            if word.start() > at:
                out.append(Segment(text=text[at : word.start()], match=False))
            out.append(Segment(text=word.group(), match=True))
            at = word.end()
    if at < len(text):
        out.append(Segment(text=text[at:], match=False))
    return out


def _static(name: str) -> bytes:
    return resources.files("shortlist.serve").joinpath("static", name).read_bytes()
