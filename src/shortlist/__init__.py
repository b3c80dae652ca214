"""shortlist: retrieve-and-rerank for RAG.

The public API is small and imported lazily, so `import shortlist` stays cheap:

    from shortlist import Index, Pipeline, first_stage, load_reranker
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from shortlist.errors import ShortlistError
from shortlist.types import Document, Hit, Passage, Qrels, Query, Ranking, Run

__version__ = "0.1.0"

_LAZY = {
    "Index": "shortlist.store.index",
    "load_reranker": "shortlist.rerank.registry",
    "Pipeline": "shortlist.pipeline",
    "PipelineConfig": "shortlist.pipeline_file",
    "first_stage": "shortlist.retrieve.stages",
    "pack_prompt": "shortlist.prompt",
}

__all__ = [
    "Document",
    "Hit",
    "Passage",
    "Query",
    "Qrels",
    "Ranking",
    "Run",
    "ShortlistError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shortlist' has no attribute {name!r}")
    return getattr(import_module(module), name)
