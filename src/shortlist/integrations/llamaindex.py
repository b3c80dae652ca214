"""LlamaIndex adapter: a node postprocessor that reranks with any shortlist reranker.

    from shortlist.integrations.llamaindex import ShortlistRerank

    rerank = ShortlistRerank(spec="cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2", top_n=5)
    # `vector_index` is a LlamaIndex index (e.g. VectorStoreIndex), not a shortlist Index
    query_engine = vector_index.as_query_engine(
        similarity_top_k=50, node_postprocessors=[rerank]
    )

Needs `pip install -e '.[llamaindex]'` from a checkout; importing this module without
llama-index-core raises `MissingDependencyError`. `import shortlist` never imports it.
"""

from __future__ import annotations

from typing import Any

from shortlist.errors import InvalidInputError, MissingDependencyError

try:
    from llama_index.core.callbacks import CBEventType, EventPayload
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
    from pydantic import ConfigDict, PrivateAttr
except ImportError as exc:  # pragma: no cover - exercised by simulating the missing extra
    raise MissingDependencyError(
        "llama-index-core", "llamaindex", "the LlamaIndex integration"
    ) from exc

from shortlist.integrations._common import LazyReranker, calibrated, check_settings, cut

__all__ = ["ShortlistRerank"]


class ShortlistRerank(BaseNodePostprocessor):
    """Reranks `NodeWithScore`s with a shortlist reranker and keeps the best `top_n`.

    Give either `reranker` (a built shortlist `Reranker`) or `spec` (a reranker spec
    string, parsed at construction, its model loaded on first use). `score_threshold`
    drops nodes whose calibrated score (in [0, 1]) is below it.

    The text scored is each node's content with its embed-visible metadata, as
    LlamaIndex's own rerankers do. Returns new `NodeWithScore`s, best first, whose
    `score` is the calibrated score; the nodes themselves are shared, not modified.
    Raises `InvalidInputError` for bad settings and when no query is given.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

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

    @classmethod
    def class_name(cls) -> str:
        return "ShortlistRerank"

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise InvalidInputError(
                "ShortlistRerank needs the query: call postprocess_nodes(nodes, "
                "query_str=...) or pass a query_bundle"
            )
        if not nodes:
            return []
        reranker = self._lazy.get()
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: nodes,
                EventPayload.MODEL_NAME: reranker.name,
                EventPayload.QUERY_STR: query_bundle.query_str,
                EventPayload.TOP_K: self.top_n,
            },
        ) as event:
            ranking = reranker.rerank(query_bundle.query_str, texts, top_n=self.top_n)
            out = []
            for hit in cut(ranking, self.score_threshold):
                assert hit.index is not None  # the Reranker contract fills it
                out.append(NodeWithScore(node=nodes[hit.index].node, score=calibrated(hit)))
            event.on_end(payload={EventPayload.NODES: out})
        return out
