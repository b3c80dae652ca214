"""Reading and writing runs and qrels in any supported format, chosen by content or suffix.

* Runs: TREC run files (see `shortlist.evaluate.trec`) or JSON ``{query_id: {doc_id: score}}``
  (the format of ranx and of BEIR's ``results``). ``.json`` files are JSON, anything else TREC.
* Qrels: TREC qrels (4 columns) or BEIR ``qrels/<split>.tsv`` (3 columns, optional header
  ``query-id corpus-id score``), told apart by the first data line.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from shortlist.errors import CorpusFormatError
from shortlist.evaluate.trec import (
    iter_lines,
    parse_grade,
    read_trec_qrels,
    read_trec_run,
    write_trec_run,
)
from shortlist.types import Qrels, Run


def read_json_run(path: str | Path) -> Run:
    """Read a JSON run ``{query_id: {doc_id: score}}``; scores must be finite numbers."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusFormatError("file not found", path=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
        raise CorpusFormatError(f"not valid JSON ({exc})", path=str(path), line=line) from None
    if not isinstance(data, dict):
        raise CorpusFormatError(
            "a JSON run must be an object {query_id: {doc_id: score}}", path=str(path)
        )
    run: Run = {}
    for qid, scores in data.items():
        if not isinstance(scores, dict):
            raise CorpusFormatError(
                f"query {qid!r}: expected an object {{doc_id: score}}", path=str(path)
            )
        parsed: dict[str, float] = {}
        for doc_id, score in scores.items():
            if isinstance(score, bool) or not isinstance(score, int | float):
                raise CorpusFormatError(
                    f"query {qid!r}, document {doc_id!r}: score must be a number, got {score!r}",
                    path=str(path),
                )
            if not math.isfinite(score):
                raise CorpusFormatError(
                    f"query {qid!r}, document {doc_id!r}: score must be finite", path=str(path)
                )
            parsed[str(doc_id)] = float(score)
        run[str(qid)] = parsed
    return run


def write_json_run(path: str | Path, run: Run) -> None:
    """Write `run` as JSON with sorted query ids and documents in trec_eval order."""
    from shortlist.evaluate.metrics import ranked_doc_ids

    ordered = {
        qid: {doc_id: run[qid][doc_id] for doc_id in ranked_doc_ids(run[qid])}
        for qid in sorted(run)
    }
    Path(path).write_text(json.dumps(ordered, indent=1) + "\n", encoding="utf-8")


def read_run(path: str | Path) -> Run:
    """Read a run: JSON when the file name ends in ``.json``, otherwise a TREC run file."""
    if str(path).lower().endswith(".json"):
        return read_json_run(path)
    return read_trec_run(path)


def write_run(path: str | Path, run: Run, tag: str = "shortlist") -> None:
    """Write a run: JSON when the file name ends in ``.json``, otherwise a TREC run file."""
    if str(path).lower().endswith(".json"):
        write_json_run(path, run)
    else:
        write_trec_run(path, run, tag=tag)


BEIR_QRELS_HEADER = ("query-id", "corpus-id", "score")


def read_beir_qrels(path: str | Path) -> Qrels:
    """Read BEIR qrels: ``query-id<TAB>corpus-id<TAB>score`` with an optional header line."""
    qrels: Qrels = {}
    first = True
    for number, line in iter_lines(path):
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if first and tuple(f.lower() for f in fields) == BEIR_QRELS_HEADER:
            first = False
            continue
        first = False
        if len(fields) != 3 or not fields[0] or not fields[1]:
            raise CorpusFormatError(
                f"expected 3 fields 'query-id<TAB>corpus-id<TAB>score', got {len(fields)}",
                path=str(path),
                line=number,
            )
        qrels.setdefault(fields[0], {})[fields[1]] = parse_grade(
            fields[2], path=str(path), line=number
        )
    return qrels


def read_qrels(path: str | Path) -> Qrels:
    """Read qrels in TREC (4 columns) or BEIR (3 columns, optional header) format."""
    for _, line in iter_lines(path):
        if len(line.split()) == 4:
            return read_trec_qrels(path)
        return read_beir_qrels(path)
    raise CorpusFormatError("qrels file is empty", path=str(path))


def drop_identical_ids(run: Run) -> Run:
    """A copy of `run` without documents whose id equals their query's id.

    For collections where every query is also a corpus document (Lee doc-to-doc, BEIR's
    ArguAna and Quora), the query's own document is a trivial hit that is not judged;
    BEIR removes it before scoring (``ignore_identical_ids``) and so does this.
    """
    return {
        qid: {doc_id: s for doc_id, s in scores.items() if doc_id != qid}
        for qid, scores in run.items()
    }
