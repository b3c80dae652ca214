"""Built-in test collections made from real text that ships with shortlist's dependencies.

Each recipe turns text written outside this project into a BEIR folder (corpus, queries,
graded qrels, a ``README.md`` dataset card and a ``dataset.json`` manifest), offline and
deterministically. `DATASETS` is the registry; `build_dataset` writes one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shortlist.errors import InvalidInputError
from shortlist.evaluate.beir import write_beir
from shortlist.evaluate.datasets import lee, stdlib_docs
from shortlist.evaluate.datasets.base import Collection
from shortlist.types import Qrels


@dataclass(frozen=True)
class Recipe:
    """A registered collection: its name, a one-line summary and the function that makes it."""

    name: str
    summary: str
    make: Callable[[], Collection]


@dataclass(frozen=True)
class BuildStats:
    """What `build_dataset` wrote."""

    name: str
    path: Path
    n_documents: int
    n_queries: int
    n_judgements: int
    grades: dict[int, int]


DATASETS: dict[str, Recipe] = {
    "lee": Recipe("lee", lee.SUMMARY, lee.make_collection),
    "stdlib-docs": Recipe("stdlib-docs", stdlib_docs.SUMMARY, stdlib_docs.make_collection),
}


def grade_counts(qrels: Qrels) -> dict[int, int]:
    """How many judgements carry each relevance grade, sorted by grade."""
    counts = Counter(grade for judged in qrels.values() for grade in judged.values())
    return dict(sorted(counts.items()))


def build_dataset(name: str, out: str | Path, *, overwrite: bool = False) -> BuildStats:
    """Build the collection `name` into the folder `out` (BEIR layout, test split)."""
    recipe = DATASETS.get(name)
    if recipe is None:
        raise InvalidInputError(
            f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}"
        )
    collection = recipe.make()
    path = write_beir(
        out,
        collection.corpus,
        collection.queries,
        collection.qrels,
        manifest={"name": name, **collection.manifest},
        card=collection.card,
        overwrite=overwrite,
    )
    return BuildStats(
        name=name,
        path=path,
        n_documents=len(collection.corpus),
        n_queries=len(collection.queries),
        n_judgements=sum(len(j) for j in collection.qrels.values()),
        grades=grade_counts(collection.qrels),
    )
