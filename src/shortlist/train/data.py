"""Training pairs: (query, positive passages) from JSONL or a BEIR folder.

JSONL (one object per line; blank lines skipped)::

    {"query": "...", "positive": "..."}                     one positive
    {"query": "...", "positives": ["...", {"id": "...", "text": "..."}]}
    optional keys: "id" (query id), "positive_id" (with "positive")

A query id defaults to ``line-N``; a passage id defaults to ``p-`` + the first 16 hex
digits of the sha256 of its text, so the same passage on several lines is one passage.
Lines with the same query id are merged.

BEIR folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv`` (read with
`shortlist.evaluate.beir.load_beir`); positives are the judged documents with grade > 0,
and the whole corpus is the pool negatives are mined from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shortlist._fs import hash_file_into
from shortlist.errors import CorpusFormatError, InvalidInputError
from shortlist.evaluate.trec import iter_json_objects
from shortlist.types import Document, Qrels

_JSONL_FORM = (
    'each line must be {"query": TEXT, "positive": TEXT} or '
    '{"query": TEXT, "positives": [TEXT, ...]} (optional "id", "positive_id")'
)


@dataclass(frozen=True)
class SourceFile:
    """A file training data was read from, for the model card's manifest."""

    path: str
    sha256: str
    role: str


@dataclass(frozen=True)
class PairSet:
    """Queries, their positive passages, and the passage pool.

    - `queries`: query id -> text;
    - `positives`: query id -> ids of its positive passages (each in `passages`);
    - `passages`: every passage this set knows (the positives, plus the corpus for
      BEIR or a `--corpus` file);
    - `sources`: the files read.
    """

    queries: Mapping[str, str]
    positives: Mapping[str, tuple[str, ...]]
    passages: Mapping[str, Document]
    sources: tuple[SourceFile, ...] = ()
    name: str = ""
    warnings: tuple[str, ...] = field(default=())

    @property
    def num_pairs(self) -> int:
        return sum(len(p) for p in self.positives.values())

    def qrels(self) -> Qrels:
        """The positives as binary judgements (grade 1)."""
        return {qid: dict.fromkeys(ids, 1) for qid, ids in self.positives.items()}

    def counts(self) -> dict[str, int]:
        return {
            "queries": len(self.queries),
            "pairs": self.num_pairs,
            "passages": len(self.passages),
        }


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes; for a folder, of its files' relative paths and bytes."""
    root = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    for file in files:
        if root.is_dir():
            h.update(file.relative_to(root).as_posix().encode() + b"\0")
        hash_file_into(h, file)
    return h.hexdigest()


def passage_id(text: str) -> str:
    """The default id of a passage given without one."""
    return "p-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_pairs(
    source: str | Path, *, split: str = "train", corpus_of: PairSet | None = None
) -> PairSet:
    """Pairs from a JSONL file, or from the `split` qrels of a BEIR folder.

    `corpus_of`: a `PairSet` already read from the same BEIR folder (another split);
    its passages are reused instead of reading ``corpus.jsonl`` a second time.
    Raises `CorpusFormatError` naming file and line for malformed input, and
    `InvalidInputError` when the source has no usable pair.
    """
    path = Path(source)
    if path.is_dir():
        if corpus_of is not None:
            return _beir_split(path, split, corpus_of)
        return _load_beir(path, split)
    if not path.is_file():
        raise InvalidInputError(
            f"no training data at {path}; pass a JSONL file of "
            '{"query", "positive"} objects or a BEIR folder'
        )
    return read_pairs_jsonl(path)


def _load_beir(root: Path, split: str) -> PairSet:
    from shortlist.evaluate.beir import load_beir

    dataset = load_beir(root, split=split)
    positives = {
        qid: tuple(sorted(d for d, g in dataset.qrels[qid].items() if g > 0))
        for qid in dataset.queries
    }
    positives = {q: p for q, p in positives.items() if p}
    if not positives:
        raise InvalidInputError(
            f"{root / 'qrels' / (split + '.tsv')} has no query with a relevant (grade > 0) "
            "document in the corpus; check the qrels and the corpus ids"
        )
    files = [root / "corpus.jsonl", root / "queries.jsonl", root / "qrels" / f"{split}.tsv"]
    roles = ["corpus", "queries", f"qrels/{split}"]
    return PairSet(
        queries={q: dataset.queries[q] for q in positives},
        positives=positives,
        passages={d.id: d for d in dataset.corpus},
        sources=tuple(
            SourceFile(str(f), sha256_file(f), role) for f, role in zip(files, roles, strict=True)
        ),
        name=dataset.name,
        warnings=_split_warnings(dataset.report.warnings),
    )


def _split_warnings(warnings: tuple[str, ...]) -> tuple[str, ...]:
    # Queries of the other splits have no judgements in this one: expected, not news.
    return tuple(w for w in warnings if "without judgements" not in w)


