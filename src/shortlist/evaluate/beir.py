"""BEIR dataset folders: read them into a `Dataset`, write them from records.

Layout (Thakur et al., "BEIR: A Heterogeneous Benchmark for Zero-shot Evaluation of
Information Retrieval Models", NeurIPS 2021; https://github.com/beir-cellar/beir)::

    DIR/corpus.jsonl        {"_id": ..., "title": ..., "text": ..., "metadata": {...}}
    DIR/queries.jsonl       {"_id": ..., "text": ..., "metadata": {...}}
    DIR/qrels/<split>.tsv   query-id<TAB>corpus-id<TAB>score   (header line, graded)

shortlist adds an optional ``DIR/dataset.json`` with ``{"ignore_identical_ids": true}`` for
collections whose queries are corpus documents themselves (the query's own document must be
removed from a run before scoring; see `shortlist.evaluate.runs.drop_identical_ids`).

Loading never crashes on imperfect judgements; it cleans them and says what it did in a
`LoadReport`: judgements of documents missing from the corpus are dropped, and queries with
no judgements, no relevant document, or no text are skipped. Malformed lines raise
`CorpusFormatError` with the file and line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shortlist._fs import replace_dir
from shortlist.errors import CorpusFormatError, InvalidInputError
from shortlist.evaluate.metrics import RELEVANCE_LEVEL
from shortlist.evaluate.runs import read_beir_qrels
from shortlist.evaluate.trec import iter_json_objects
from shortlist.types import Document, Qrels

LAYOUT = "DIR/corpus.jsonl, DIR/queries.jsonl, DIR/qrels/<split>.tsv"

_MAX_EXAMPLES = 5


@dataclass(frozen=True)
class LoadReport:
    """What loading (or `clean_qrels`) found and did. `warnings` has one line per issue."""

    n_documents: int
    n_queries: int
    n_judgements: int
    dropped_unknown_documents: int = 0
    queries_without_judgements: tuple[str, ...] = ()
    queries_without_relevant: tuple[str, ...] = ()
    judged_queries_without_text: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """A retrieval test collection: documents, the queries to run, and their judgements.

    `queries` holds only queries that can be evaluated (at least one relevant document);
    `qrels` holds only judgements of documents present in `corpus`.
    """

    corpus: list[Document]
    queries: dict[str, str]
    qrels: Qrels
    report: LoadReport
    name: str = ""
    ignore_identical_ids: bool = False


def _examples(ids: Iterable[str]) -> str:
    ids = sorted(ids)
    shown = ", ".join(ids[:_MAX_EXAMPLES])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > _MAX_EXAMPLES else "")


def clean_qrels(
    qrels: Qrels,
    *,
    doc_ids: Iterable[str] | None = None,
    query_ids: Iterable[str] | None = None,
) -> tuple[Qrels, LoadReport]:
    """Judgements that can be evaluated, plus a report of what was removed and why.

    Drops judgements of documents not in `doc_ids` (when given), queries not in `query_ids`
    (when given) and queries without any relevant (grade >= 1) document, whose every metric
    is 0 whatever the system does. Returns new dicts; the input is not modified.
    """
    known_docs = None if doc_ids is None else set(doc_ids)
    known_queries = None if query_ids is None else set(query_ids)
    cleaned: Qrels = {}
    unknown_docs = 0
    unknown_examples: set[str] = set()
    no_text: list[str] = []
    no_relevant: list[str] = []
    for qid, judged in qrels.items():
        if known_queries is not None and qid not in known_queries:
            no_text.append(qid)
            continue
        kept = {}
        for doc_id, grade in judged.items():
            if known_docs is not None and doc_id not in known_docs:
                unknown_docs += 1
                unknown_examples.add(doc_id)
                continue
            kept[doc_id] = grade
        if not any(g >= RELEVANCE_LEVEL for g in kept.values()):
            no_relevant.append(qid)
            continue
        cleaned[qid] = kept
    without_judgements: list[str] = []
    if known_queries is not None:
        without_judgements = sorted(known_queries - set(qrels))
    warnings = []
    if unknown_docs:
        warnings.append(
            f"dropped {unknown_docs} judgement(s) of documents not in the corpus: "
            f"{_examples(unknown_examples)}"
        )
    if no_text:
        warnings.append(
            f"skipped {len(no_text)} judged query(ies) with no text: {_examples(no_text)}"
        )
    if no_relevant:
        warnings.append(
            f"skipped {len(no_relevant)} query(ies) with no relevant document "
            f"(every metric would be 0): {_examples(no_relevant)}"
        )
    if without_judgements:
        warnings.append(
            f"skipped {len(without_judgements)} query(ies) without judgements: "
            f"{_examples(without_judgements)}"
        )
    report = LoadReport(
        n_documents=len(known_docs) if known_docs is not None else 0,
        n_queries=len(cleaned),
        n_judgements=sum(len(j) for j in cleaned.values()),
        dropped_unknown_documents=unknown_docs,
        queries_without_judgements=tuple(without_judgements),
        queries_without_relevant=tuple(sorted(no_relevant)),
        judged_queries_without_text=tuple(sorted(no_text)),
        warnings=tuple(warnings),
    )
    return cleaned, report


def _record_id(record: Mapping[str, Any], path: Path, number: int) -> str:
    raw = record.get("_id")
    if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int) or str(raw) == "":
        raise CorpusFormatError('missing or empty "_id"', path=str(path), line=number)
    return str(raw)


def _text_field(record: Mapping[str, Any], key: str, path: Path, number: int) -> str:
    value = record.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CorpusFormatError(f'"{key}" must be a string', path=str(path), line=number)
    return value


def read_corpus_jsonl(path: str | Path) -> list[Document]:
    """Read a BEIR ``corpus.jsonl``. Fields other than _id/title/text go into metadata."""
    path = Path(path)
    documents: list[Document] = []
    seen: set[str] = set()
    for number, record in iter_json_objects(path):
        doc_id = _record_id(record, path, number)
        if doc_id in seen:
            raise CorpusFormatError(
                f"duplicate document id {doc_id!r}", path=str(path), line=number
            )
        seen.add(doc_id)
        metadata = record.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise CorpusFormatError('"metadata" must be an object', path=str(path), line=number)
        extra = {k: v for k, v in record.items() if k not in ("_id", "title", "text", "metadata")}
        documents.append(
            Document(
                id=doc_id,
                text=_text_field(record, "text", path, number),
                title=_text_field(record, "title", path, number),
                metadata={**extra, **metadata},
            )
        )
    return documents


def read_queries_jsonl(path: str | Path) -> dict[str, str]:
    """Read a BEIR ``queries.jsonl`` -> query id -> text."""
    path = Path(path)
    queries: dict[str, str] = {}
    for number, record in iter_json_objects(path):
        qid = _record_id(record, path, number)
        if qid in queries:
            raise CorpusFormatError(f"duplicate query id {qid!r}", path=str(path), line=number)
        text = _text_field(record, "text", path, number)
        if not text.strip():
            raise CorpusFormatError(f"query {qid!r} has empty text", path=str(path), line=number)
        queries[qid] = text
    return queries


def _require(path: Path, root: Path, split: str) -> None:
    if path.is_file():
        return
    hint = ""
    if path.parent.name == "qrels" and path.parent.is_dir():
        splits = sorted(p.stem for p in path.parent.glob("*.tsv"))
        if splits:
            hint = f"; available splits: {', '.join(splits)}"
    raise CorpusFormatError(
        f"BEIR folder {root} has no {path.relative_to(root)} (expected layout: {LAYOUT}{hint})"
    )


def load_beir(directory: str | Path, split: str = "test") -> Dataset:
    """Load a BEIR folder into a `Dataset` (see the module docstring for the cleaning rules)."""
    root = Path(directory)
    if not root.is_dir():
        raise CorpusFormatError(f"no BEIR folder at {root} (expected layout: {LAYOUT})")
    corpus_path, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    qrels_path = root / "qrels" / f"{split}.tsv"
    for needed in (corpus_path, queries_path, qrels_path):
        _require(needed, root, split)
    corpus = read_corpus_jsonl(corpus_path)
    all_queries = read_queries_jsonl(queries_path)
    raw_qrels = read_beir_qrels(qrels_path)
    qrels, report = clean_qrels(
        raw_qrels, doc_ids=[d.id for d in corpus], query_ids=list(all_queries)
    )
    meta = _read_manifest(root)
    return Dataset(
        corpus=corpus,
        queries={qid: all_queries[qid] for qid in all_queries if qid in qrels},
        qrels=qrels,
        report=report,
        name=str(meta.get("name", root.name)),
        ignore_identical_ids=bool(meta.get("ignore_identical_ids", False)),
    )


MANIFEST = "dataset.json"


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CorpusFormatError(
            f"not valid JSON ({exc.msg})", path=str(path), line=exc.lineno
        ) from None
    if not isinstance(data, dict):
        raise CorpusFormatError("must be a JSON object", path=str(path))
    return data


def write_beir(
    directory: str | Path,
    corpus: Iterable[Document],
    queries: Mapping[str, str],
    qrels: Qrels | None,
    split: str = "test",
    *,
    splits: Mapping[str, Qrels] | None = None,
    query_metadata: Mapping[str, Mapping[str, Any]] | None = None,
    manifest: Mapping[str, Any] | None = None,
    card: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a BEIR folder atomically (built in a sibling temporary folder, then renamed).

    `qrels` is written as ``qrels/<split>.tsv`` (skipped when None); `splits` maps more
    split names to their qrels (``{"train": ..., "dev": ...}``). Records are written in the
    order given (callers sort them for reproducible output); qrels sorted by query id then
    document id. `query_metadata` (query id -> dict) becomes each query's ``metadata``;
    `manifest` becomes ``dataset.json``, `card` becomes ``README.md``. An existing non-empty
    folder is replaced only with `overwrite`.
    """
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise InvalidInputError(f"{target} exists and is not empty; pass overwrite=True (--force)")
    to_write: dict[str, Qrels] = {} if qrels is None else {split: qrels}
    for name, judged in (splits or {}).items():
        if name in to_write:
            raise InvalidInputError(f"split {name!r} given twice")
        to_write[name] = judged
    if not to_write:
        raise InvalidInputError("nothing to write: give qrels or splits")
    for name in to_write:
        if not name or "/" in name or os.sep in name or name.startswith("."):
            raise InvalidInputError(f"invalid split name {name!r}")
    query_metadata = query_metadata or {}

    def build(staging: Path) -> None:
        with open(staging / "corpus.jsonl", "w", encoding="utf-8") as handle:
            for doc in corpus:
                record: dict[str, Any] = {"_id": doc.id, "title": doc.title, "text": doc.text}
                if doc.metadata:
                    record["metadata"] = dict(doc.metadata)
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        with open(staging / "queries.jsonl", "w", encoding="utf-8") as handle:
            for qid, text in queries.items():
                query: dict[str, Any] = {"_id": qid, "text": text}
                if query_metadata.get(qid):
                    query["metadata"] = dict(query_metadata[qid])
                handle.write(json.dumps(query, ensure_ascii=False) + "\n")
        (staging / "qrels").mkdir()
        for name, judged in to_write.items():
            with open(staging / "qrels" / f"{name}.tsv", "w", encoding="utf-8") as handle:
                handle.write("\t".join(("query-id", "corpus-id", "score")) + "\n")
                for qid in sorted(judged):
                    for doc_id in sorted(judged[qid]):
                        handle.write(f"{qid}\t{doc_id}\t{judged[qid][doc_id]}\n")
        if manifest is not None:
            (staging / MANIFEST).write_text(
                json.dumps(dict(manifest), indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
        if card is not None:
            (staging / "README.md").write_text(card, encoding="utf-8")

    # mkdtemp creates 0700; a dataset folder is meant to be shared
    return replace_dir(target, build, mode=0o755)
