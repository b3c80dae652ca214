"""TREC file formats: topics, qrels and run files.

Formats (as read by trec_eval, https://github.com/usnistgov/trec_eval, README):

* qrels: one judgement per line, ``query_id iteration doc_id relevance`` (whitespace
  separated; ``iteration`` is ignored, usually ``0``).
* run: ``query_id Q0 doc_id rank score tag``. trec_eval ignores the rank column and orders
  by score (see `shortlist.evaluate.metrics`); so do we.
* topics: the classic SGML form ``<top> <num> Number: 401 <title> ... <desc> ... </top>``
  (TREC ad hoc 1-8, Robust04), the XML form ``<topic number="1"><query>...</query>``
  (TREC-COVID, Deep Learning) or a plain ``query_id<TAB>text`` file (MS MARCO).

Every reader raises `CorpusFormatError` naming the file and line of the first bad line.
`iter_lines` and `iter_json_objects` are the line readers shared with the other text
formats (BEIR JSONL, training pairs, documents to rerank).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shortlist.errors import CorpusFormatError
from shortlist.types import Qrels, Run


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based line numbers."""
    try:
        handle = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise CorpusFormatError("file not found", path=str(path)) from None
    except OSError as exc:
        raise CorpusFormatError(f"cannot read it ({exc.strerror})", path=str(path)) from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line.rstrip("\n")
        except UnicodeDecodeError as exc:
            raise CorpusFormatError(f"not valid UTF-8 ({exc.reason})", path=str(path)) from None


def iter_json_objects(
    path: str | Path, *, form: str = "each line must be a JSON object"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The JSON object on each non-blank line of a JSONL file, with its 1-based line number.

    A line that is not valid JSON, or not an object, raises `CorpusFormatError` naming the
    file and line and ending with `form`, the caller's description of a valid line.
    """
    for number, line in iter_lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusFormatError(
                f"not valid JSON ({exc.msg}); {form}", path=str(path), line=number
            ) from None
        if not isinstance(record, dict):
            raise CorpusFormatError(form, path=str(path), line=number)
        yield number, record


def _iter_fields(path: str | Path, layout: str) -> Iterator[tuple[int, list[str]]]:
    """The whitespace-separated fields of each non-blank line, which must match `layout`
    (field names separated by spaces) in number."""
    expected = len(layout.split())
    for number, line in iter_lines(path):
        fields = line.split()
        if len(fields) != expected:
            raise CorpusFormatError(
                f"expected {expected} fields '{layout}', got {len(fields)}",
                path=str(path),
                line=number,
            )
        yield number, fields


def parse_grade(text: str, *, path: str, line: int) -> int:
    """A relevance grade: an integer (``"1"``, ``"-1"``) or an integral float (``"2.0"``)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value):
        raise CorpusFormatError(f"relevance must be an integer, got {text!r}", path=path, line=line)
    return int(value)


def read_trec_qrels(path: str | Path) -> Qrels:
    """Read a TREC qrels file (``qid iter docid rel``). A repeated pair keeps the last grade."""
    qrels: Qrels = {}
    for number, (qid, _, doc_id, grade) in _iter_fields(path, "query_id 0 doc_id relevance"):
        qrels.setdefault(qid, {})[doc_id] = parse_grade(grade, path=str(path), line=number)
    return qrels


def read_trec_run(path: str | Path) -> Run:
    """Read a TREC run file (``qid Q0 docid rank score tag``) into a `Run`.

    The rank column is ignored (trec_eval orders by score). A document listed twice for the
    same query, or a score that is not a finite number, is an error.
    """
    run: Run = {}
    layout = "query_id Q0 doc_id rank score tag"
    for number, (qid, _, doc_id, _, raw_score, _) in _iter_fields(path, layout):
        try:
            score = float(raw_score)
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise CorpusFormatError(
                f"score must be a finite number, got {raw_score!r}", path=str(path), line=number
            )
        scores = run.setdefault(qid, {})
        if doc_id in scores:
            raise CorpusFormatError(
                f"document {doc_id!r} appears twice for query {qid!r}", path=str(path), line=number
            )
        scores[doc_id] = score
    return run


