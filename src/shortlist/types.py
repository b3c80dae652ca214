"""Typed, immutable records shared by every stage.

A stage never edits the records it is given: it returns new ones. `Ranking` is the
output of every first stage, fusion and reranker; `Run` is the evaluation format
(`{query_id: {doc_id: score}}`), read and written as TREC run files and JSON.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from shortlist.errors import InvalidInputError
from shortlist.validate import check_strings, check_text

Run = dict[str, dict[str, float]]
"""A run: query id -> document id -> score (higher is better)."""

Qrels = dict[str, dict[str, int]]
"""Relevance judgements: query id -> document id -> graded relevance (0 = not relevant)."""


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


SECTION_SEPARATOR = " › "
"""Joins a heading path into the ``section`` metadata string: ``Installation › Upgrading``."""


@dataclass(frozen=True, slots=True)
class Region:
    """Where a stretch ``text[start:end]`` of a document sits in its source.

    ``section`` is the heading path (outermost first; empty outside any heading),
    ``page`` the 1-based page of a PDF. ``whole=True`` marks a block the chunker must not
    cut unless it is longer than a chunk on its own (a Markdown code block).
    """

    start: int
    end: int
    section: tuple[str, ...] = ()
    page: int | None = None
    whole: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "section", tuple(self.section))

    @property
    def location(self) -> tuple[tuple[str, ...], int | None]:
        """What passages cut from this region cite: (heading path, page)."""
        return self.section, self.page


@dataclass(frozen=True, slots=True)
class Document:
    """A source document as read from the user's corpus.

    ``regions`` (optional, from the HTML, PDF, DOCX and Markdown readers) map stretches
    of ``text`` to their place in the source: sorted, non-overlapping, inside the text.
    The chunker never lets a passage span two regions with different locations, and
    gives each passage the ``section``/``page`` of its region.

    Raises `shortlist.validate.InvalidTextError` when its id, text, title or a metadata
    string is not valid text (e.g. holds a lone surrogate), so nothing unencodable ever
    reaches an index or a model, and `InvalidInputError` for regions out of order or
    outside the text.
    """

    id: str
    text: str
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    regions: tuple[Region, ...] = ()

    def __post_init__(self) -> None:
        check_text(self.id, "document", what="id")
        where = f"document {self.id!r}"
        check_text(self.text, where, what="text")
        check_text(self.title, where, what="title")
        check_strings(self.metadata, f"{where} metadata")
        object.__setattr__(self, "metadata", _frozen_mapping(self.metadata))
        object.__setattr__(self, "regions", tuple(self.regions))
        previous_end = 0
        for region in self.regions:
            if not previous_end <= region.start <= region.end <= len(self.text):
                raise InvalidInputError(
                    f"{where}: region [{region.start}, {region.end}) is out of order or "
                    f"outside the text (length {len(self.text)}); regions must be sorted "
                    "and must not overlap"
                )
            previous_end = region.end


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrievable unit: a chunk of a document, small enough for a reranker.

    `start`/`end` are character offsets into the parent document's text, so a
    passage can always be traced back to where it came from.
    """

    id: str
    doc_id: str
    text: str
    start: int = 0
    end: int = 0
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen_mapping(self.metadata))


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    text: str

    def __post_init__(self) -> None:
        check_text(self.id, "query", what="id")
        check_text(self.text, f"query {self.id!r}", what="text")


