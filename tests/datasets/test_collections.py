"""Built-in collections: layout, counts, judgements that point at real documents, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optional import needs_extra
from shortlist.errors import InvalidInputError
from shortlist.evaluate.beir import load_beir, write_beir
from shortlist.evaluate.runs import read_beir_qrels
from shortlist_datasets import build_dataset, lee, stdlib_docs


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _check_layout(folder: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    assert {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "README.md", "dataset.json"} <= set(
        _files(folder)
    )
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text().splitlines()]
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text().splitlines()]
    doc_ids = {d["_id"] for d in corpus}
    assert len(doc_ids) == len(corpus)
    qrels = read_beir_qrels(folder / "qrels" / "test.tsv")
    assert set(qrels) <= {q["_id"] for q in queries}
    assert all(doc in doc_ids for judged in qrels.values() for doc in judged)
    return corpus, queries


@pytest.fixture(scope="module")
def stdlib_docstrings() -> list[stdlib_docs.Docstring]:
    # Parsing the stdlib is the slow part of the build (seconds): do it once per module.
    root = stdlib_docs.stdlib_dir()
    return stdlib_docs.read_source_docstrings(root) + stdlib_docs.read_builtin_docstrings()


@pytest.fixture(scope="module")
def stdlib_folder(
    tmp_path_factory: pytest.TempPathFactory, stdlib_docstrings: list[stdlib_docs.Docstring]
) -> Path:
    collection = stdlib_docs.make_collection(stdlib_docstrings)
    out = tmp_path_factory.mktemp("stdlib") / "stdlib-docs"
    write_beir(
        out,
        collection.corpus,
        collection.queries,
        collection.qrels,
        manifest=collection.manifest,
        card=collection.card,
    )
    return out


def test_lee_grades_from_similarity() -> None:
    assert [lee.grade(s) for s in (1.0, 0.7, 0.69, 0.5, 0.49, 0.2)] == [2, 2, 1, 1, 0, 0]


@needs_extra("datasets")
def test_lee_build(tmp_path: Path) -> None:
    stats = build_dataset("lee", tmp_path / "lee")
    corpus, queries = _check_layout(tmp_path / "lee")
    assert len(queries) == 50 and len(corpus) == 350
    assert stats.n_judgements == 50 * 49
    assert stats.grades == {0: 2164, 1: 194, 2: 92}
    ds = load_beir(tmp_path / "lee")
    assert ds.ignore_identical_ids and ds.name == "lee"
    assert len(ds.queries) == 48 and len(ds.report.queries_without_relevant) == 2
    assert all(qid not in judged for qid, judged in ds.qrels.items())  # no self judgements
    card = (tmp_path / "lee" / "README.md").read_text()
    assert "s >= 0.7 -> 2" in card and "Lee, M. D." in card
    build_dataset("lee", tmp_path / "again")
    assert _files(tmp_path / "lee") == _files(tmp_path / "again")


@needs_extra("datasets")
def test_lee_pairs_match_the_source_matrix() -> None:
    sim = lee.read_similarities(lee.gensim_test_data() / "similarities0-1.txt")
    assert sim[0][13] == sim[13][0] == 1.0  # a pair rated identical by everyone
    assert all(sim[i][i] == 1.0 for i in range(50))


def test_stdlib_build(stdlib_folder: Path) -> None:
    corpus, queries = _check_layout(stdlib_folder)
    assert len(corpus) >= 10_000
    assert len(queries) >= 300
    ds = load_beir(stdlib_folder)
    assert len(ds.queries) == len(queries) and ds.report.warnings == ()
    texts = {d.id: d.text for d in ds.corpus}
    for qid, judged in ds.qrels.items():
        (target,) = judged  # known item: exactly one relevant passage
        assert judged[target] == 1
        # the query is not a verbatim piece of its passage
        assert ds.queries[qid] not in texts[target].lower()
    assert len(set(queries_text := [q["text"] for q in queries])) == len(queries_text)


@pytest.mark.slow
def test_stdlib_build_is_deterministic(tmp_path: Path) -> None:
    build_dataset("stdlib-docs", tmp_path / "one")
    build_dataset("stdlib-docs", tmp_path / "two")
    assert _files(tmp_path / "one") == _files(tmp_path / "two")


def test_stdlib_collection_does_not_depend_on_input_order(
    stdlib_docstrings: list[stdlib_docs.Docstring],
) -> None:
    one = stdlib_docs.make_collection(stdlib_docstrings)
    two = stdlib_docs.make_collection(list(reversed(stdlib_docstrings)))
    assert one == two


@pytest.mark.parametrize(
    ("summary", "query"),
    [
        ("Return the number of items in a container.", "number of items in container"),
        ("Return True if the path is a directory.", "check if path is directory"),
        ("Split a pathname into drive and path.", "split pathname into drive and path"),
        ("Return os.path.join(a, b).", None),
        ("Call func_name with args.", None),
        ("Do it.", None),
        ("First sentence. Second sentence.", None),
        ("No final period", None),
    ],
)
def test_make_query(summary: str, query: str | None) -> None:
    assert stdlib_docs.make_query(summary) == query


def test_chunk_packs_sentences() -> None:
    text = "One two three. Four five.\n\nSix seven eight nine."
    assert stdlib_docs.chunk(text, max_words=5) == [
        "One two three. Four five.",
        "Six seven eight nine.",
    ]
    assert stdlib_docs.chunk("a b c d e f g.", max_words=3) == ["a b c d e f g."]


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="available: debian-faq, lee, stdlib-docs"):
        build_dataset("msmarco", tmp_path / "x")
