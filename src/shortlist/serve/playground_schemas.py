"""Wire schemas of the playground's JSON endpoints (see `shortlist.serve.playground`).

- `GET /v1/playground`: what the page can offer (`PlaygroundInfo`).
- `POST /v1/playground/search`: one pipeline's ranking, explained (`ExplainRequest` ->
  `ExplainResponse`): each hit with its first-stage rank and move, raw and calibrated
  scores, title, metadata, and its text cut into segments with BM25's matched terms
  marked; the stage timings.
- `GET /v1/judgements?query=...`, `POST /v1/judgements`: relevance marks (`Judgements`).
- `POST /v1/answer`: `AnswerRequest` -> a `text/event-stream` of `passages` (an
  `ExplainResponse` plus the prompt's citations), `delta` (`{"text"}`), then `done`
  (answer, citations, usage, cost) or `error` (`{"message", "type"}`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shortlist.serve.schemas import PositiveInt, SearchHit, _query


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ServedPipeline(BaseModel):
    name: str = Field(description="What to send as `pipeline`.")
    spec: str = Field(description="FIRST_STAGE[?PARAMS][+MODEL] it runs.")
    k: int | None = None
    top_n: int | None = None


class PlaygroundInfo(BaseModel):
    pipelines: list[ServedPipeline]
    models: list[str] = Field(description="Served rerankers a typed spec may name after '+'.")
    modes: list[str] = Field(description="First stages the index answers.")
    k: int
    top_n: int
    max_k: int
    max_top_n: int
    judgements: bool = Field(description="Whether marks are saved (--judgements DIR).")
    llm: str | None = Field(description="The answering model, when --llm is set.")
    eval: bool = Field(description="Whether GET /v1/playground/eval has a report.")
    auth: bool = Field(description="Whether the JSON endpoints need the API key.")


class ExplainRequest(_Request):
    query: str = _query()
    pipeline: str = Field(
        min_length=1,
        max_length=2000,
        description="A served pipeline's name, or a spec FIRST_STAGE[?PARAMS][+MODEL] whose "
        "MODEL is a served reranker.",
    )
    k: PositiveInt | None = Field(default=None, description="First-stage depth.")
    top_n: PositiveInt | None = Field(default=None, description="Results kept.")
    filter: dict[str, Any] | None = Field(default=None, description="Metadata filter.")


class Segment(BaseModel):
    text: str
    match: bool = Field(description="A query term BM25 matched.")


class ExplainedHit(SearchHit):
    title: str = ""
    move: Literal["up", "down", "same", "new"] = Field(
        description="Against the first stage: new when it was not in the first stage's top N."
    )
    move_by: int = Field(description="first_stage_rank - rank (positive: moved up).")
    segments: list[Segment]
    title_segments: list[Segment]


class ExplainResponse(BaseModel):
    query: str
    pipeline: str
    spec: str
    describe: str
    k: int
    top_n: int
    highlighted: bool = Field(description="Whether BM25's matched terms are marked.")
    results: list[ExplainedHit]
    timings_ms: dict[str, float]


class JudgementRequest(_Request):
    query: str = _query()
    doc_id: str = Field(min_length=1, max_length=1000)
    relevance: int | None = Field(
        ge=0, le=3, description="0: not relevant, 1-3: relevant (graded); null removes the mark."
    )


class Judgements(BaseModel):
    query_id: str
    query: str
    marks: dict[str, int] = Field(description="doc_id -> relevance.")
    folder: str


class AnswerRequest(ExplainRequest):
    budget_tokens: PositiveInt | None = Field(
        default=None, description="Token budget of the prompt; the server's --budget when omitted."
    )
