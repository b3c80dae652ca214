"""Corpus readers: the user's files in, a stream of `Document` records out.

Supported inputs (``format=`` name in brackets):

- JSON Lines [``jsonl``]: one object per line with ``id`` and ``text``, optional
  ``title`` (string) and ``metadata`` (object).
- BEIR ``corpus.jsonl`` [``beir``]: ``_id``, ``title``, ``text``, optional ``metadata``
  (layout from the BEIR benchmark, Thakur et al. 2021, github.com/beir-cellar/beir).
  A record with an empty ``text`` but a ``title`` (BEIR corpora have such documents,
  e.g. TREC-COVID) is kept: its title becomes its text, so it stays searchable and the
  qrels that name it stay valid.
- CSV [``csv``] and TSV [``tsv``] with a header row; the column names are set with
  `CsvColumns`.
- Documents: HTML [``html``: ``.html``, ``.htm``, ``.xhtml``], PDF [``pdf``], Word
  [``docx``], Markdown [``markdown``: ``.md``, ``.markdown``] and plain text [``text``:
  ``.txt``], each file one document with its structure (`shortlist.corpus.documents`:
  sections, pages, code blocks). HTML, PDF and DOCX need the extra ``documents``, whose
  parsers are imported only when such a file is met; without it reading one raises
  `MissingDependencyError` naming the extra.
- A folder [``folder``] of such documents, read recursively (hidden files and folders
  are skipped; other files are ignored), each by its extension. The id is the file's
  path relative to the folder, POSIX style. With a document format instead of
  ``folder`` (``format="html"``), every file in the folder is read as that format.

A document file's title is its own (HTML ``<title>``, PDF title, first heading), else
the file stem; its ``metadata`` holds ``path`` (as given), ``ext``, ``source`` (the id:
what citations show), ``format``, ``sha256`` of its bytes and, in a folder, ``root``
(the folder's absolute path), which `shortlist.store.sync` uses to re-read only what
changed. Problems that do not stop a file (a PDF page without text) go to ``on_note``.

Files ending in ``.gz`` are decompressed on the fly. Everything streams: one record
(or one file of a folder) is in memory at a time, plus the set of ids seen so far,
which is how duplicate ids are caught across all given sources.

Errors: a record that cannot be read raises `CorpusFormatError` naming the file, the
line (1-based) and the fix. With ``skip_bad=True`` such a record is passed to
``on_bad`` as a `BadRecord` and skipped instead. Problems with a whole source (missing
path, unknown extension, a CSV without its id column, a folder without text files) are
never skipped.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from shortlist.corpus.documents import EXTENSIONS as DOCUMENT_EXTENSIONS
from shortlist.corpus.documents import FORMATS as DOCUMENT_FORMATS
from shortlist.corpus.documents import ExtractionError, extract
from shortlist.errors import CorpusFormatError, InvalidInputError
from shortlist.types import Document
from shortlist.validate import InvalidTextError

FORMATS = ("jsonl", "beir", "csv", "tsv", "folder", *DOCUMENT_FORMATS)
"""Names accepted by `read_corpus(format=...)`."""

_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    **DOCUMENT_EXTENSIONS,
}
_UTF8_FIX = "re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record skipped under ``skip_bad=True``: where it is and what is wrong with it."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class CsvColumns:
    """Which CSV/TSV columns hold what.

    ``title=None`` uses a column named ``title`` when there is one; a column named here
    explicitly must exist. ``metadata`` names
    the columns copied into `Document.metadata`; ``None`` means every column that is not
    the id, text or title column. ``delimiter=None`` means ``,`` for CSV and tab for TSV.
    """

    id: str = "id"
    text: str = "text"
    title: str | None = None
    metadata: Sequence[str] | None = None
    delimiter: str | None = None

    def __post_init__(self) -> None:
        if self.metadata is not None:
            object.__setattr__(self, "metadata", tuple(self.metadata))


OnBad = Callable[[BadRecord], None]


class DocumentWarning(UserWarning):
    """A problem that did not stop a file (a PDF page without a text layer), warned
    when `read_corpus` is given no ``on_note``."""


class _BadRecordError(Exception):
    """A record-level problem; `_Sink` turns it into a skip or a `CorpusFormatError`."""

    def __init__(self, reason: str, line: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass
class _Sink:
    """Shared state of one `read_corpus` call: ids seen so far and the bad-record policy."""

    skip_bad: bool
    on_bad: OnBad | None
    on_note: OnBad | None = None
    seen: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    def note(self, path: str, note: str) -> None:
        if self.on_note is not None:
            self.on_note(BadRecord(path=path, line=None, reason=note))
        else:
            warnings.warn(f"{path}: {note}", DocumentWarning, stacklevel=4)

    def bad(self, path: str, err: _BadRecordError) -> None:
        if not self.skip_bad:
            raise CorpusFormatError(err.reason, path=path, line=err.line) from None
        if self.on_bad is not None:
            self.on_bad(BadRecord(path=path, line=err.line, reason=err.reason))

    def claim(self, doc_id: str, path: str, line: int | None) -> None:
        first = self.seen.get(doc_id)
        if first is not None:
            first_where = f"{first[0]}:{first[1]}" if first[1] is not None else first[0]
            raise _BadRecordError(
                f"duplicate id {doc_id!r} (first seen at {first_where}); "
                "ids must be unique across all sources: rename or remove one of them",
                line,
            )
        self.seen[doc_id] = (path, line)


def read_corpus(
    paths: Sequence[str | Path] | str | Path,
    *,
    format: str | None = None,
    csv_columns: CsvColumns | None = None,
    skip_bad: bool = False,
    on_bad: OnBad | None = None,
    on_note: OnBad | None = None,
) -> Iterator[Document]:
    """Stream the documents of one or more corpus sources, in file order.

    ``format=None`` picks the reader per path: ``.jsonl``/``.ndjson`` is BEIR when its
    first record has an ``_id`` key and plain JSONL otherwise; ``.csv``; ``.tsv``; a
    document extension (``.html``, ``.pdf``, ``.docx``, ``.md``, ``.txt``, ...); a
    directory is a folder of documents; a trailing ``.gz`` is looked through. An
    explicit ``format`` (one of `FORMATS`) applies to every path; a document format
    given for a folder applies to every file in it.

    Paths and formats are checked when this is called (missing path, unknown extension
    or format raise `CorpusFormatError`/`InvalidInputError` at once); records are read
    lazily as the iterator is consumed. Ids are unique across all ``paths``.

    With ``skip_bad=True`` each bad record is reported to ``on_bad`` (if given) and
    skipped; counting and summarising them is the caller's job.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    if not paths:
        raise InvalidInputError("no corpus path given; pass at least one file or folder")
    if format is not None and format not in FORMATS:
        raise InvalidInputError(
            f"unknown corpus format {format!r}; choose one of: {', '.join(FORMATS)}"
        )
    for p in paths:
        if not Path(p).exists():
            raise CorpusFormatError("no such file or directory; check the path", path=str(p))
    plan = [(Path(p), format or _detect_format(Path(p))) for p in paths]
    for path, fmt in plan:
        if fmt == "folder" and not path.is_dir():
            raise CorpusFormatError(
                "format 'folder' needs a directory; pass a folder of documents",
                path=str(path),
            )
        if fmt not in ("folder", *DOCUMENT_FORMATS) and path.is_dir():
            raise CorpusFormatError(
                f"is a directory, but format {fmt!r} reads a file; use format='folder'",
                path=str(path),
            )
    sink = _Sink(skip_bad=skip_bad, on_bad=on_bad, on_note=on_note)
    return _read_all(plan, sink, csv_columns or CsvColumns())


