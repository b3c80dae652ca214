"""LangChain adapters: a reranking document compressor and a retriever over an `Index`.

    # langchain 1.x: ContextualCompressionRetriever lives in langchain-classic
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from shortlist.integrations.langchain import ShortlistRerank, ShortlistRetriever

    compressor = ShortlistRerank(spec="cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2",
                                 top_n=5)
    retriever = ContextualCompressionRetriever(base_compressor=compressor,
                                               base_retriever=any_langchain_retriever)
    # or let shortlist do both stages over its own index:
    retriever = ShortlistRetriever(index=Index.open("my-index"), spec="bi-encoder", k=50)

(README.md, "Use with LangChain or LlamaIndex", has the same as a snippet that runs in
the tests.) Needs `pip install -e '.[langchain]'` from a checkout (and `langchain-classic`
for `ContextualCompressionRetriever`); importing this module without langchain-core raises
`MissingDependencyError`. `import shortlist` never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shortlist.errors import InvalidInputError, MissingDependencyError

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun, Callbacks
    from langchain_core.documents import Document
    from langchain_core.documents.compressor import BaseDocumentCompressor
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict, PrivateAttr
except ImportError as exc:  # pragma: no cover - exercised by simulating the missing extra
    raise MissingDependencyError(
        "langchain-core", "langchain", "the LangChain integration"
    ) from exc

from shortlist.integrations._common import LazyReranker, calibrated, check_settings, cut
from shortlist.pipeline import Pipeline
from shortlist.retrieve.stages import first_stage
from shortlist.retrieve.store import PassageStore
from shortlist.types import Hit

__all__ = ["ShortlistRerank", "ShortlistRetriever"]


class ShortlistRerank(BaseDocumentCompressor):
    """Reranks LangChain `Document`s with a shortlist reranker and keeps the best `top_n`.

    Give either `reranker` (a built shortlist `Reranker`) or `spec` (a reranker spec
    string, parsed at construction, its model loaded on first use). `score_threshold`
    drops documents whose calibrated score (in [0, 1]) is below it.

    `compress_documents` returns new `Document`s, best first, each a copy of its input
    whose metadata gains `relevance_score` (calibrated, in [0, 1]), `raw_score` (the
    model's own output) and `first_stage_index` (its position in the input). The
    inputs are never modified. Raises `InvalidInputError` for bad settings.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", frozen=True)

    reranker: Any = None
    spec: str | None = None
    top_n: int = 5
    score_threshold: float | None = None

    _lazy: LazyReranker = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        # Checked after pydantic so bad settings raise InvalidInputError, not a
        # ValidationError wrapping it.
        super().__init__(**data)
        check_settings(self.reranker, self.spec, self.top_n, self.score_threshold)
        self._lazy = LazyReranker(self.reranker, self.spec)

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """The reranked top documents (see the class docstring); `callbacks` is unused."""
        if not documents:
            return []
        texts = [d.page_content for d in documents]
        ranking = self._lazy.get().rerank(query, texts, top_n=self.top_n)
        out = []
        for hit in cut(ranking, self.score_threshold):
            assert hit.index is not None  # the Reranker contract fills it
            source = documents[hit.index]
            metadata = {
                **source.metadata,
                "relevance_score": calibrated(hit),
                "raw_score": hit.raw_score if hit.raw_score is not None else hit.score,
                "first_stage_index": hit.index,
            }
            out.append(source.model_copy(update={"metadata": metadata}))
        return out


class ShortlistRetriever(BaseRetriever):
    """Retrieves from a shortlist `Index` (first stage `mode`, top `k`), optionally
    reranks with `reranker` or `spec`, and returns the best `top_n` as `Document`s.

    `index` is an `Index` (or any other `PassageStore`). `mode` is `bm25`,
    `dense` or `hybrid`; None picks `hybrid`, or `bm25` for an index built without
    vectors. `filter` restricts the first stage to passages whose metadata match.
    Each `Document` has the passage text as `page_content`, `id` = passage id, and
    metadata: the passage's own metadata, then `id`, `doc_id`, `score` (calibrated when
    reranked), `rank`, `first_stage_rank`, and `raw_score` when reranked.
    `score_threshold` (needs a reranker) drops hits whose calibrated score is below it.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", frozen=True)

    index: Any
    reranker: Any = None
    spec: str | None = None
    k: int = 50
    top_n: int = 5
    mode: str | None = None
    filter: Mapping[str, Any] | None = None
    score_threshold: float | None = None

    _pipeline: Pipeline | None = PrivateAttr(default=None)
    _lazy: LazyReranker | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        if not isinstance(self.index, PassageStore):
            raise InvalidInputError(
                f"index= must be a shortlist Index (or another PassageStore), "
                f"got {type(self.index).__name__}; open one with Index.open(path)"
            )
        if self.k < 1:
            raise InvalidInputError(f"k must be >= 1, got {self.k}")
        if self.reranker is None and self.spec is None:
            if self.score_threshold is not None:
                raise InvalidInputError(
                    "score_threshold needs a reranker (calibrated scores); give reranker= or "
                    "spec=, or drop score_threshold"
                )
            if self.top_n < 1:
                raise InvalidInputError(f"top_n must be >= 1, got {self.top_n}")
        else:
            check_settings(self.reranker, self.spec, self.top_n, self.score_threshold)
            self._lazy = LazyReranker(self.reranker, self.spec)

    def _get_pipeline(self) -> Pipeline:
        # Built on first use so a spec's model loads only when the retriever is queried.
        if self._pipeline is None:
            store: PassageStore = self.index
            mode = self.mode or ("hybrid" if store.has_dense else "bm25")
            reranker = self._lazy.get() if self._lazy is not None else None
            self._pipeline = Pipeline(
                first_stage(store, mode), reranker, k=self.k, top_n=self.top_n
            )
        return self._pipeline

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        ranking = self._get_pipeline().run(query, filter=self.filter)
        return [_to_document(hit) for hit in cut(ranking, self.score_threshold)]


def _to_document(hit: Hit) -> Document:
    metadata: dict[str, Any] = {
        **hit.metadata,
        "id": hit.id,
        "doc_id": hit.doc_id,
        "score": hit.score,
        "rank": hit.rank,
        "first_stage_rank": hit.first_stage_rank
        if hit.first_stage_rank is not None
        else hit.rank,
    }
    if hit.raw_score is not None:
        metadata["raw_score"] = hit.raw_score
    return Document(page_content=hit.text, metadata=metadata, id=hit.id)