@dataclass(frozen=True, slots=True)
class Hit:
    """One ranked result.

    `score` is the score of the stage that produced the ranking. A reranker also
    fills `raw_score` (model output, e.g. a logit), `calibrated_score` (in [0, 1])
    and `index` (position of the candidate in the reranker's input). Hits that went
    through a first stage keep `first_stage_rank`/`first_stage_score`. `window`
    names the chunk window that decided a long document's score.
    """

    id: str
    score: float
    rank: int
    doc_id: str = ""
    text: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    first_stage_rank: int | None = None
    first_stage_score: float | None = None
    index: int | None = None
    raw_score: float | None = None
    calibrated_score: float | None = None
    window: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen_mapping(self.metadata))
        if not self.doc_id:
            object.__setattr__(self, "doc_id", self.id)

    def with_(self, **changes: Any) -> Hit:
        """A copy of this hit with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "doc_id": self.doc_id,
            "rank": self.rank,
            "score": self.score,
            "first_stage_rank": self.first_stage_rank,
            "first_stage_score": self.first_stage_score,
            "text": self.text,
            "metadata": dict(self.metadata),
            "citation": citation_label(self),
        }
        if self.raw_score is not None:
            out["raw_score"] = self.raw_score
        if self.calibrated_score is not None:
            out["calibrated_score"] = self.calibrated_score
        if self.index is not None:
            out["index"] = self.index
        if self.window is not None:
            out["window"] = self.window
        return out


@dataclass(frozen=True, slots=True)
class Ranking:
    """An immutable ranked list of hits for one query, best first, with stage timings.

    - `stats`: named counters a stage reports about how it made this ranking (a listwise
      reranker's repaired replies, failed windows and tokens used), empty for most stages;
    - `warnings`: what went wrong without failing the query (a listwise window that kept
      its first-stage order), one sentence each; the server returns them in `meta.warnings`.
    """

    query: str
    hits: tuple[Hit, ...] = ()
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    stats: Mapping[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "hits", tuple(self.hits))
        object.__setattr__(self, "timings_ms", _frozen_mapping(self.timings_ms))
        object.__setattr__(self, "stats", _frozen_mapping(self.stats))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)

    def __getitem__(self, i: int) -> Hit:
        return self.hits[i]

    @property
    def ids(self) -> list[str]:
        return [h.id for h in self.hits]

    def top(self, n: int | None) -> Ranking:
        """The first `n` hits (all when `n` is None)."""
        if n is None or n >= len(self.hits):
            return self
        return replace(self, hits=self.hits[:n])

    def with_timings(self, **timings_ms: float) -> Ranking:
        merged = dict(self.timings_ms)
        merged.update(timings_ms)
        return replace(self, timings_ms=merged)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "query": self.query,
            "results": [h.to_dict() for h in self.hits],
            "timings_ms": dict(self.timings_ms),
        }
        if self.stats:
            out["stats"] = dict(self.stats)
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def citation_label(hit: Hit | Passage) -> str:
    """How a prompt, an answer or a client cites a hit or passage: where it is in its source.

    ``guide.pdf p. 12`` for a PDF page, ``guide.html § Installation › Upgrading`` for a
    section, the source alone when it has neither, and the document id for passages that
    came without a ``source`` (JSONL, CSV, BEIR records), e.g. ``doc-7``. Reads the
    ``source``, ``page`` and ``section`` metadata the document readers write; a record
    whose own metadata merely has a ``source`` field (no ``format``, ``page`` or
    ``section``) is cited by its document id, since its source may be shared by many.
    """
    metadata = hit.metadata
    source = metadata.get("source")
    located = any(key in metadata for key in ("format", "page", "section"))
    label = source if located and isinstance(source, str) and source else hit.doc_id
    page = metadata.get("page")
    section = metadata.get("section")
    if isinstance(page, int) and not isinstance(page, bool):
        label += f" p. {page}"
    if isinstance(section, str) and section:
        label += f" § {section}"
    return label


def rank_hits(
    query: str, hits: list[Hit], timings_ms: Mapping[str, float] | None = None
) -> Ranking:
    """Sort `hits` by score (descending, ties kept in input order) and number ranks from 1."""
    order = sorted(range(len(hits)), key=lambda i: -hits[i].score)
    ranked = tuple(hits[i].with_(rank=r) for r, i in enumerate(order, start=1))
    return Ranking(query=query, hits=ranked, timings_ms=timings_ms or {})
