"""Wire schemas of the HTTP service.

- Cohere rerank v1 (`POST /v1/rerank`) and v2 (`POST /v2/rerank`), as the official `cohere`
  SDK sends and parses them (cohere 5.x-7.x: `cohere.Client.rerank`, `cohere.ClientV2.rerank`).
  v1 documents may be strings or `{"text": ...}` objects and results carry `document: {text}`
  when `return_documents` is true. Cohere's v2 API dropped `return_documents` and returns
  `index` and `relevance_score` only; older SDKs still send `return_documents`, so v2 accepts
  it and then returns `document: {text}` too.
- text-embeddings-inference `POST /rerank`: `{query, texts, raw_scores, return_text, truncate,
  truncation_direction}` -> `[{index, score, text?}]`, sorted by score, best first.
- `POST /v1/search`: first stage over the served index, optionally reranked; the response is
  `Ranking.to_dict()` (`{query, results: [...], timings_ms}`).

Unknown request fields are ignored (clients send provider-specific options such as
`rank_fields`, `priority` or cohere 7's `relevant_spans`), so a client written for the
hosted API keeps working; each request remembers them (`ignored_fields`) so the server
can say so in its answer rather than drop them silently.
Booleans and integers are strict (`true`/`false` only, never `0` or `"yes"`; an
integer is never `true` or `"3"`), as the spec says.
The served app states its own limits and model names in its spec (see `app.create_app`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    StrictBool,
    model_validator,
)

from shortlist.validate import NOT_BLANK_PATTERN

MAX_QUERY_CHARS = 100_000


def _json_integer(value: Any) -> Any:
    """An integer as JSON Schema means it: `3` or `3.0`, never `true`, `"3"` or `3.5`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Input should be a valid integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("Input should be a valid integer, got a fractional number")
        return int(value)
    return value


PositiveInt = Annotated[int, Field(ge=1), BeforeValidator(_json_integer)]
"""An integer >= 1 (JSON Schema `integer` with `minimum: 1`)."""
MAX_PER_DOC = 1_000_000
"""Largest `max_tokens_per_doc` / `max_chunks_per_doc` (far above any model's context)."""
PerDocLimit = Annotated[int, Field(ge=1, le=MAX_PER_DOC), BeforeValidator(_json_integer)]
QUERY_PATTERN = NOT_BLANK_PATTERN
"""A query must hold some non-whitespace text (checked by the routes, stated in the spec)."""


def _query(description: str = "The query.") -> Any:
    return Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description=description + " Must not be blank.",
        json_schema_extra={"pattern": QUERY_PATTERN},
    )


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")
    _ignored: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _remember_ignored(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        model = handler(data)
        if isinstance(data, dict):
            known = set(cls.model_fields)
            model._ignored = tuple(k for k, v in data.items() if k not in known and v is not None)
        return model

    @property
    def ignored_fields(self) -> tuple[str, ...]:
        """Fields the request gave (not null) that this server does not know, in order."""
        return self._ignored


class TextDocument(BaseModel):
    """A document given as an object; only `text` is scored (other keys are ignored)."""

    model_config = ConfigDict(extra="ignore")
    text: str


DocumentIn = str | TextDocument


class CohereV1RerankRequest(_Request):
    model: str | None = Field(
        default=None, description="A served model: its spec, a --name alias, or 'default'."
    )
    query: str = _query()
    documents: list[DocumentIn] = Field(min_length=1)
    top_n: PositiveInt | None = None
    return_documents: StrictBool = False
    max_chunks_per_doc: PerDocLimit | None = None


class CohereV2RerankRequest(_Request):
    model: str = Field(description="A served model: its spec, a --name alias, or 'default'.")
    query: str = _query()
    documents: list[DocumentIn] = Field(min_length=1)
    top_n: PositiveInt | None = None
    max_tokens_per_doc: PerDocLimit | None = None
    return_documents: StrictBool = Field(
        default=False, description="Not part of Cohere v2; accepted for older SDKs."
    )


class ResultDocument(BaseModel):
    text: str


class CohereRerankResult(BaseModel):
    index: int
    relevance_score: float
    document: ResultDocument | None = None


class ApiVersion(BaseModel):
    version: str


class BilledUnits(BaseModel):
    search_units: float


class ApiMeta(BaseModel):
    api_version: ApiVersion
    billed_units: BilledUnits
    warnings: list[str] | None = None


class CohereRerankResponse(BaseModel):
    id: str
    results: list[CohereRerankResult]
    meta: ApiMeta


class TeiRerankRequest(_Request):
    query: str = _query()
    texts: list[str] = Field(min_length=1)
    raw_scores: StrictBool = False
    return_text: StrictBool = False
    truncate: StrictBool | None = Field(
        default=False,
        description="Accepted for compatibility; long texts are windowed by the reranker, "
        "never truncated.",
    )
    truncation_direction: Literal["Left", "Right", "left", "right"] | None = "Right"


class TeiRank(BaseModel):
    index: int
    score: float
    text: str | None = None


class SearchRequest(_Request):
    query: str = _query()
    k: PositiveInt | None = Field(
        default=None,
        description="First-stage depth (candidates to rerank); default 100, or the server's "
        "max documents when lower.",
    )
    top_n: PositiveInt = Field(default=10, description="Results returned.")
    mode: Literal["bm25", "dense", "hybrid"] | None = Field(
        default=None, description="First-stage mode; the index's default when omitted."
    )
    filter: dict[str, Any] | None = Field(default=None, description="Metadata filter.")
    rerank: StrictBool | str = Field(
        default=True,
        description="true: the default reranker; false: first stage only; a string: a served "
        "model by name.",
    )


class SearchHit(BaseModel):
    id: str
    doc_id: str
    rank: int
    score: float
    first_stage_rank: int | None = None
    first_stage_score: float | None = None
    text: str
    metadata: dict[str, Any]
    citation: str = Field(
        default="",
        description="Where the passage is in its source, for citing it: 'guide.pdf p. 12', "
        "'guide.html § Installation › Upgrading', else the document id.",
    )
    raw_score: float | None = None
    calibrated_score: float | None = None
    index: int | None = None
    window: int | None = None


class SearchResponse(BaseModel):
    query: str
    results: list[SearchHit]
    timings_ms: dict[str, float]
    # what went wrong without failing the search (e.g. a listwise window kept its order)
    warnings: list[str] | None = None


class TeiInfo(BaseModel):
    """`GET /info`: text-embeddings-inference's `Info`, with this server's values (see
    `serve.tei.tei_info`), plus `models`: every name a request may give as `model`."""

    model_config = ConfigDict(protected_namespaces=())
    model_id: str
    model_sha: str | None
    model_dtype: str
    model_type: dict[str, Any]
    max_concurrent_requests: int
    max_input_length: int
    max_batch_tokens: int
    max_batch_requests: int | None
    max_client_batch_size: int
    auto_truncate: bool
    tokenization_workers: int
    version: str
    sha: str | None
    docker_label: str | None
    models: list[str]


class TeiError(BaseModel):
    """Every error body of the TEI route `/rerank`, in text-embeddings-inference's shape."""

    error: str
    error_type: str


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    """Every error body. `message` at the top level is what Cohere's API and SDK use."""

    message: str
    error: ErrorDetail