def _read_all(
    plan: list[tuple[Path, str]], sink: _Sink, columns: CsvColumns
) -> Iterator[Document]:
    for path, fmt in plan:
        if fmt in ("jsonl", "beir"):
            yield from _read_jsonl(path, sink, beir=fmt == "beir")
        elif fmt in ("csv", "tsv"):
            yield from _read_csv(path, sink, columns, tsv=fmt == "tsv")
        elif path.is_dir():
            yield from _read_folder(path, sink, None if fmt == "folder" else fmt)
        else:
            yield from _read_documents([(path.as_posix(), path)], sink, fmt, root=None)


def _detect_format(path: Path) -> str:
    if path.is_dir():
        return "folder"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _EXTENSIONS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        known = ", ".join(sorted(_EXTENSIONS))
        raise CorpusFormatError(
            f"cannot tell the corpus format from the file name; use a file ending in {known} "
            "(optionally .gz) or a folder of .txt/.md files, or set the format explicitly "
            f"(one of: {', '.join(FORMATS)})",
            path=str(path),
        )
    if fmt == "jsonl" and _first_record_is_beir(path):
        return "beir"
    return fmt


def _open_binary(path: Path) -> IO[bytes]:
    try:
        if path.suffix.lower() == ".gz":
            return cast(IO[bytes], gzip.open(path, "rb"))
        return path.open("rb")
    except FileNotFoundError:
        raise CorpusFormatError("no such file; check the path", path=str(path)) from None
    except OSError as exc:
        raise CorpusFormatError(f"cannot open: {exc.strerror}", path=str(path)) from None


