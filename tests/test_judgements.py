"""The playground's judgement folder: BEIR files, stable ids, the exported corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shortlist.corpus.chunking import Chunker
from shortlist.errors import InvalidInputError
from shortlist.evaluate.beir import load_beir
from shortlist.serve.judgements import JudgementStore, query_id_for
from shortlist.store.index import Index
from shortlist.types import Document

LONG = " ".join(f"Sentence {i} talks about rivers and floods." for i in range(60))


def test_marks_are_beir_qrels_with_stable_query_ids(tmp_path: Path) -> None:
    store = JudgementStore(tmp_path / "j")
    qid, marks = store.mark(" floods in Europe ", "d1", 2)
    assert qid == query_id_for("floods in Europe") and marks == {"d1": 2}
    store.mark("floods in Europe", "d2", 0)
    assert store.mark("floods in Europe", "d1", None) == (qid, {"d2": 0})
    assert store.marks("floods in Europe") == (qid, {"d2": 0})
    assert store.marks("never judged")[1] == {}
    lines = (tmp_path / "j" / "qrels" / "test.tsv").read_text().splitlines()
    assert lines == ["query-id\tcorpus-id\tscore", f"{qid}\td2\t0"]
    # A query already in queries.jsonl keeps its id there.
    (tmp_path / "j" / "queries.jsonl").write_text(json.dumps({"_id": "q7", "text": "cats"}) + "\n")
    assert store.mark("cats", "d3", 1)[0] == "q7"
    assert not list((tmp_path / "j").rglob("*.tmp"))


@pytest.mark.parametrize(
    ("query", "doc", "relevance", "words"),
    [(" ", "d", 1, "query is empty"), ("q", "a\tb", 1, "bad document id"), ("q", "d", 4, "0-3")],
)
def test_bad_marks_are_refused(
    tmp_path: Path, query: str, doc: str, relevance: int, words: str
) -> None:
    with pytest.raises(InvalidInputError, match=words):
        JudgementStore(tmp_path).mark(query, doc, relevance)


def test_corpus_is_rebuilt_from_chunked_passages(tmp_path: Path) -> None:
    docs = [
        Document("long", LONG, title="Rivers", metadata={"lang": "en"}),
        Document("short", "Cats sleep.", metadata={"lang": "en"}),
    ]
    index = Index.create(
        tmp_path / "i", docs, dense=False, chunker=Chunker(size=40, overlap=8, unit="words")
    )
    assert index.num_passages > 3
    store = JudgementStore(tmp_path / "j")
    assert store.export_corpus(index) is True
    assert store.export_corpus(index) is False  # never overwritten
    store.mark("floods", "long", 1)
    dataset = load_beir(tmp_path / "j")
    corpus = {d.id: d for d in dataset.corpus}
    assert corpus["long"].text.split() == LONG.split()
    assert corpus["long"].title == "Rivers" and corpus["short"].text == "Cats sleep."
    assert dataset.qrels == {query_id_for("floods"): {"long": 1}}
