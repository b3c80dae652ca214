"""Evaluation collections made from real text already on the machine; not part of the runtime.

Each recipe turns text written outside this project into a BEIR folder (corpus, queries,
graded qrels, a ``README.md`` dataset card and a ``dataset.json`` manifest), offline and
deterministically. `DATASETS` is the registry; `build_dataset` writes one.

This package sits beside `shortlist`, not inside it: the runtime never imports it (only the
``shortlist datasets`` and ``shortlist demo`` commands do, when run), so serving and the
library carry none of its parsers. Its third-party needs (gensim, for the Lee corpus) come
with ``pip install -e '.[datasets]'``; a recipe whose source is missing raises
`shortlist.errors.MissingDependencyError` naming that extra.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shortlist.errors import InvalidInputError
from shortlist.evaluate.beir import write_beir
from shortlist.types import Qrels
from shortlist_datasets import debian_faq, lee, stdlib_docs
from shortlist_datasets.base import Collection


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
    split_queries: dict[str, int] = field(default_factory=dict)


DATASETS: dict[str, Recipe] = {
    "lee": Recipe("lee", lee.SUMMARY, lee.make_collection),
    "stdlib-docs": Recipe("stdlib-docs", stdlib_docs.SUMMARY, stdlib_docs.make_collection),
    "debian-faq": Recipe("debian-faq", debian_faq.SUMMARY, debian_faq.make_collection),
}


def grade_counts(qrels: Qrels) -> dict[int, int]:
    """How many judgements carry each relevance grade, sorted by grade."""
    counts = Counter(grade for judged in qrels.values() for grade in judged.values())
    return dict(sorted(counts.items()))


def build_dataset(name: str, out: str | Path, *, overwrite: bool = False) -> BuildStats:
    """Build the collection `name` into the folder `out` (BEIR layout; the recipe's splits).

    `n_judgements` and `grades` count every split together; `split_queries` gives the
    number of judged queries per split.
    """
    recipe = DATASETS.get(name)
    if recipe is None:
        raise InvalidInputError(
            f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}"
        )
    collection = recipe.make()
    splits = collection.all_splits()
    path = write_beir(
        out,
        collection.corpus,
        collection.queries,
        None,
        splits=splits,
        query_metadata=collection.query_metadata,
        manifest={"name": name, **collection.manifest},
        card=collection.card,
        overwrite=overwrite,
    )
    merged = [judged for qrels in splits.values() for judged in qrels.values()]
    grades = Counter(grade for judged in merged for grade in judged.values())
    return BuildStats(
        name=name,
        path=path,
        n_documents=len(collection.corpus),
        n_queries=len(collection.queries),
        n_judgements=sum(len(j) for j in merged),
        grades=dict(sorted(grades.items())),
        split_queries={split: len(qrels) for split, qrels in splits.items()},
    )
