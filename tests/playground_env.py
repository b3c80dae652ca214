"""A served playground over 50 real Lee articles, for the API and browser tests.

The dense side is the hashing encoder (no model files) and the reranker is the
deterministic `OverlapScorer` fake: the page is the point here, not the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serve_fakes import OverlapScorer
from shortlist.generate.chat import ChatConfig
from shortlist.rerank.api.http import RetryPolicy
from shortlist.serve.app import ServeConfig, create_app
from shortlist.serve.playground import PlaygroundConfig
from shortlist.store.index import Index
from shortlist.types import Document

LEE = Path(__file__).parent / "data" / "lee50.jsonl"
QUERY = "floods threaten millions of people"


def lee_documents() -> list[Document]:
    """Lee articles with a title and metadata, so the page has both to show."""
    docs = []
    for n, line in enumerate(LEE.read_text("utf-8").splitlines()):
        record = json.loads(line)
        section = "politics" if n % 3 == 0 else "world" if n % 3 == 1 else "business"
        docs.append(
            Document(
                record["id"],
                record["text"],
                title=f"ABC news item {n}",
                metadata={"section": section, "item": n},
            )
        )
    return docs


def make_lee_index(path: Path) -> Index:
    return Index.create(path, lee_documents(), encoder="hashing:64")


def make_playground_app(
    index: Index,
    *,
    judgements: Path | None = None,
    llm_url: str | None = None,
    eval_json: Path | None = None,
    api_key: str | None = None,
    rerankers: dict[str, Any] | None = None,
) -> Any:
    llm = None
    if llm_url is not None:
        llm = ChatConfig(llm_url, "fake-model", timeout_s=10, retry=RetryPolicy(max_retries=0))
    playground = PlaygroundConfig(judgements_dir=judgements, llm=llm, eval_json=eval_json)
    config = ServeConfig(api_key=api_key)
    served = {"overlap": OverlapScorer(), **(rerankers or {})}
    return create_app(config, served, index, None, playground)
