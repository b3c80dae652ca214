"""Hard negatives mined with shortlist's own first stage.

The negative pool is indexed once with `shortlist.store.Index` (BM25, plus dense vectors
when dense negatives are asked for). For each (query, positive) pair a `Group` takes
`n_bm25` passages sampled from BM25's ranks 1..depth and `n_dense` from the dense
ranks 1..depth, never one of the query's positives and never the same passage twice;
when the first stage has too few, the group is topped up with random pool passages,
so every group has exactly `n_bm25 + n_dense` negatives.

Why not sentence-transformers' `mine_hard_negatives`: it ranks candidates with a
bi-encoder's embeddings only (optionally rescored by a cross-encoder), so it cannot mine
the BM25 half of a group, nor with shortlist's analyzer (stemming, stopwords) that the
first stage uses at query time. A reranker is trained on the candidates it will see, and
those come from our BM25 and hybrid first stage. It also excludes a query's positives by
text of the pair's own positive column, where a query here may have several judged
positives (BEIR qrels), all of which must stay out of its negatives; this module
excludes them by id.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shortlist.errors import InvalidInputError
from shortlist.rerank.base import candidate_text
from shortlist.train.data import PairSet
from shortlist.types import Document


@dataclass(frozen=True)
class Group:
    """One training group: a query, one positive and its negatives, as passage ids.

    Texts are looked up in a shared id -> text mapping (`passage_texts`) when a batch
    is built, so a million groups do not hold nine million copies of passages.
    """

    query_id: str
    query: str
    positive_id: str
    negative_ids: tuple[str, ...]

    @property
    def passage_ids(self) -> tuple[str, ...]:
        """Positive first, then the negatives: the column order the losses expect."""
        return (self.positive_id, *self.negative_ids)

    def texts(self, passages: Mapping[str, str]) -> list[str]:
        """The passages' texts in `passage_ids` order."""
        return [passages[i] for i in self.passage_ids]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Group:
        return cls(
            query_id=str(d["query_id"]),
            query=str(d["query"]),
            positive_id=str(d["positive_id"]),
            negative_ids=tuple(str(x) for x in d["negative_ids"]),
        )


def passage_texts(groups: Iterable[Group], pool: Mapping[str, Document]) -> dict[str, str]:
    """id -> the text a cross-encoder sees (title and text) for every passage of `groups`."""
    out: dict[str, str] = {}
    for g in groups:
        for pid in g.passage_ids:
            if pid not in out:
                out[pid] = candidate_text(pool[pid])
    return out


def pool_fingerprint(pool: Mapping[str, Document], encoder: str | None) -> str:
    """sha256 over the pool's ids and texts and the dense encoder spec."""
    h = hashlib.sha256(json.dumps({"encoder": encoder}).encode())
    for doc_id in sorted(pool):
        doc = pool[doc_id]
        h.update(json.dumps([doc.id, doc.title, doc.text]).encode())
    return h.hexdigest()[:24]


def open_pool_index(pool: Mapping[str, Document], work: Path, *, dense: bool, encoder: str) -> Any:
    """The `Index` over `pool` in `work/index-<fingerprint>`, built on first use."""
    from shortlist.store.generations import current_generation
    from shortlist.store.index import Index

    if not pool:
        raise InvalidInputError("the negative pool is empty; pass --corpus with passages")
    path = work / f"index-{pool_fingerprint(pool, encoder if dense else None)}"
    if current_generation(path) is not None:
        return Index.open(path)
    work.mkdir(parents=True, exist_ok=True)
    return Index.create(path, list(pool.values()), dense=dense, encoder=encoder, overwrite=True)


def first_stage(
    index: Any, queries: Mapping[str, str], *, mode: str, depth: int
) -> dict[str, list[str]]:
    """Document ids of the top `depth` first-stage hits of every query, best first."""
    out: dict[str, list[str]] = {}
    for qid, text in queries.items():
        ranking = index.search(text, k=depth, mode=mode, by="document")
        out[qid] = [h.doc_id for h in ranking.hits]
    return out


def mine_groups(
    pairs: PairSet,
    pool: Mapping[str, Document],
    candidates: Mapping[str, Sequence[Sequence[str]]],
    counts: Sequence[int],
    *,
    seed: int,
) -> list[Group]:
    """One `Group` per (query, positive) pair, in query then positive order.

    `candidates[qid]` holds one ranked id list per first stage and `counts` how many
    negatives to sample from each (in the same order). Sampling is uniform over a
    stage's ranks, reproducible from `seed`.
    """
    rng = random.Random(seed)
    pool_ids = sorted(pool)
    total = sum(counts)
    groups: list[Group] = []
    for qid, query in pairs.queries.items():
        positives = set(pairs.positives[qid])
        if len(pool_ids) - len(positives) < total:
            raise InvalidInputError(
                f"the negative pool has {len(pool_ids)} passages, too few for {total} "
                f"negatives per group; pass --corpus with more passages or fewer negatives"
            )
        lists = candidates.get(qid, [[] for _ in counts])
        for pid in pairs.positives[qid]:
            chosen: list[str] = []
            taken = set(positives)
            for ranked, n in zip(lists, counts, strict=True):
                options = [d for d in ranked if d not in taken]
                picked = rng.sample(options, min(n, len(options)))
                chosen.extend(picked)
                taken.update(picked)
            while len(chosen) < total:
                extra = pool_ids[rng.randrange(len(pool_ids))]
                if extra not in taken:
                    chosen.append(extra)
                    taken.add(extra)
            groups.append(
                Group(query_id=qid, query=query, positive_id=pid, negative_ids=tuple(chosen))
            )
    return groups


def cached_groups(path: Path, build: Callable[[], list[Group]]) -> list[Group]:
    """Groups read from `path` (JSONL), or built and written there atomically."""
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            return [Group.from_dict(json.loads(line)) for line in handle if line.strip()]
    groups = build()
    write_jsonl(path, (g.to_dict() for g in groups))
    return groups


def write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Write records to `path` via a temporary sibling and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)
