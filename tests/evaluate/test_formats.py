"""TREC, JSON and BEIR readers and writers, and their error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shortlist.errors import CorpusFormatError, InvalidInputError
from shortlist.evaluate.beir import clean_qrels, load_beir, write_beir
from shortlist.evaluate.runs import (
    drop_identical_ids,
    read_json_run,
    read_qrels,
    read_run,
    write_json_run,
    write_run,
)
from shortlist.evaluate.trec import (
    iter_json_objects,
    read_topics,
    read_trec_qrels,
    read_trec_run,
    write_trec_run,
)
from shortlist.types import Document


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_trec_qrels_and_beir_qrels(tmp_path: Path) -> None:
    trec = _write(tmp_path / "q.txt", "1 0 d1 2\n1 0 d2 0\n\n2 0 d3 1\n")
    beir = _write(tmp_path / "q.tsv", "query-id\tcorpus-id\tscore\n1\td1\t2\n1\td2\t0\n2\td3\t1\n")
    expected = {"1": {"d1": 2, "d2": 0}, "2": {"d3": 1}}
    assert read_trec_qrels(trec) == expected
    assert read_qrels(trec) == expected
    assert read_qrels(beir) == expected


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("1 0 d1 1\n1 0 d2\n", 2, "expected 4 fields"),
        ("1 0 d1 1\n1 0 d2 x\n", 2, "relevance must be an integer"),
        ("1 0 d1 1.5\n", 1, "relevance must be an integer"),
    ],
)
def test_trec_qrels_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    path = _write(tmp_path / "bad.qrels", text)
    with pytest.raises(CorpusFormatError) as info:
        read_trec_qrels(path)
    assert info.value.line == line and info.value.path == str(path)
    assert f"bad.qrels:{line}:" in str(info.value) and fragment in str(info.value)


def test_trec_run_round_trip_and_errors(tmp_path: Path) -> None:
    run = {"q2": {"a": 1.0, "b": 1.0, "c": 0.1 + 0.2}, "q1": {"x": -3.5}}
    path = tmp_path / "run.trec"
    write_trec_run(path, run, tag="bm25")
    lines = path.read_text().splitlines()
    # queries sorted; ties in trec_eval order (doc id descending)
    assert lines[0] == "q1 Q0 x 1 -3.5 bm25"
    assert [line.split()[2] for line in lines[1:]] == ["b", "a", "c"]
    assert read_trec_run(path) == run
    bad = _write(tmp_path / "bad.run", "q1 Q0 a 1 1.0 t\nq1 Q0 a 2 0.5 t\n")
    with pytest.raises(CorpusFormatError, match="bad.run:2: document 'a' appears twice"):
        read_trec_run(bad)
    bad = _write(tmp_path / "nan.run", "q1 Q0 a 1 nan t\n")
    with pytest.raises(CorpusFormatError, match="nan.run:1: score must be a finite"):
        read_trec_run(bad)
    bad = _write(tmp_path / "short.run", "q1 Q0 a 1 0.5\n")
    with pytest.raises(CorpusFormatError, match="expected 6 fields"):
        read_trec_run(bad)


def test_json_run_round_trip_and_dispatch(tmp_path: Path) -> None:
    run = {"q1": {"a": 0.5, "b": 2.0}}
    write_run(tmp_path / "run.json", run)
    assert json.loads((tmp_path / "run.json").read_text()) == {"q1": {"b": 2.0, "a": 0.5}}
    assert read_run(tmp_path / "run.json") == run
    write_json_run(tmp_path / "r2.json", run)
    assert read_json_run(tmp_path / "r2.json") == run
    _write(tmp_path / "bad.json", '{"q1": {"a": "high"}}')
    with pytest.raises(CorpusFormatError, match="score must be a number"):
        read_run(tmp_path / "bad.json")
    _write(tmp_path / "broken.json", '{"q1": \n')
    with pytest.raises(CorpusFormatError, match="not valid JSON"):
        read_run(tmp_path / "broken.json")


def test_drop_identical_ids() -> None:
    run = {"q": {"q": 9.0, "d": 1.0}}
    assert drop_identical_ids(run) == {"q": {"d": 1.0}}
    assert run == {"q": {"q": 9.0, "d": 1.0}}


SGML = """<top>
<num> Number: 401
<title> foreign minorities, Germany

<desc> Description:
What language and cultural differences impede the integration?

<narr> Narrative:
A relevant document will focus on the causes.
</top>