def _first_record_is_beir(path: Path) -> bool:
    try:
        with _open_binary(path) as fh:
            for raw in fh:
                if raw.strip():
                    record = json.loads(raw.decode("utf-8-sig"))
                    return isinstance(record, dict) and "_id" in record
    except (UnicodeDecodeError, json.JSONDecodeError, OSError, EOFError):
        pass  # the jsonl reader reports the problem with its line number
    return False


def _decoded_lines(fh: IO[bytes], path: str) -> Iterator[tuple[int, str, str | None]]:
    """(1-based line number, text, problem) triples. An undecodable line is decoded with
    replacement characters and comes with the reason it is bad. A file that cannot be
    read on (a corrupt or truncated .gz) raises `CorpusFormatError`."""
    lines = iter(fh)
    number = 0
    while True:
        try:
            raw = next(lines)
        except StopIteration:
            return
        except (OSError, EOFError) as exc:
            raise CorpusFormatError(
                f"cannot read the file past this point ({exc or type(exc).__name__}); "
                "check that it is complete and not corrupt",
                path=path,
                line=number + 1,
            ) from None
        number += 1
        try:
            yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8"), None
        except UnicodeDecodeError as exc:
            reason = f"invalid UTF-8 (byte {exc.start} of the line); {_UTF8_FIX}"
            yield number, raw.decode("utf-8", errors="replace"), reason


# ---------------------------------------------------------------------------- JSONL / BEIR


def _read_jsonl(path: Path, sink: _Sink, *, beir: bool) -> Iterator[Document]:
    name = str(path)
    with _open_binary(path) as fh:
        for number, text, problem in _decoded_lines(fh, name):
            if problem is not None:
                sink.bad(name, _BadRecordError(problem, number))
                continue
            if not text.strip():
                continue
            try:
                doc = _parse_json_record(text, number, beir=beir)
                sink.claim(doc.id, name, number)
            except _BadRecordError as err:
                sink.bad(name, err)
                continue
            yield doc


def _parse_json_record(text: str, line: int, *, beir: bool) -> Document:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _BadRecordError(
            f"invalid JSON ({exc.msg} at character {exc.pos + 1}); "
            "each line must be one JSON object",
            line,
        ) from None
    if not isinstance(record, dict):
        raise _BadRecordError(
            f"expected a JSON object, got {type(record).__name__}; "
            "each line must be one object like {\"id\": ..., \"text\": ...}",
            line,
        )
    id_key = "_id" if beir else "id"
    if id_key not in record:
        raise _BadRecordError(
            f"missing {id_key!r} field (keys found: {_keys(record)}); "
            f"add {id_key!r} to every record",
            line,
        )
    doc_id = _as_id(record[id_key], id_key, line)
    title = _optional_str(record, "title", line)
    body = record.get("text")
    if body is not None and not isinstance(body, str):
        raise _BadRecordError(
            f"'text' must be a string, got {type(body).__name__}", line
        )
    if "text" not in record:
        raise _BadRecordError(
            f"missing 'text' field (keys found: {_keys(record)}); add 'text' to every record",
            line,
        )
    body = body or ""
    if not body.strip() and beir and title.strip():
        body, title = title, ""
    if not body.strip():
        raise _BadRecordError(
            f"document {doc_id!r} has empty text; fill it in or remove the record "
            "(or skip such records with skip_bad)",
            line,
        )
    metadata = record.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise _BadRecordError(
            f"'metadata' must be a JSON object, got {type(metadata).__name__}; "
            "wrap the values in an object like {\"metadata\": {\"source\": ...}}",
            line,
        )
    return _document(line, id=doc_id, text=body, title=title, metadata=metadata)