def _beir_split(root: Path, split: str, corpus_of: PairSet) -> PairSet:
    from shortlist.evaluate.beir import _require, clean_qrels, read_queries_jsonl
    from shortlist.evaluate.runs import read_beir_qrels

    queries_path, qrels_path = root / "queries.jsonl", root / "qrels" / f"{split}.tsv"
    for needed in (queries_path, qrels_path):
        _require(needed, root, split)
    queries = read_queries_jsonl(queries_path)
    qrels, report = clean_qrels(
        read_beir_qrels(qrels_path), doc_ids=corpus_of.passages.keys(), query_ids=list(queries)
    )
    positives = {
        qid: tuple(sorted(d for d, g in judged.items() if g > 0)) for qid, judged in qrels.items()
    }
    positives = {q: p for q, p in positives.items() if p}
    if not positives:
        raise InvalidInputError(
            f"{qrels_path} has no query with a relevant (grade > 0) document in the corpus; "
            "check the qrels and the corpus ids"
        )
    corpus_sources = tuple(s for s in corpus_of.sources if s.role == "corpus")
    files = [(queries_path, "queries"), (qrels_path, f"qrels/{split}")]
    return PairSet(
        queries={q: queries[q] for q in queries if q in positives},
        positives=positives,
        passages=corpus_of.passages,
        sources=corpus_sources
        + tuple(SourceFile(str(f), sha256_file(f), role) for f, role in files),
        name=corpus_of.name,
        warnings=_split_warnings(report.warnings),
    )


def read_pairs_jsonl(path: str | Path) -> PairSet:
    """Read a JSONL file of pairs (module docstring gives the forms)."""
    path = Path(path)
    queries: dict[str, str] = {}
    positives: dict[str, list[str]] = {}
    passages: dict[str, Document] = {}
    for number, record in iter_json_objects(path, form=_JSONL_FORM):
        query = record.get("query")
        if not isinstance(query, str) or not query.strip():
            raise CorpusFormatError(
                f'"query" must be a non-empty string; {_JSONL_FORM}', path=str(path), line=number
            )
        qid = _optional_id(record, "id", path, number) or f"line-{number}"
        if qid in queries and queries[qid] != query:
            raise CorpusFormatError(
                f"query id {qid!r} was used before with a different text; give each query "
                "its own id",
                path=str(path),
                line=number,
            )
        queries[qid] = query
        found = positives.setdefault(qid, [])
        for pid, text in _positives(record, path, number):
            known = passages.get(pid)
            if known is not None and known.text != text:
                raise CorpusFormatError(
                    f"passage id {pid!r} was used before with a different text; "
                    "give each passage its own id",
                    path=str(path),
                    line=number,
                )
            passages[pid] = Document(id=pid, text=text)
            if pid not in found:
                found.append(pid)
    if not queries:
        raise InvalidInputError(f"{path} has no pairs; {_JSONL_FORM}")
    return PairSet(
        queries=queries,
        positives={q: tuple(p) for q, p in positives.items()},
        passages=passages,
        sources=(SourceFile(str(path), sha256_file(path), "pairs"),),
        name=path.stem,
    )


def _optional_id(record: Mapping[str, Any], key: str, path: Path, number: int) -> str | None:
    raw = record.get(key)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int) or str(raw) == "":
        raise CorpusFormatError(
            f'"{key}" must be a non-empty string or integer', path=str(path), line=number
        )
    return str(raw)


def _positives(record: Mapping[str, Any], path: Path, number: int) -> list[tuple[str, str]]:
    has_one, has_many = "positive" in record, "positives" in record
    if has_one == has_many:
        raise CorpusFormatError(
            f'give exactly one of "positive" and "positives"; {_JSONL_FORM}',
            path=str(path),
            line=number,
        )
    if has_one:
        text = record["positive"]
        if not isinstance(text, str) or not text.strip():
            raise CorpusFormatError(
                '"positive" must be a non-empty string', path=str(path), line=number
            )
        pid = _optional_id(record, "positive_id", path, number) or passage_id(text)
        return [(pid, text)]
    if "positive_id" in record:
        raise CorpusFormatError(
            '"positive_id" goes with "positive"; in "positives" give objects '
            '{"id": ..., "text": ...}',
            path=str(path),
            line=number,
        )
    items = record["positives"]
    if not isinstance(items, list) or not items:
        raise CorpusFormatError(
            '"positives" must be a non-empty list of strings or {"id", "text"} objects',
            path=str(path),
            line=number,
        )
    out = []
    for item in items:
        if isinstance(item, str) and item.strip():
            out.append((passage_id(item), item))
        elif isinstance(item, dict) and isinstance(item.get("text"), str) and item["text"].strip():
            pid = _optional_id(item, "id", path, number) or passage_id(item["text"])
            out.append((pid, item["text"]))
        else:
            raise CorpusFormatError(
                '"positives" items must be non-empty strings or {"id", "text"} objects',
                path=str(path),
                line=number,
            )
    return out


def with_corpus(pairs: PairSet, documents: Iterable[Document], source: str | Path) -> PairSet:
    """`pairs` with extra passages for the negative pool (ids already present are kept)."""
    passages = dict(pairs.passages)
    for doc in documents:
        passages.setdefault(doc.id, doc)
    return PairSet(
        queries=pairs.queries,
        positives=pairs.positives,
        passages=passages,
        sources=(*pairs.sources, SourceFile(str(source), sha256_file(source), "corpus")),
        name=pairs.name,
        warnings=pairs.warnings,
    )


def merge_pools(*sets: PairSet) -> dict[str, Document]:
    """All passages of several sets (the first set's document wins on a shared id)."""
    out: dict[str, Document] = {}
    for s in sets:
        for pid, doc in s.passages.items():
            out.setdefault(pid, doc)
    return out
