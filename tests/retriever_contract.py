"""The contract every first-stage retriever keeps, over any `PassageStore`.

Build a store holding exactly `CONTRACT_DOCUMENTS` (each short enough to be one
passage), then, for each retriever over it:

    from retriever_contract import CONTRACT_DOCUMENTS, check_retriever_contract
    check_retriever_contract(BM25Retriever(store))

A second store (an external engine) runs the same function on its own retrievers.
"""

from __future__ import annotations

import pytest

from shortlist.errors import InvalidInputError
from shortlist.retrieve.stages import Retriever
from shortlist.retrieve.store import PassageStore
from shortlist.types import Document, Ranking

CONTRACT_DOCUMENTS = [
    Document("cats", "Cats are small domesticated mammals that purr.", metadata={"lang": "en"}),
    Document("dogs", "Dogs are loyal domesticated animals, descended from wolves.",
             metadata={"lang": "en"}),
    Document("python", "Python is a programming language with dynamic typing.",
             metadata={"lang": "en"}),
    Document("rust", "Rust is a systems programming language for memory safety.",
             metadata={"lang": "en"}),
    Document("katzen", "Katzen sind kleine Haustiere und schnurren gern.",
             metadata={"lang": "de"}),
    Document("twin-a", "Lighthouse keepers trim the lamp wick at dusk.", metadata={"lang": "en"}),
    Document("twin-b", "Lighthouse keepers trim the lamp wick at dusk.", metadata={"lang": "en"}),
]
QUERIES = ["programming language memory", "domesticated animals", "lighthouse lamp wick"]


def _check_ranking(ranking: Ranking, query: str, k: int) -> None:
    assert isinstance(ranking, Ranking)
    assert ranking.query == query
    assert 0 < len(ranking) <= k
    assert [h.rank for h in ranking] == list(range(1, len(ranking) + 1))
    assert len({h.id for h in ranking}) == len(ranking), "a passage appears twice"
    scores = [h.score for h in ranking]
    assert scores == sorted(scores, reverse=True), "hits must be sorted by score"
    for h in ranking:
        assert h.first_stage_rank == h.rank and h.first_stage_score == h.score
        assert h.text and h.doc_id
    assert ranking.timings_ms["retrieve"] >= 0
    assert all(key == "retrieve" or key.startswith("retrieve.") for key in ranking.timings_ms)


def check_retriever_contract(retriever: Retriever) -> None:
    """Assert the `Retriever` contract; the retriever's store holds `CONTRACT_DOCUMENTS`."""
    assert isinstance(retriever, Retriever)
    assert isinstance(retriever.store, PassageStore)
    assert retriever.name in ("bm25", "dense", "hybrid") or retriever.name
    by_id = {d.id: d for d in CONTRACT_DOCUMENTS}

    for query in QUERIES:
        ranking = retriever.run(query, k=3)
        _check_ranking(ranking, query, 3)
        for h in ranking:
            assert h.text in by_id[h.doc_id].text
        # Deterministic, and the top of a deeper search is the shallow search.
        assert retriever.run(query, k=3).ids == ranking.ids
        assert retriever.run(query, k=5).ids[: len(ranking)] == ranking.ids

    assert retriever.run("programming language", k=2)[0].doc_id in ("python", "rust")

    # k larger than the store: never more hits than passages.
    everything = retriever.run("domesticated animals programming", k=100)
    assert len(everything) <= len(CONTRACT_DOCUMENTS)

    # The filter applies inside the search: k matching hits come back when they exist.
    only_de = retriever.run("Katzen schnurren programming", k=3, filter={"lang": "de"})
    assert [h.doc_id for h in only_de] == ["katzen"]
    only_en = retriever.run("Katzen domesticated programming language", k=3,
                            filter={"lang": ["en"]})
    assert len(only_en) == 3
    assert all(by_id[h.doc_id].metadata["lang"] == "en" for h in only_en)

    # Identical passages tie; the tie breaks by store order, the same every time.
    twins = [h.doc_id for h in retriever.run("lighthouse lamp wick", k=2)]
    assert twins == ["twin-a", "twin-b"]

    # Many queries at once give what one query at a time gives.
    many = retriever.run_many(QUERIES, k=3)
    assert [r.ids for r in many] == [retriever.run(q, k=3).ids for q in QUERIES]

    for bad_query, bad_k in (("", 3), ("   ", 3), ("cats", 0)):
        with pytest.raises(InvalidInputError):
            retriever.run(bad_query, k=bad_k)