def _document(line: int | None, **fields: Any) -> Document:
    """A `Document`; text it rejects (`InvalidTextError`) is a bad record, skippable."""
    try:
        return Document(**fields)
    except InvalidTextError as exc:
        raise _BadRecordError(str(exc), line) from None


def _keys(record: Mapping[str, Any]) -> str:
    return ", ".join(repr(k) for k in record) or "none"


def _as_id(value: Any, key: str, line: int | None) -> str:
    # Integer ids are common in exported data; they are read as their decimal string.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _BadRecordError(
            f"{key!r} must be a string or an integer, got {type(value).__name__}", line
        )
    doc_id = str(value)
    if not doc_id.strip():
        raise _BadRecordError(f"{key!r} is empty; give every record a non-empty id", line)
    return doc_id


def _optional_str(record: Mapping[str, Any], key: str, line: int) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _BadRecordError(f"{key!r} must be a string, got {type(value).__name__}", line)
    return value


# ---------------------------------------------------------------------------- CSV / TSV


def _read_csv(path: Path, sink: _Sink, columns: CsvColumns, *, tsv: bool) -> Iterator[Document]:
    name = str(path)
    delimiter = columns.delimiter or ("\t" if tsv else ",")
    bad_lines: set[int] = set()

    def lines(fh: IO[bytes]) -> Iterator[str]:
        for number, text, problem in _decoded_lines(fh, name):
            if problem is not None:
                bad_lines.add(number)
            yield text

    with _open_binary(path) as fh:
        reader = csv.reader(lines(fh), delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise CorpusFormatError(
                "empty file; a CSV corpus needs a header row and at least one row",
                path=name,
            ) from None
        except csv.Error as exc:
            raise CorpusFormatError(f"unreadable header: {exc}", path=name, line=1) from None
        if bad_lines:
            raise CorpusFormatError(f"invalid UTF-8 in the header; {_UTF8_FIX}", path=name, line=1)
        layout = _csv_layout(header, columns, name, reader.line_num)
        prev_end = reader.line_num
        while True:
            start = prev_end + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                prev_end = reader.line_num
                sink.bad(name, _BadRecordError(_csv_error_reason(exc), start))
                continue
            prev_end = reader.line_num
            try:
                undecodable = [n for n in bad_lines if start <= n <= prev_end]
                if undecodable:
                    raise _BadRecordError(f"invalid UTF-8; {_UTF8_FIX}", min(undecodable))
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                doc = _csv_document(row, header, layout, start)
                sink.claim(doc.id, name, start)
            except _BadRecordError as err:
                sink.bad(name, err)
                continue
            yield doc


def _csv_error_reason(exc: csv.Error) -> str:
    message = str(exc)
    if "field larger than field limit" in message:
        return (
            f"{message}: the CSV reader caps a field at {csv.field_size_limit()} characters; "
            "store very long documents as JSONL or text files instead"
        )
    return f"malformed CSV row ({message}); check quoting"


@dataclass(frozen=True, slots=True)
class _CsvLayout:
    id: int
    text: int
    title: int | None
    metadata: tuple[tuple[str, int], ...]


def _csv_layout(header: list[str], columns: CsvColumns, path: str, line: int) -> _CsvLayout:
    header = [h.strip() for h in header]
    found = ", ".join(repr(h) for h in header) or "none"

    def index_of(column: str, role: str, option: str) -> int:
        if column not in header:
            raise CorpusFormatError(
                f"no {role} column {column!r} in the header (columns found: {found}); "
                f"name the right one with CsvColumns({option}=...)",
                path=path,
                line=line,
            )
        return header.index(column)

    id_col = index_of(columns.id, "id", "id")
    text_col = index_of(columns.text, "text", "text")
    if columns.title is not None:
        title_col: int | None = index_of(columns.title, "title", "title")
    else:
        title_col = header.index("title") if "title" in header else None
    used = {id_col, text_col} | ({title_col} if title_col is not None else set())
    if columns.metadata is None:
        meta = tuple((h, i) for i, h in enumerate(header) if i not in used)
    else:
        meta = tuple((m, index_of(m, "metadata", "metadata")) for m in columns.metadata)
    return _CsvLayout(id=id_col, text=text_col, title=title_col, metadata=meta)


def _csv_document(row: list[str], header: list[str], layout: _CsvLayout, line: int) -> Document:
    if len(row) != len(header):
        raise _BadRecordError(
            f"row has {len(row)} fields but the header has {len(header)}; "
            "quote fields that contain the delimiter or a line break",
            line,
        )
    doc_id = _as_id(row[layout.id].strip(), "id", line)
    text = row[layout.text]
    if not text.strip():
        raise _BadRecordError(
            f"document {doc_id!r} has empty text; fill it in or remove the row "
            "(or skip such rows with skip_bad)",
            line,
        )
    title = row[layout.title] if layout.title is not None else ""
    metadata = {name: row[i] for name, i in layout.metadata}
    return _document(line, id=doc_id, text=text, title=title, metadata=metadata)


# ---------------------------------------------------------------------------- folders


def folder_files(root: Path, format: str | None = None) -> list[tuple[str, Path]]:
    """(id, path) of the documents of a folder, sorted by id: every file whose extension
    is a document format (with ``format``, every file), hidden files and folders
    skipped. The id is the path relative to ``root``, POSIX style."""
    found = []
    for file in root.rglob("*"):
        rel_parts = file.relative_to(root).parts
        if any(part.startswith(".") for part in rel_parts):
            continue
        if (format is not None or file.suffix.lower() in DOCUMENT_EXTENSIONS) and file.is_file():
            found.append((file.relative_to(root).as_posix(), file))
    return sorted(found)


def read_folder_files(
    root: str | Path,
    ids: Sequence[str],
    *,
    format: str | None = None,
    skip_bad: bool = False,
    on_bad: OnBad | None = None,
    on_note: OnBad | None = None,
) -> Iterator[Document]:
    """The documents of some files of a folder, by id (`folder_files`), as `read_corpus`
    reads them from the whole folder; for re-reading only what changed."""
    root = Path(root)
    sink = _Sink(skip_bad=skip_bad, on_bad=on_bad, on_note=on_note)
    return _read_documents([(rel, root / rel) for rel in ids], sink, format, root=root)


def _read_folder(root: Path, sink: _Sink, format: str | None) -> Iterator[Document]:
    files = folder_files(root, format)
    if not files:
        known = ", ".join(sorted(DOCUMENT_EXTENSIONS))
        raise CorpusFormatError(
            f"no documents found in this folder (files ending in {known}; searched "
            "recursively, hidden files skipped); point at a folder of documents or at a "
            ".jsonl/.csv file",
            path=str(root),
        )
    yield from _read_documents(files, sink, format, root=root)


def _read_documents(
    files: list[tuple[str, Path]], sink: _Sink, format: str | None, *, root: Path | None
) -> Iterator[Document]:
    for doc_id, file in files:
        try:
            doc = _file_document(file, doc_id, format, root, sink)
            sink.claim(doc.id, str(file), None)
        except _BadRecordError as err:
            sink.bad(str(file), err)
            continue
        yield doc


def file_sha256(file: Path) -> str:
    """The hex SHA-256 of a file's bytes, as the ``sha256`` metadata records it."""
    return hashlib.sha256(file.read_bytes()).hexdigest()


def _file_document(
    file: Path, doc_id: str, format: str | None, root: Path | None, sink: _Sink
) -> Document:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise _BadRecordError(f"cannot read: {exc.strerror}", None) from None
    suffixes = [x.lower() for x in file.suffixes]
    if suffixes and suffixes[-1] == ".gz":  # a single file given as NAME.html.gz
        suffixes.pop()
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise _BadRecordError(f"not a readable .gz file ({exc})", None) from None
    ext = suffixes[-1] if suffixes else ""
    fmt = format or DOCUMENT_EXTENSIONS[ext]
    try:
        extracted = extract(raw, fmt)
    except ExtractionError as exc:
        raise _BadRecordError(exc.reason, exc.line) from None
    for note in extracted.notes:
        sink.note(str(file), note)
    metadata: dict[str, Any] = {
        "path": str(file),
        "ext": ext,
        "source": doc_id,
        "format": fmt,
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    if root is not None:
        metadata["root"] = str(root.resolve())
    return _document(
        None,
        id=doc_id,
        text=extracted.text,
        title=extracted.title or file.stem,
        metadata=metadata,
        regions=extracted.regions,
    )
