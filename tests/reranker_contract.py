"""The contract every reranker must keep (see `shortlist.rerank.base`).

Use it from any test module:

    from reranker_contract import check_reranker_contract
    check_reranker_contract(my_reranker)
"""

from __future__ import annotations

import copy
import math

from shortlist.rerank.base import Reranker
from shortlist.types import Document, Hit, Passage, Ranking

QUERY = "how do solar panels store energy"
TEXTS = [
    "Solar panels turn sunlight into electricity; batteries store the energy.",
    "The history of the Roman empire spans many centuries.",
    "Energy storage for solar power uses lithium batteries.",
    "A recipe for banana bread with walnuts.",
    "Panels on the roof produce power during the day.",
]


def _check_hits(ranking: Ranking, n_docs: int) -> None:
    assert isinstance(ranking, Ranking)
    seen = set()
    for rank, hit in enumerate(ranking.hits, start=1):
        assert hit.rank == rank
        assert hit.index is not None and 0 <= hit.index < n_docs
        assert hit.index not in seen, "a candidate appears twice"
        seen.add(hit.index)
        assert hit.raw_score is not None and not math.isnan(hit.raw_score)
        assert hit.calibrated_score is not None and 0.0 <= hit.calibrated_score <= 1.0
        assert hit.score == hit.calibrated_score
    scores = [h.score for h in ranking.hits]
    assert scores == sorted(scores, reverse=True), "hits must be sorted by score"


def check_reranker_contract(reranker: Reranker, *, keeps: int | None = None) -> None:
    """Assert the `Reranker` contract on small inputs; raises AssertionError on a breach.

    `keeps` is the most hits the reranker returns whatever `top_n` (a cascade's M);
    None means every candidate.
    """
    expected = len(TEXTS) if keeps is None else min(keeps, len(TEXTS))
    assert isinstance(reranker, Reranker)
    assert isinstance(reranker.name, str) and reranker.name

    # Empty input, top_n edge cases.
    assert len(reranker.rerank(QUERY, [])) == 0
    assert len(reranker.rerank(QUERY, [], top_n=3)) == 0
    full = reranker.rerank(QUERY, TEXTS)
    _check_hits(full, len(TEXTS))
    assert len(full) == expected
    assert len(reranker.rerank(QUERY, TEXTS, top_n=100)) == expected
    assert len(reranker.rerank(QUERY, TEXTS, top_n=0)) == 0
    top2 = reranker.rerank(QUERY, TEXTS, top_n=2)
    assert [h.index for h in top2] == [h.index for h in full][:2]

    # Never mutates the input.
    docs = list(TEXTS)
    before = copy.deepcopy(docs)
    reranker.rerank(QUERY, docs)
    assert docs == before

    # Plain strings: id is the position, text is kept.
    for hit in full:
        assert hit.index is not None
        assert hit.id == str(hit.index)
        assert hit.text == TEXTS[hit.index]

    # Ties are stable by input position: identical texts keep their input order.
    same = ["Solar energy storage.", "Solar energy storage.", "Solar energy storage."]
    tied = reranker.rerank(QUERY, same)
    assert [h.index for h in tied] == [0, 1, 2]

    # Every candidate type works; records keep their ids.
    documents = [Document(id=f"d{i}", text=t) for i, t in enumerate(TEXTS)]
    passages = [Passage(id=f"p{i}", doc_id=f"d{i}", text=t) for i, t in enumerate(TEXTS)]
    for records, prefix in ((documents, "d"), (passages, "p")):
        ranking = reranker.rerank(QUERY, records)
        _check_hits(ranking, len(records))
        for hit in ranking.hits:
            assert hit.id == f"{prefix}{hit.index}"
            assert hit.doc_id == f"d{hit.index}"

    # First-stage hits keep their first-stage rank and score.
    hits = [
        Hit(id=f"p{i}", doc_id=f"d{i}", text=t, score=10.0 - i, rank=i + 1)
        for i, t in enumerate(TEXTS)
    ]
    frozen = list(hits)  # hits are frozen; the list itself must not change
    ranking = reranker.rerank(QUERY, hits)
    assert hits == frozen
    _check_hits(ranking, len(hits))
    for hit in ranking.hits:
        assert hit.index is not None
        assert hit.id == f"p{hit.index}"
        assert hit.first_stage_rank == hit.index + 1
        assert hit.first_stage_score == 10.0 - hit.index


# ---- served score equals library score --------------------------------------------

LONG_TEXT = " ".join(["solar panels batteries store energy at night"] * 30)
SERVED_TEXTS = [*TEXTS, LONG_TEXT, "Solar energy storage.", "Solar energy storage."]


def check_served_matches_library(
    reranker: Reranker, *, batching: bool, tolerance: float = 1e-6
) -> None:
    """Through the real HTTP app (fastapi's TestClient, lifespan on), the Cohere and TEI
    routes return the library's ranking and scores within `tolerance`."""
    from fastapi.testclient import TestClient

    from shortlist.serve.app import ServeConfig, create_app

    library = reranker.rerank(QUERY, SERVED_TEXTS)
    want = {h.index: (h.score, h.raw_score) for h in library}
    app = create_app(ServeConfig(batching=batching), {"r": reranker})
    with TestClient(app) as client:
        for route in ("/v1/rerank", "/v2/rerank"):
            body = {"model": "r", "query": QUERY, "documents": SERVED_TEXTS}
            response = client.post(route, json=body)
            assert response.status_code == 200, response.text
            results = response.json()["results"]
            assert [r["index"] for r in results] == [h.index for h in library]
            for r in results:
                assert abs(r["relevance_score"] - want[r["index"]][0]) <= tolerance
        tei = client.post("/rerank", json={"query": QUERY, "texts": SERVED_TEXTS,
                                           "raw_scores": True})
        assert tei.status_code == 200, tei.text
        for r in tei.json():
            raw = want[r["index"]][1]
            assert raw is not None and abs(r["score"] - raw) <= tolerance
