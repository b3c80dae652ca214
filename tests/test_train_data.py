"""Training pairs from JSONL and BEIR folders, and the errors bad input gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shortlist.errors import CorpusFormatError, InvalidInputError
from shortlist.evaluate.beir import write_beir
from shortlist.train.data import load_pairs, passage_id, sha256_file, with_corpus
from shortlist.types import Document


def _jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_jsonl_forms(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"query": "what is bm25", "positive": "BM25 is a ranking function."},
            {"id": "q2", "query": "rerank", "positive": "Rerank the list.", "positive_id": "d2"},
            {"id": "q3", "query": "two", "positives": ["one text", {"id": "d9", "text": "t"}]},
            {"id": "q2", "query": "rerank", "positive": "Also this.", "positive_id": "d3"},
        ],
    )
    pairs = load_pairs(path)
    assert list(pairs.queries) == ["line-1", "q2", "q3"]
    assert pairs.positives["line-1"] == (passage_id("BM25 is a ranking function."),)
    assert pairs.positives["q2"] == ("d2", "d3")  # same query id merged
    assert pairs.positives["q3"] == (passage_id("one text"), "d9")
    assert pairs.passages["d9"].text == "t"
    assert pairs.counts() == {"queries": 3, "pairs": 5, "passages": 5}
    assert pairs.sources[0].sha256 == sha256_file(path)
    assert pairs.qrels()["q2"] == {"d2": 1, "d3": 1}


def test_same_passage_text_is_one_passage(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "p.jsonl",
        [{"query": "a", "positive": "shared"}, {"query": "b", "positive": "shared"}],
    )
    assert len(load_pairs(path).passages) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "each line must be"),
        ('{"positive": "p"}', '"query" must be a non-empty string'),
        ('{"query": "q"}', 'exactly one of "positive" and "positives"'),
        ('{"query": "q", "positive": "p", "positives": ["p"]}', "exactly one of"),
        ('{"query": "q", "positives": []}', "non-empty list"),
        ('{"query": "q", "positives": [3]}', "items must be"),
        ('{"query": "q", "positive": ""}', '"positive" must be a non-empty string'),
        ('{"query": "q", "positive": "p", "id": true}', '"id" must be'),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"query": "ok", "positive": "fine"}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=message) as info:
        load_pairs(path)
    assert str(info.value).startswith(f"{path}:3: ")


def test_conflicting_ids_are_errors(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "c.jsonl",
        [
            {"query": "a", "positive": "x", "positive_id": "d1"},
            {"query": "b", "positive": "y", "positive_id": "d1"},
        ],
    )
    with pytest.raises(CorpusFormatError, match="passage id 'd1' was used before"):
        load_pairs(path)
    path = _jsonl(
        tmp_path / "q.jsonl",
        [{"id": 1, "query": "a", "positive": "x"}, {"id": 1, "query": "b", "positive": "y"}],
    )
    with pytest.raises(CorpusFormatError, match=r"q.jsonl:2: query id '1'"):
        load_pairs(path)


def test_missing_and_empty_sources(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no training data"):
        load_pairs(tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="has no pairs"):
        load_pairs(empty)


def _beir(root: Path) -> Path:
    corpus = [Document(id=f"d{i}", text=f"text {i}", title=f"T{i}") for i in range(5)]
    queries = {"q1": "first", "q2": "second", "q3": "third"}
    write_beir(root, corpus, queries, {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}}, split="train")
    (root / "qrels" / "dev.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq3\td4\t1\n", encoding="utf-8"
    )
    return root


def test_beir_train_split(tmp_path: Path) -> None:
    root = _beir(tmp_path / "beir")
    pairs = load_pairs(root, split="train")
    assert dict(pairs.positives) == {"q1": ("d1",), "q2": ("d3",)}  # grade 0 is not positive
    assert set(pairs.queries) == {"q1", "q2"}
    assert len(pairs.passages) == 5  # the whole corpus is the pool
    assert [s.role for s in pairs.sources] == ["corpus", "queries", "qrels/train"]
    dev = load_pairs(root, split="dev")
    assert dict(dev.positives) == {"q3": ("d4",)}


def test_beir_missing_split_lists_the_available_ones(tmp_path: Path) -> None:
    root = _beir(tmp_path / "beir")
    with pytest.raises(CorpusFormatError, match="available splits: dev, train"):
        load_pairs(root, split="test")


def test_with_corpus_adds_passages_without_replacing(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "p.jsonl", [{"query": "a", "positive": "x", "positive_id": "d1"}])
    extra = _jsonl(tmp_path / "c.jsonl", [])
    pairs = with_corpus(
        load_pairs(path), [Document(id="d1", text="other"), Document(id="d2", text="z")], extra
    )
    assert pairs.passages["d1"].text == "x"
    assert set(pairs.passages) == {"d1", "d2"}
    assert [s.role for s in pairs.sources] == ["pairs", "corpus"]
