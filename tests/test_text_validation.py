"""Text validation in one place: lone surrogates and blank queries never get past the edge.

Issue #15: a lone surrogate (`\\udfff`) in a document crashed `index` (even with
--skip-bad), `add` and `rerank` with tracebacks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clirun import run_cli
from shortlist.corpus.readers import BadRecord, read_corpus
from shortlist.errors import CorpusFormatError, InvalidInputError
from shortlist.types import Document, Query
from shortlist.validate import (
    NOT_BLANK_PATTERN,
    InvalidTextError,
    check_query,
    check_strings,
    check_text,
    text_problem,
)

LONE = "bad \udfff text"


def test_text_problem_names_code_point_and_position_without_the_character() -> None:
    problem = text_problem("abc\udfffdef")
    assert problem is not None
    assert "lone surrogate \\udfff at position 3" in problem
    problem.encode("utf-8")  # the message itself is printable and sendable
    assert text_problem("ordinary text, emoji \U0001f600") is None
    assert text_problem("   ") is None
    assert text_problem("   ", blank_ok=False) == "text is empty or only whitespace; give some text"
    assert text_problem(7) == "text must be a string, got int"


def test_check_functions_raise_invalid_text_error_naming_the_field() -> None:
    assert check_text("fine", "documents[0]") == "fine"
    with pytest.raises(InvalidTextError, match=r"^documents\[3\]: text contains a lone") as info:
        check_text(LONE, "documents[3]")
    assert isinstance(info.value, InvalidInputError)
    assert info.value.field == "documents[3]"
    with pytest.raises(InvalidTextError, match="^query: text is empty"):
        check_query(" \t\n")
    with pytest.raises(InvalidTextError, match=r"meta\['k'\]\[1\]: a value contains"):
        check_strings({"k": ["ok", "\ud800"]}, "meta")
    with pytest.raises(InvalidTextError, match="meta: a key contains"):
        check_strings({"\ud800": 1}, "meta")
    check_strings({"k": [1, 2.0, None, True, "ok"]}, "meta")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": "d\udfff", "text": "t"}, "document: id contains"),
        ({"id": "d", "text": LONE}, "document 'd': text contains"),
        ({"id": "d", "text": "t", "title": LONE}, "document 'd': title contains"),
        ({"id": "d", "text": "t", "metadata": {"a": LONE}}, r"document 'd' metadata\['a'\]"),
    ],
)
def test_document_rejects_unencodable_text(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidTextError, match=message):
        Document(**fields)  # type: ignore[arg-type]


def test_query_record_rejects_unencodable_text() -> None:
    with pytest.raises(InvalidTextError, match="query 'q1': text contains"):
        Query("q1", LONE)


def _jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    # json.dumps escapes the surrogate as "\udfff", exactly as a client would send it.
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_reader_rejects_or_skips_a_document_with_a_lone_surrogate(tmp_path: Path) -> None:
    src = _jsonl(
        tmp_path / "c.jsonl",
        [{"id": "a", "text": "good"}, {"id": "b", "text": LONE}, {"id": "c", "text": "fine"}],
    )
    with pytest.raises(CorpusFormatError, match=r"c.jsonl:2: document 'b': text contains"):
        list(read_corpus(src))
    bad: list[BadRecord] = []
    docs = list(read_corpus(src, skip_bad=True, on_bad=bad.append))
    assert [d.id for d in docs] == ["a", "c"]
    assert bad[0].line == 2 and "lone surrogate" in bad[0].reason


def test_reader_rejects_a_csv_row_with_a_lone_surrogate(tmp_path: Path) -> None:
    # A CSV decoded with errors="surrogateescape" is the other way such text gets in.
    src = tmp_path / "c.csv"
    src.write_text("id,text\na,good\nb,bad \udcff\n", encoding="utf-8", errors="surrogateescape")
    bad: list[BadRecord] = []
    docs = list(read_corpus(src, skip_bad=True, on_bad=bad.append))
    assert [d.id for d in docs] == ["a"]
    assert len(bad) == 1 and bad[0].line == 3


def test_cli_index_and_add_give_one_clear_line_and_skip_bad_skips(tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "good cat"}, {"id": "b", "text": LONE}])
    idx = str(tmp_path / "idx")
    r = run_cli("index", str(src), "--index", idx, "--no-dense")
    assert r.exit_code == 2, r.stderr
    assert "c.jsonl:2: document 'b': text contains a lone surrogate \\udfff" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("index", str(src), "--index", idx, "--no-dense", "--skip-bad")
    assert r.exit_code == 0, r.stderr
    assert "indexed 1 documents" in r.stdout
    assert "skipped" in r.stderr and "lone surrogate" in r.stderr
    more = _jsonl(tmp_path / "more.jsonl", [{"id": "m", "title": LONE, "text": "x"}])
    r = run_cli("add", str(more), "--index", idx)
    assert r.exit_code == 2 and "more.jsonl:1: document 'm': title contains" in r.stderr
    r = run_cli("add", str(more), "--index", idx, "--skip-bad")
    assert r.exit_code == 0, r.stderr


def test_cli_rerank_rejects_bad_documents_blank_queries_and_top_n_0(tmp_path: Path) -> None:
    docs = _jsonl(tmp_path / "d.jsonl", [{"text": "fine"}, {"text": LONE}])
    r = run_cli("rerank", "q", "--model", "none", "--docs", str(docs))
    assert r.exit_code == 2
    assert "d.jsonl:2: document '1': text contains a lone surrogate" in r.stderr
    good = _jsonl(tmp_path / "g.jsonl", [{"text": "fine"}])
    r = run_cli("rerank", "   ", "--model", "none", "--docs", str(good))
    assert r.exit_code == 2 and "query (first argument): text is empty" in r.stderr
    r = run_cli("rerank", "q\udcff", "--model", "none", "--docs", str(good))
    assert r.exit_code == 2 and "lone surrogate \\udcff" in r.stderr
    r = run_cli("rerank", "q", "--model", "none", "--docs", str(good), "--top-n", "0")
    assert r.exit_code == 2 and "--top-n" in r.stderr


def test_cli_search_rejects_a_query_that_is_not_text(tmp_path: Path) -> None:
    # A non-UTF-8 argv byte reaches Python as a surrogate (surrogateescape).
    r = run_cli("search", "q\udcff", "--index", str(tmp_path / "nowhere"))
    assert r.exit_code == 2 and "lone surrogate \\udcff" in r.stderr


def test_library_rerankers_refuse_text_that_is_not_unicode() -> None:
    """A lone surrogate used to reach the tokenizer, which raised a bare TypeError."""
    from rerank_fakes import BagOfWordsEncoder
    from shortlist.rerank.bi_encoder import BiEncoderReranker

    reranker = BiEncoderReranker(encoder=BagOfWordsEncoder())
    with pytest.raises(InvalidTextError, match=r"^documents\[1\]: text contains a lone"):
        reranker.rerank("cat", ["a cat", LONE])
    with pytest.raises(InvalidTextError, match="^query: text contains a lone"):
        reranker.rerank(LONE, ["a cat"])
    assert len(reranker.rerank("cat", ["a cat"])) == 1


def test_cross_encoder_refuses_text_that_is_not_unicode(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from models import build_tiny_cross_encoder
    from shortlist.rerank.cross_encoder import CrossEncoderReranker

    folder = build_tiny_cross_encoder(tmp_path / "ce", "bert")
    reranker = CrossEncoderReranker(str(folder), max_length=32)
    with pytest.raises(InvalidTextError, match=r"^documents\[0\]: text contains a lone"):
        reranker.rerank("cat", [LONE])
    with pytest.raises(InvalidTextError, match="^query: text contains a lone"):
        reranker.rerank("c\udfffat", ["ok"])


def test_not_blank_pattern_agrees_with_check_query_on_every_bmp_character() -> None:
    """The spec's query pattern and the server's blank check must never disagree."""
    import re

    pattern = re.compile(NOT_BLANK_PATTERN)
    for code in range(0xD800):  # surrogates are refused for another reason
        c = chr(code)
        assert bool(pattern.search(c)) == (not c.isspace()), hex(code)
    assert pattern.search("  x ") and not pattern.search(" \t\u3000\x1f")


def test_library_search_refuses_blank_queries_and_text_that_is_not_unicode(
    tmp_path: Path,
) -> None:
    """The first stage's query check is the same function (a surrogate in a query would
    otherwise reach a dense encoder's tokenizer)."""
    from shortlist.store.index import Index

    index = Index.create(tmp_path / "idx", [Document("a", "a cat")], dense=False)
    with pytest.raises(InvalidTextError, match="^query: text contains a lone surrogate"):
        index.search("c\udfffat", mode="bm25")
    with pytest.raises(InvalidTextError, match="^query: text is empty"):
        index.search(" \t", mode="bm25")
    assert [h.doc_id for h in index.search("cat", mode="bm25")] == ["a"]
    index.close()
