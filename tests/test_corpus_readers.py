"""Corpus readers: every format, and every kind of bad input named by file and line."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest

from shortlist.corpus.readers import BadRecord, CsvColumns, read_corpus
from shortlist.errors import CorpusFormatError, InvalidInputError
from shortlist.types import Document


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def jsonl(*records: object) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def read_error(*paths: Path, **kwargs: object) -> CorpusFormatError:
    with pytest.raises(CorpusFormatError) as info:
        list(read_corpus(list(paths), **kwargs))  # type: ignore[arg-type]
    return info.value


# ------------------------------------------------------------------ good input


def test_jsonl_reads_fields_and_metadata(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.jsonl",
        jsonl(
            {"id": "a", "text": "alpha text", "title": "A", "metadata": {"year": 2020}},
            {"id": 7, "text": "seven"},
        )
        + "\n",  # a trailing blank line is fine
    )
    docs = list(read_corpus([path]))
    assert docs == [
        Document(id="a", text="alpha text", title="A", metadata={"year": 2020}),
        Document(id="7", text="seven"),
    ]


def test_real_text_sample(data_dir: str) -> None:
    docs = list(read_corpus([os.path.join(data_dir, "lee5.jsonl")]))
    assert [d.id for d in docs] == [f"lee-{i}" for i in range(5)]
    assert docs[0].text.startswith("The national executive of the strife-torn Democrats")
    assert docs[4].metadata == {"source": "gensim lee.cor", "line": 5}


def test_beir_detected_by_first_record(tmp_path: Path) -> None:
    path = write(
        tmp_path / "corpus.jsonl",
        jsonl(
            {"_id": "d1", "title": "T1", "text": "body one"},
            {"_id": "d2", "title": "", "text": "body two", "metadata": {"url": "u"}},
        ),
    )
    docs = list(read_corpus([path]))
    assert docs == [
        Document(id="d1", text="body one", title="T1"),
        Document(id="d2", text="body two", metadata={"url": "u"}),
    ]


def test_beir_title_only_document_keeps_title_as_text(tmp_path: Path) -> None:
    record = {"_id": "d1", "title": "Only a title", "text": ""}
    path = write(tmp_path / "corpus.jsonl", jsonl(record))
    assert list(read_corpus([path])) == [Document(id="d1", text="Only a title")]


def test_explicit_format_overrides_detection(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", jsonl({"_id": "x", "text": "t"}))
    err = read_error(path, format="jsonl")
    assert "missing 'id' field" in str(err) and "'_id'" in str(err)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", b"\xef\xbb\xbf" + jsonl({"id": "a", "text": "x"}).encode())
    assert [d.id for d in read_corpus([path])] == ["a"]


def test_gzip_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl({"id": "a", "text": "zipped"}).encode()))
    assert [d.text for d in read_corpus(path)] == ["zipped"]


def test_csv_default_columns_rest_is_metadata(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.csv",
        'id,title,text,lang\n1,One,"first, with comma",en\n2,Two,"multi\nline",de\n',
    )
    docs = list(read_corpus([path]))
    assert docs == [
        Document(id="1", text="first, with comma", title="One", metadata={"lang": "en"}),
        Document(id="2", text="multi\nline", title="Two", metadata={"lang": "de"}),
    ]


def test_csv_custom_columns_and_metadata_selection(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "doc,body,a,b\nx,hello,1,2\n")
    columns = CsvColumns(id="doc", text="body", metadata=["b"])
    assert list(read_corpus([path], csv_columns=columns)) == [
        Document(id="x", text="hello", metadata={"b": "2"})
    ]


def test_tsv(tmp_path: Path) -> None:
    path = write(tmp_path / "c.tsv", "id\ttext\nx\thello, world\n")
    assert list(read_corpus([path])) == [Document(id="x", text="hello, world")]


def test_folder_recursive_ids_titles_metadata(tmp_path: Path) -> None:
    root = tmp_path / "notes"
    write(root / "b.md", "intro line\n\n```\n# not a title\n```\n## Real Title ##\nbody\n")
    write(root / "sub" / "a.txt", "# looks like a heading\nplain text\n")
    write(root / "sub" / "c.md", "no heading here\n")
    write(root / "skip.bin", "ignored")
    write(root / ".hidden" / "h.md", "hidden")
    docs = list(read_corpus([root]))
    assert [d.id for d in docs] == ["b.md", "sub/a.txt", "sub/c.md"]
    assert [d.title for d in docs] == ["Real Title", "a", "c"]
    assert docs[1].metadata == {
        "path": str(root / "sub" / "a.txt"),
        "ext": ".txt",
        "source": "sub/a.txt",
        "format": "text",
        "sha256": hashlib.sha256(b"# looks like a heading\nplain text\n").hexdigest(),
        "root": str(root.resolve()),
    }
    assert docs[1].text == "# looks like a heading\nplain text\n"


def test_several_sources_in_order(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", jsonl({"id": "a", "text": "x"}))
    b = write(tmp_path / "b.csv", "id,text\nb,y\n")
    assert [d.id for d in read_corpus([a, b])] == ["a", "b"]


def test_reading_is_lazy(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", jsonl({"id": "a", "text": "x"}) + "{broken\n")
    docs = read_corpus([path])
    assert next(docs).id == "a"  # the bad second line is not read yet
    with pytest.raises(CorpusFormatError):
        next(docs)


# ------------------------------------------------------------------ bad input


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", jsonl({"id": "a", "text": "x"}) + '{"id": "b",\n')
    err = read_error(path)
    assert (err.path, err.line) == (str(path), 2)
    assert str(err).startswith(f"{path}:2: invalid JSON")


def test_invalid_utf8_names_line(tmp_path: Path) -> None:
    good = jsonl({"id": "a", "text": "x"}).encode()
    bad = '{"id": "b", "text": "caf\u00e9"}\n'.encode("latin-1")
    path = write(tmp_path / "c.jsonl", good + good.replace(b'"a"', b'"c"') + bad)
    err = read_error(path)
    assert err.line == 3 and f"{path}:3:" in str(err)
    assert "UTF-8" in str(err) and "iconv" in str(err)


def test_invalid_utf8_in_folder_file_names_line(tmp_path: Path) -> None:
    write(tmp_path / "d" / "x.txt", "line one\nline two\ncaf\u00e9\n".encode("latin-1"))
    err = read_error(tmp_path / "d")
    assert "x.txt:3:" in str(err) and "UTF-8" in str(err)


def test_invalid_utf8_in_csv_names_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", b"id,text\na,fine\nb,caf\xe9\n")
    err = read_error(path)
    assert err.line == 3 and "UTF-8" in str(err)


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('{"id": "b", "text": "   "}', "empty text"),
        ('{"text": "no id"}', "missing 'id' field"),
        ('{"id": "b"}', "missing 'text' field"),
        ('{"id": "b", "text": "t", "metadata": [1, 2]}', "'metadata' must be a JSON object"),
        ('{"id": "b", "text": 5}', "'text' must be a string"),
        ('{"id": ["b"], "text": "t"}', "'id' must be a string or an integer"),
        ('["b", "t"]', "expected a JSON object"),
    ],
)
def test_bad_records_name_file_line_and_problem(tmp_path: Path, line: str, needle: str) -> None:
    path = write(tmp_path / "c.jsonl", jsonl({"id": "a", "text": "x"}) + line + "\n")
    err = read_error(path, format="jsonl")
    assert err.line == 2 and str(err).startswith(f"{path}:2: ")
    assert needle in str(err)


def test_duplicate_ids_across_sources_name_both_places(tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", jsonl({"id": "x", "text": "1"}, {"id": "dup", "text": "2"}))
    b = write(tmp_path / "b.csv", "id,text\nz,3\ndup,4\n")
    err = read_error(a, b)
    assert (err.path, err.line) == (str(b), 3)
    assert f"first seen at {a}:2" in str(err) and "'dup'" in str(err)


def test_csv_missing_id_column_lists_columns_and_option(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "doc,body\n1,x\n")
    err = read_error(path)
    assert err.line == 1
    assert "'doc', 'body'" in str(err) and "CsvColumns(id=...)" in str(err)


def test_csv_missing_id_column_is_not_skippable(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "doc,body\n1,x\n")
    with pytest.raises(CorpusFormatError, match="no id column"):
        list(read_corpus([path], skip_bad=True))


def test_csv_explicit_title_column(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,text,headline,title\n1,x,H,T\n")
    docs = list(read_corpus([path], csv_columns=CsvColumns(title="headline")))
    assert docs == [Document(id="1", text="x", title="H", metadata={"title": "T"})]
    err = read_error(path, csv_columns=CsvColumns(title="heading"))
    assert "no title column 'heading'" in str(err) and "CsvColumns(title=...)" in str(err)


def test_csv_missing_metadata_column(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,text\n1,x\n")
    err = read_error(path, csv_columns=CsvColumns(metadata=["lang"]))
    assert "no metadata column 'lang'" in str(err)


def test_csv_wrong_field_count_and_empty_text(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", 'id,text\na,"two\nlines"\nb,x,extra\nc,  \n')
    err = read_error(path)
    assert err.line == 4 and "3 fields but the header has 2" in str(err)
    seen: list[BadRecord] = []
    docs = list(read_corpus([path], skip_bad=True, on_bad=seen.append))
    assert [d.id for d in docs] == ["a"]
    assert [(b.line, "empty text" in b.reason) for b in seen] == [(4, False), (5, True)]


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(CorpusFormatError, match="no such file or directory") as info:
        read_corpus([tmp_path / "nope.jsonl"])  # raised at call time, not on iteration
    assert info.value.path == str(tmp_path / "nope.jsonl")


def test_unknown_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "c.parquet", "x")
    with pytest.raises(CorpusFormatError, match=r"\.jsonl.*format") as info:
        read_corpus([path])
    assert "c.parquet" in str(info.value)


def test_unknown_format_lists_choices(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="jsonl, beir, csv, tsv, folder"):
        read_corpus([tmp_path], format="xml")


def test_folder_without_documents(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.bin", "x")
    err = read_error(tmp_path / "d")
    assert "no documents found" in str(err) and ".pdf" in str(err)
    assert str(tmp_path / "d") in str(err)


def test_file_given_as_folder_format(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", jsonl({"id": "a", "text": "x"}))
    with pytest.raises(CorpusFormatError, match="needs a directory"):
        read_corpus([path], format="folder")


def test_empty_folder_file_is_bad(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.md", "# t\nbody")
    write(tmp_path / "d" / "b.txt", "  \n")
    err = read_error(tmp_path / "d")
    assert "b.txt" in str(err) and "empty file" in str(err)


def test_no_paths() -> None:
    with pytest.raises(InvalidInputError, match="no corpus path"):
        read_corpus([])


# ------------------------------------------------------------------ skip_bad


def test_skip_bad_reports_and_skips(tmp_path: Path) -> None:
    raw = (
        jsonl({"id": "a", "text": "ok"}).encode()
        + b"{not json\n"
        + '{"id": "x", "text": "caf\u00e9"}\n'.encode("latin-1")
        + jsonl({"id": "a", "text": "again"}).encode()
        + jsonl({"id": "b", "text": ""}).encode()
        + jsonl({"id": "c", "text": "ok too"}).encode()
    )
    path = write(tmp_path / "c.jsonl", raw)
    seen: list[BadRecord] = []
    docs = list(read_corpus([path], skip_bad=True, on_bad=seen.append))
    assert [d.id for d in docs] == ["a", "c"]
    assert [b.line for b in seen] == [2, 3, 4, 5]
    assert all(b.path == str(path) for b in seen)
    assert "invalid JSON" in seen[0].reason
    assert "UTF-8" in seen[1].reason
    assert "duplicate id 'a'" in seen[2].reason and f"{path}:1" in seen[2].reason
    assert str(seen[3]).startswith(f"{path}:5: ")


def test_skip_bad_without_callback_still_skips(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", "{bad\n" + jsonl({"id": "a", "text": "x"}))
    assert [d.id for d in read_corpus([path], skip_bad=True)] == ["a"]


def test_skip_bad_folder_file_has_no_line(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.md", "")
    write(tmp_path / "d" / "b.md", "text")
    seen: list[BadRecord] = []
    docs = list(read_corpus([tmp_path / "d"], skip_bad=True, on_bad=seen.append))
    assert [d.id for d in docs] == ["b.md"]
    assert seen == [BadRecord(path=str(tmp_path / "d" / "a.md"), line=None, reason=seen[0].reason)]


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    records = jsonl(*({"id": str(i), "text": f"text {i} " * 20} for i in range(200)))
    data = gzip.compress(records.encode())
    path = write(tmp_path / "c.jsonl.gz", data[: len(data) // 2])
    err = read_error(path)
    assert err.path == str(path) and err.line is not None and "not corrupt" in str(err)


def test_missing_path_with_explicit_format(tmp_path: Path) -> None:
    with pytest.raises(CorpusFormatError, match="no such file or directory"):
        read_corpus([tmp_path / "nope.txt"], format="jsonl")