def write_trec_run(path: str | Path, run: Run, tag: str = "shortlist") -> None:
    """Write `run` as a TREC run file: queries in sorted order, documents in trec_eval order.

    Scores are written with ``repr`` precision so reading the file back gives the same run.
    The file is written to a temporary name and renamed into place, so an interrupted
    write never leaves a truncated run where a complete one is expected.
    """
    from shortlist.evaluate.metrics import ranked_doc_ids

    if not tag or any(c.isspace() for c in tag):
        raise CorpusFormatError(f"run tag must be one word, got {tag!r}", path=str(path))
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for qid in sorted(run):
            scores = run[qid]
            for rank, doc_id in enumerate(ranked_doc_ids(scores), start=1):
                handle.write(f"{qid} Q0 {doc_id} {rank} {scores[doc_id]!r} {tag}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)


_TOP = re.compile(r"<top>(.*?)</top>", re.S | re.I)
# A field runs to the next tag of any kind (TREC 1-3 topics also have <con>, <fac>, <def>).
_FIELD = re.compile(r"<(num|title|desc|narr)>(.*?)(?=</?\w+>|$)", re.S | re.I)
_PREFIX = re.compile(r"^\s*(Number|Topic|Description|Narrative)\s*:\s*", re.I)
_XML_TOPIC = re.compile(r"<topic\s+number\s*=\s*\"([^\"]+)\"[^>]*>(.*?)</topic>", re.S | re.I)

TOPIC_FIELDS = ("title", "desc", "narr")


def read_topics(path: str | Path, field: str = "title") -> dict[str, str]:
    """Read TREC topics (SGML, XML or ``qid<TAB>text``) -> query id -> text of `field`.

    `field` is ``title`` (keyword query, the default), ``desc`` or ``narr``; in the XML form
    they map to ``<query>``, ``<question>`` and ``<narrative>``. Whitespace is collapsed.
    """
    if field not in TOPIC_FIELDS:
        raise CorpusFormatError(
            f"unknown topic field {field!r}; choose one of {', '.join(TOPIC_FIELDS)}",
            path=str(path),
        )
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpusFormatError("file not found", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise CorpusFormatError(f"not valid UTF-8 ({exc.reason})", path=str(path)) from None
    if _TOP.search(text):
        return _read_sgml_topics(text, field, str(path))
    if _XML_TOPIC.search(text):
        return _read_xml_topics(text, field, str(path))
    return _read_tsv_topics(path)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _clean(value: str) -> str:
    return " ".join(_PREFIX.sub("", value.strip()).split())


def _read_sgml_topics(text: str, field: str, path: str) -> dict[str, str]:
    topics: dict[str, str] = {}
    for match in _TOP.finditer(text):
        line = _line_of(text, match.start())
        fields = {name.lower(): _clean(body) for name, body in _FIELD.findall(match.group(1))}
        qid = fields.get("num", "")
        if not qid:
            raise CorpusFormatError("topic without a <num> field", path=path, line=line)
        if not fields.get(field):
            raise CorpusFormatError(f"topic {qid} has no <{field}> field", path=path, line=line)
        if qid in topics:
            raise CorpusFormatError(f"topic {qid} appears twice", path=path, line=line)
        topics[qid] = fields[field]
    return topics


def _read_xml_topics(text: str, field: str, path: str) -> dict[str, str]:
    tag = {"title": "query", "desc": "question", "narr": "narrative"}[field]
    inner = re.compile(rf"<{tag}>(.*?)</{tag}>", re.S | re.I)
    topics: dict[str, str] = {}
    for match in _XML_TOPIC.finditer(text):
        qid, body = match.group(1).strip(), match.group(2)
        found = inner.search(body)
        if found is None or not found.group(1).strip():
            raise CorpusFormatError(
                f"topic {qid} has no <{tag}> element", path=path, line=_line_of(text, match.start())
            )
        topics[qid] = " ".join(found.group(1).split())
    return topics


def _read_tsv_topics(path: str | Path) -> dict[str, str]:
    topics: dict[str, str] = {}
    for number, line in iter_lines(path):
        qid, sep, body = line.partition("\t")
        if not sep or not qid.strip() or not body.strip():
            raise CorpusFormatError(
                "expected 'query_id<TAB>text' (or SGML <top> / XML <topic> topics)",
                path=str(path),
                line=number,
            )
        topics[qid.strip()] = " ".join(body.split())
    return topics
