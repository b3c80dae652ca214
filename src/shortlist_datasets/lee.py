"""The Lee collection: doc-to-doc retrieval judged by people, from gensim's test data.

Source: Lee, Pincombe & Welsh, "An empirical evaluation of models of text document
similarity", CogSci 2005. 50 short news articles from the Australian Broadcasting
Corporation's news mail service, every pair rated for similarity by several people on a
1-5 scale. gensim ships them as ``gensim/test/test_data/lee.cor`` (one article per line,
latin-1), the mean ratings as ``similarities0-1.txt`` (an upper-triangular 50 x 50 matrix;
values run from 0.2 to 1.0, i.e. mean rating / 5) and 300 further articles from the same
service as ``lee_background.cor``.

Task: each of the 50 articles is a query (its full text: people judged whole articles
against whole articles). The corpus is the same 50 articles plus the 300 background
articles as distractors. Query ``lee-07`` is also document ``lee-07``; that self-match
is not judged and is removed before scoring (``dataset.json`` sets
``ignore_identical_ids``, as BEIR does for ArguAna and Quora).

Relevance rule, from the mean similarity s of the pair:
``s >= 0.7 -> 2`` (mean rating >= 3.5 of 5), ``0.5 <= s < 0.7 -> 1`` (>= 2.5 of 5),
otherwise ``0``. All 49 x 50 pairs were judged, so grade-0 judgements are written too; the
background articles are unjudged (assumed not relevant). With this rule 48 of the 50
queries have a relevant article; the other two stay in ``queries.jsonl`` and are skipped
by `shortlist.evaluate.beir.load_beir` (every metric would be 0 for them).
"""

from __future__ import annotations

import importlib.util
import statistics
from pathlib import Path

from shortlist.errors import MissingDependencyError, ShortlistError
from shortlist.types import Document, Qrels
from shortlist_datasets.base import Collection

SUMMARY = "50 news articles as queries over 350, graded by human similarity ratings (gensim)"

EXTRA = "datasets"
"""The shortlist extra that installs gensim."""

HIGHLY_RELEVANT = 0.7
RELEVANT = 0.5
N_ARTICLES = 50


def gensim_test_data() -> Path:
    """The folder of gensim's bundled test data, found without importing gensim."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("gensim", EXTRA, "the Lee corpus (it ships inside gensim)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data"
    if not (folder / "lee.cor").is_file():
        raise ShortlistError(f"gensim's test data has no lee.cor under {folder}; reinstall gensim")
    return folder


def grade(similarity: float) -> int:
    """The relevance grade of a pair with mean human similarity `similarity` in [0, 1]."""
    if similarity >= HIGHLY_RELEVANT:
        return 2
    if similarity >= RELEVANT:
        return 1
    return 0


def read_similarities(path: Path) -> list[list[float]]:
    """The symmetric 50 x 50 similarity matrix (the file stores the upper triangle)."""
    rows = [
        [float(v) for v in line.split()]
        for line in path.read_text(encoding="ascii").splitlines()
        if line.strip()
    ]
    if len(rows) != N_ARTICLES or any(len(r) != N_ARTICLES for r in rows):
        raise ValueError(f"{path}: expected a {N_ARTICLES} x {N_ARTICLES} matrix")
    return [[rows[min(i, j)][max(i, j)] for j in range(N_ARTICLES)] for i in range(N_ARTICLES)]


def _articles(path: Path) -> list[str]:
    return [" ".join(line.split()) for line in path.read_text(encoding="latin-1").splitlines()]


def make_collection() -> Collection:
    """Build the Lee collection (see the module docstring for the rules)."""
    folder = gensim_test_data()
    articles = _articles(folder / "lee.cor")
    background = [a for a in _articles(folder / "lee_background.cor") if a]
    similarity = read_similarities(folder / "similarities0-1.txt")
    if len(articles) != N_ARTICLES:
        raise ValueError(f"{folder / 'lee.cor'}: expected {N_ARTICLES} articles")
    ids = [f"lee-{i:02d}" for i in range(N_ARTICLES)]
    corpus = [Document(id=doc_id, text=text) for doc_id, text in zip(ids, articles, strict=True)]
    corpus += [Document(id=f"bg-{i:03d}", text=text) for i, text in enumerate(background)]
    queries = dict(zip(ids, articles, strict=True))
    qrels: Qrels = {
        ids[i]: {ids[j]: grade(similarity[i][j]) for j in range(N_ARTICLES) if j != i}
        for i in range(N_ARTICLES)
    }
    return Collection(
        corpus=corpus,
        queries=queries,
        qrels=qrels,
        card=_card(qrels, similarity, len(corpus)),
        manifest={"ignore_identical_ids": True, "source": "gensim test_data (Lee et al. 2005)"},
    )


def _card(qrels: Qrels, similarity: list[list[float]], n_docs: int) -> str:
    grades = [g for judged in qrels.values() for g in judged.values()]
    relevant_per_query = [sum(1 for g in j.values() if g >= 1) for j in qrels.values()]
    pairs = [similarity[i][j] for i in range(N_ARTICLES) for j in range(i + 1, N_ARTICLES)]
    without = sorted(q for q, j in qrels.items() if not any(g >= 1 for g in j.values()))
    return f"""# lee: doc-to-doc retrieval judged by people

Built by `shortlist datasets build lee` from files that ship inside the gensim wheel
(`gensim/test/test_data/`): `lee.cor`, `lee_background.cor`, `similarities0-1.txt`.

## Provenance
Lee, M. D., Pincombe, B., & Welsh, M. (2005). *An empirical evaluation of models of text
document similarity.* Proceedings of the 27th Annual Conference of the Cognitive Science
Society. 50 short news articles (Australian Broadcasting Corporation news mail service);
every pair was rated for similarity by several people on a 1-5 scale. gensim stores the
mean ratings divided by 5 (values {min(pairs):.2f}..{max(pairs):.2f}, median
{statistics.median(pairs):.2f}) as an upper-triangular 50 x 50 matrix.

## Task
- Queries: the 50 articles, full text (people judged whole articles against whole articles).
- Corpus: {n_docs} documents = the 50 articles (`lee-00`..`lee-49`) + 300 background
  articles from the same news service (`bg-000`..`bg-299`) as distractors.
- Query `lee-NN` is also document `lee-NN`. That self-match is not judged and must be
  removed from a run before scoring (`dataset.json`: `"ignore_identical_ids": true`).

## Relevance rule
For the mean similarity s of the pair: s >= {HIGHLY_RELEVANT} -> 2 (mean rating >= 3.5 of 5),
{RELEVANT} <= s < {HIGHLY_RELEVANT} -> 1 (>= 2.5 of 5), else 0. Every pair of the 50 articles was
judged, so grade-0 judgements are included; background articles are unjudged (counted as
not relevant).

## Numbers
- judgements: {len(grades)} (grade 2: {grades.count(2)}, grade 1: {grades.count(1)},
  grade 0: {grades.count(0)})
- relevant (grade >= 1) per query: mean {statistics.mean(relevant_per_query):.2f},
  max {max(relevant_per_query)}
- queries with no relevant article: {len(without)} ({", ".join(without) or "none"}); they
  stay in queries.jsonl and are skipped at load time (every metric would be 0).

## Caveats
- Small: 48 evaluable queries, so confidence intervals are wide.
- Background articles were never judged; some may be similar to a query.
- Queries are long (about 80 words); a reranker with a 512-token window still sees
  query and document together.
"""