<top>
<num> Number: 402 <title> Topic: behavioral genetics
<desc> Description: What is happening in the field?
<con> Concept(s): genes, behaviour
</top>
"""


def test_read_topics_sgml_xml_tsv(tmp_path: Path) -> None:
    sgml = _write(tmp_path / "topics.401-450", SGML)
    assert read_topics(sgml) == {"401": "foreign minorities, Germany", "402": "behavioral genetics"}
    assert read_topics(sgml, "desc")["402"] == "What is happening in the field?"
    assert read_topics(sgml, "desc")["401"] == (
        "What language and cultural differences impede the integration?"
    )
    xml = _write(
        tmp_path / "topics.xml",
        '<topics>\n<topic number="1">\n<query>coronavirus origin</query>\n'
        "<question>what is the origin of COVID-19</question>\n</topic>\n</topics>\n",
    )
    assert read_topics(xml) == {"1": "coronavirus origin"}
    assert read_topics(xml, "desc") == {"1": "what is the origin of COVID-19"}
    tsv = _write(tmp_path / "queries.tsv", "1\thow do  magnets work\n2\tdefine ranking\n")
    assert read_topics(tsv) == {"1": "how do magnets work", "2": "define ranking"}
    bad = _write(tmp_path / "bad.tsv", "1\tfine\njust text\n")
    with pytest.raises(CorpusFormatError, match="bad.tsv:2:"):
        read_topics(bad)
    with pytest.raises(CorpusFormatError, match="topic 402 has no <narr>"):
        read_topics(sgml, "narr")


CORPUS = [
    Document("d1", "Cats purr.", title="Cats"),
    Document("d2", "Dogs bark.", metadata={"lang": "en"}),
    Document("d3", "Fish swim."),
]


def test_beir_round_trip_and_report(tmp_path: Path) -> None:
    queries = {"q1": "cats", "q2": "dogs", "q3": "birds", "q4": "no judgements"}
    qrels = {
        "q1": {"d1": 2, "d3": 0, "ghost": 1},
        "q2": {"d2": 1},
        "q3": {"d3": 0},
        "q9": {"d1": 1},
    }
    write_beir(tmp_path / "ds", CORPUS, queries, qrels)
    assert (tmp_path / "ds" / "qrels" / "test.tsv").read_text().splitlines()[0] == (
        "query-id\tcorpus-id\tscore"
    )
    ds = load_beir(tmp_path / "ds")
    assert ds.corpus == CORPUS
    assert ds.queries == {"q1": "cats", "q2": "dogs"}
    assert ds.qrels == {"q1": {"d1": 2, "d3": 0}, "q2": {"d2": 1}}
    report = ds.report
    assert report.dropped_unknown_documents == 1
    assert report.queries_without_relevant == ("q3",)
    assert report.queries_without_judgements == ("q4",)
    assert report.judged_queries_without_text == ("q9",)
    assert report.n_queries == 2 and report.n_judgements == 3 and report.n_documents == 3
    assert len(report.warnings) == 4 and any("ghost" in w for w in report.warnings)
    assert qrels["q1"] == {"d1": 2, "d3": 0, "ghost": 1}  # caller's dict untouched


def test_write_beir_refuses_to_overwrite(tmp_path: Path) -> None:
    write_beir(tmp_path / "ds", CORPUS, {"q": "x"}, {"q": {"d1": 1}})
    with pytest.raises(InvalidInputError, match="exists and is not empty"):
        write_beir(tmp_path / "ds", CORPUS, {"q": "x"}, {"q": {"d1": 1}})
    write_beir(tmp_path / "ds", CORPUS[:1], {"q": "y"}, {"q": {"d1": 1}}, overwrite=True)
    assert load_beir(tmp_path / "ds").queries == {"q": "y"}
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no staging folder left behind


def test_load_beir_missing_files_name_the_layout(tmp_path: Path) -> None:
    with pytest.raises(CorpusFormatError, match="no BEIR folder"):
        load_beir(tmp_path / "nothing")
    write_beir(tmp_path / "ds", CORPUS, {"q": "x"}, {"q": {"d1": 1}}, split="dev")
    with pytest.raises(CorpusFormatError) as info:
        load_beir(tmp_path / "ds")
    message = str(info.value)
    assert (
        "qrels/test.tsv" in message
        and "corpus.jsonl" in message
        and "available splits: dev" in message
    )
    (tmp_path / "ds" / "queries.jsonl").unlink()
    with pytest.raises(CorpusFormatError, match="has no queries.jsonl"):
        load_beir(tmp_path / "ds", split="dev")


def test_load_beir_bad_lines(tmp_path: Path) -> None:
    write_beir(tmp_path / "ds", CORPUS, {"q": "x"}, {"q": {"d1": 1}})
    corpus = tmp_path / "ds" / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + '{"title": "no id"}\n')
    with pytest.raises(CorpusFormatError, match=r"corpus.jsonl:4: missing or empty \"_id\""):
        load_beir(tmp_path / "ds")
    corpus.write_text('{"_id": "a", "text": "x"}\n{not json}\n')
    with pytest.raises(CorpusFormatError, match="corpus.jsonl:2: not valid JSON"):
        load_beir(tmp_path / "ds")
    corpus.write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n')
    with pytest.raises(CorpusFormatError, match="corpus.jsonl:2: duplicate document id"):
        load_beir(tmp_path / "ds")


def test_clean_qrels_without_corpus() -> None:
    cleaned, report = clean_qrels({"a": {"x": 1}, "b": {"y": 0}})
    assert cleaned == {"a": {"x": 1}}
    assert report.queries_without_relevant == ("b",)


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{oops", "f.jsonl:3: not valid JSON (.*); each line must be X"),
        ("[1]", "f.jsonl:3: each line must be X$"),
    ],
)
def test_iter_json_objects(tmp_path: Path, bad_line: str, message: str) -> None:
    good = _write(tmp_path / "f.jsonl", '{"a": 1}\n\n{"b": 2}\n')
    assert list(iter_json_objects(good)) == [(1, {"a": 1}), (3, {"b": 2})]
    bad = _write(tmp_path / "f.jsonl", '{"a": 1}\n\n' + bad_line + "\n")
    with pytest.raises(CorpusFormatError, match=message):
        list(iter_json_objects(bad, form="each line must be X"))
