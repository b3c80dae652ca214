"""debian-faq: a reranker training collection from the FAQs and manuals in Debian doc packages.

Real pairs. Every question of the FAQs that Debian 12 packages ship (perlfaq1-9 and the
other POD FAQs of perl, the Z-Shell FAQ, gitfaq(7), the SQLite, Valgrind, Vim, CVS, GNU
screen, fetchmail, Apache mod_ssl, GNU nano, lsof, zlib, XZ Utils and flex FAQs; see
`FAQ_SOURCES`) is a query; its answer, cut into passages of at most `MAX_WORDS` words on
paragraph and sentence boundaries, goes into the corpus, and the answer's first passage is
the query's one relevant passage (grade 1). The answer's later passages stay in the corpus
unjudged (distractors).

Pseudo pairs. Section headings of manuals that are not FAQs (perl's pod pages, git's
manual pages, the zsh manual, the SQLite and Valgrind HTML documentation; see
`SECTION_SOURCES`) become queries of the form ``"<page>: <heading>"``, judged against the
first passage of the section. A DESCRIPTION section is queried by the page's NAME line
(``"git rebase: Reapply commits on top of another base tip"``); headings that say nothing
on their own (`GENERIC_HEADINGS`: NAME, SYNOPSIS, OPTIONS, SEE ALSO, ...) and sections
whose first passage has fewer than `MIN_PSEUDO_WORDS` words make no query, but their
passages stay in the corpus. Every query records ``source`` and ``kind`` (``faq`` or
``pseudo``) in its metadata.

Deduplication and splits. Questions are deduplicated case-, punctuation- and
whitespace-insensitively across the whole set (real FAQ pairs win over pseudo pairs; the
first in source order wins within a kind), and passages with identical normalised text are
kept once. DEV is a deterministic ~10% of the REAL pairs of each FAQ source (the queries
with the smallest ``sha256(SEED:query-id)``, at least one per source); TRAIN is the other
real pairs plus every pseudo pair, minus any train query whose relevant passage is a dev
query's relevant passage or whose words nearly repeat a dev question (token Jaccard >=
`NEAR_DUPLICATE`). No test split is written.

Held out. The packages in `shortlist_datasets.debian_docs.EXCLUDED_PACKAGES`
(Debian's FAQ and manuals, the Python documentation) are never read: each source path is
checked against their documentation folders and its ``dpkg-query -S`` owner before reading.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shortlist.errors import InvalidInputError
from shortlist.types import Document, Qrels
from shortlist_datasets import faq_parsers
from shortlist_datasets.base import Collection
from shortlist_datasets.debian_docs import (
    EXCLUDED_PACKAGES,
    check_allowed,
    installed_version,
    owners,
    sha256,
)
from shortlist_datasets.markup import (
    Section,
    adoc_sections,
    html_sections,
    parse_html,
    pod_sections,
    squash,
    strip_numbering,
    text_of,
)

SUMMARY = (
    "reranker training set: real FAQ pairs + heading pseudo-pairs from Debian doc packages "
    "(train/dev splits)"
)

PACKAGES: tuple[str, ...] = (
    "perl-doc",
    "zsh-doc",
    "git-doc",
    "sqlite3-doc",
    "valgrind",
    "vim-doc",
    "cvs",
    "screen",
    "fetchmail",
    "apache2-doc",
    "nano",
    "lsof",
    "zlib1g-dev",
    "xz-utils",
    "flex-doc",
)
APT_COMMAND = "apt-get install -y " + " ".join(PACKAGES)

SEED = "debian-faq-1"
DEV_FRACTION = 0.10
MAX_WORDS = 200
MIN_PSEUDO_WORDS = 20
NEAR_DUPLICATE = 0.8
QUERY_WORDS = (2, 40)

GENERIC_HEADINGS = frozenset(
    {
        "name", "synopsis", "description", "options", "see also", "examples", "example",
        "author", "authors", "bugs", "copyright", "license", "licence", "git", "files",
        "environment", "configuration", "documentation", "notes", "discussion", "history",
        "return value", "exit status", "diagnostics", "acknowledgements", "contents",
        "table of contents", "introduction", "overview", "summary", "credits", "todo",
        "availability", "references", "version", "contact", "changes", "status",
        "footnotes", "abstract", "limitations", "caveats", "conclusion", "index",
        "copyright and license", "author and copyright", "authors and copyright",
        "license and copyright", "copyright and licence",
    }
)  # fmt: skip


# --------------------------------------------------------------------------- sources


def _read(path: Path) -> str:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode("utf-8", errors="replace")


def _perl_pod_dir() -> Path:
    found = sorted(Path("/usr/share/perl").glob("5.*/pod/perlfaq1.pod"))
    return found[-1].parent if found else Path("/usr/share/perl/5/pod")


def _perl_lib_dir() -> Path:
    return _perl_pod_dir().parent


@dataclass(frozen=True)
class FaqSource:
    """A FAQ document format: its name, how to find its files, and its parser."""

    name: str
    title: str
    find: Callable[[], list[Path]]
    parse: Callable[[str], list[faq_parsers.QA]]
    per_page: bool = False  # one question per file: the file name identifies the entry


@dataclass(frozen=True)
class SectionSource:
    """A manual to cut into heading->section pseudo pairs."""

    name: str
    find: Callable[[], list[Path]]
    read: Callable[[Path, str], tuple[str, str, list[Section]]]  # -> page, NAME line, sections


def _perl_faqs() -> list[Path]:
    pod = _perl_pod_dir()
    lib = _perl_lib_dir()
    return [
        *sorted(pod.glob("perlfaq[1-9].pod")),
        pod / "perlunifaq.pod",
        lib / "IO/Compress/FAQ.pod",
        lib / "Net/libnetFAQ.pod",
    ]


def _one(path: str) -> Callable[[], list[Path]]:
    return lambda: [Path(path)]


def _flex_faq_pages(root: Path) -> list[Path]:
    """The question pages the flex manual's FAQ node links to, in menu order; the
    ``unnamed-faq-*`` pages (mail archives without a question) are left out."""
    index = root / "FAQ.html"
    if not index.is_file():
        return [index]
    pages: list[Path] = []
    for node in parse_html(_read(index)).iter():
        href = node.attrs.get("href", "") if node.tag == "a" else ""
        if "#" in href or "/" in href or not href.endswith(".html"):
            continue
        page = root / href
        if page not in pages and page.name != "FAQ.html" and page.is_file():
            if not page.name.startswith("unnamed_002dfaq"):
                pages.append(page)
    return [p for p in pages if p.name not in _FLEX_NOT_FAQ]


_FLEX_NOT_FAQ = frozenset({"Appendices.html", "Bibliography.html", "index.html", "Indices.html"})

_LSOF_QUESTION = re.compile(r"^(\d+(?:\.\d+)+)\s+(\S.*)$")  # "3.2.2   Why does gcc ..."
_ZLIB_QUESTION = re.compile(r"^ ?(\d+)\.\s+(\S.*)$")  # " 1. Is zlib Y2K-compliant?"

FAQ_SOURCES: tuple[FaqSource, ...] = (
    FaqSource("perlfaq", "Perl FAQ", _perl_faqs, faq_parsers.pod_faq),
    FaqSource(
        "zshfaq", "Z-Shell FAQ", _one("/usr/share/doc/zsh-common/FAQ.gz"), faq_parsers.zsh_faq
    ),
    FaqSource("gitfaq", "gitfaq(7)", _one("/usr/share/doc/git-doc/gitfaq.txt"), faq_parsers.gitfaq),
    FaqSource(
        "sqlitefaq", "SQLite FAQ", _one("/usr/share/doc/sqlite3/faq.html"), faq_parsers.sqlite_faq
    ),
    FaqSource(
        "valgrindfaq",
        "Valgrind FAQ",
        _one("/usr/share/doc/valgrind/html/faq.html"),
        faq_parsers.valgrind_faq,
    ),
    FaqSource(
        "vimfaq", "Vim FAQ", _one("/usr/share/doc/vim/FAQ.gz"), faq_parsers.numbered_text_faq
    ),
    FaqSource("cvsfaq", "CVS FAQ", _one("/usr/share/doc/cvs/FAQ.gz"), faq_parsers.cvs_faq),
    FaqSource(
        "screenfaq", "GNU screen FAQ", _one("/usr/share/doc/screen/FAQ.gz"), faq_parsers.qa_text_faq
    ),
    FaqSource(
        "fetchmailfaq",
        "fetchmail FAQ",
        _one("/usr/share/doc/fetchmail/fetchmail-FAQ.html"),
        lambda page: faq_parsers.html_heading_faq(page, 2, r"[A-Z]+\d+"),
    ),
    FaqSource(
        "apachesslfaq",
        "Apache HTTP Server mod_ssl FAQ",
        _one("/usr/share/doc/apache2-doc/manual/en/ssl/ssl_faq.html"),
        lambda page: faq_parsers.html_heading_faq(page, 3),
    ),
    FaqSource(
        "nanofaq",
        "GNU nano FAQ",
        _one("/usr/share/doc/nano/faq.html"),
        lambda page: faq_parsers.html_heading_faq(page, 3, r"\d+\.\d+"),
    ),
    FaqSource(
        "lsoffaq",
        "lsof FAQ",
        _one("/usr/share/doc/lsof/00FAQ.gz"),
        lambda text: faq_parsers.numbered_text_faq(text, _LSOF_QUESTION),
    ),
    FaqSource(
        "zlibfaq",
        "zlib FAQ",
        _one("/usr/share/doc/zlib1g-dev/FAQ.gz"),
        lambda text: faq_parsers.numbered_text_faq(text, _ZLIB_QUESTION),
    ),
    FaqSource(
        "flexfaq",
        "flex manual FAQ",
        lambda: _flex_faq_pages(Path("/usr/share/doc/flex-doc/html")),
        lambda page: [
            qa for qa in faq_parsers.html_heading_faq(page, 3, ".*") if " " in qa.question
        ],
        per_page=True,
    ),
    FaqSource(
        "xzfaq", "XZ Utils FAQ", _one("/usr/share/doc/xz-utils/faq.txt.gz"), faq_parsers.qa_text_faq
    ),
)

# perl pod pages left out of the pseudo pairs: FAQs (used as real pairs), release notes,
# tables of contents, licences and API listings whose headings are not topics.
_PERL_SKIP = re.compile(
    r"^(perl\d*delta|perlfaq\d?|perlunifaq|perltoc|perlartistic|perlgpl|perlhist|perl"
    r"|perlapi|perlintern|perldiag|perluniprops|perlmodlib|perlcn|perljp|perlko|perltw)$"
)


def _perl_pods() -> list[Path]:
    return [p for p in sorted(_perl_pod_dir().glob("*.pod")) if not _PERL_SKIP.match(p.stem)]


def _git_pages() -> list[Path]:
    root = Path("/usr/share/doc/git-doc")
    pages = [p for p in sorted(root.glob("git*.txt")) if p.name != "gitfaq.txt"]
    return pages + [p for p in [root / "user-manual.txt"] if p.exists()]


def _zsh_pages() -> list[Path]:
    root = Path("/usr/share/doc/zsh-common/html")
    return [
        p
        for p in sorted(root.glob("*.html"))
        if not p.name.startswith(("FAQ", "The-Zsh-FAQ")) and not p.stem.endswith("-Index")
    ]


# Indexes, site maps, change logs and the one-page copy of the C API (c3ref/ has it page
# by page): lists of links and version notes, not topics.
_SQLITE_SKIP = re.compile(
    r"^(faq|capi3ref|changes|chronology|doc_\w+_crossref|doclist|docs|index|keyword_index"
    r"|news|oldnews|requirements|sitemap|syntaxdiagrams)\.html$"
)


def _sqlite_pages() -> list[Path]:
    root = Path("/usr/share/doc/sqlite3")
    pages = sorted(root.glob("*.html")) + sorted(root.glob("c3ref/*.html"))
    return [p for p in pages if not _SQLITE_SKIP.match(p.name)]


def _valgrind_pages() -> list[Path]:
    root = Path("/usr/share/doc/valgrind/html")
    return [
        p
        for p in sorted(root.glob("*.html"))
        if p.name.lower() != "faq.html" and not p.name.startswith(("dist.", "license"))
    ]


def _name_line(sections: list[Section]) -> str:
    for section in sections:
        if section.heading.strip().upper() == "NAME" and section.paragraphs:
            return section.paragraphs[0]
    return ""


# Reference pages whose entries are =item lists: each function or variable is a section.
_POD_ITEM_PAGES = frozenset({"perlfunc", "perlvar"})


def _read_pod(path: Path, text: str) -> tuple[str, str, list[Section]]:
    sections = pod_sections(text, items=path.stem in _POD_ITEM_PAGES)
    return path.stem, _name_line(sections), sections


def _read_adoc(path: Path, text: str) -> tuple[str, str, list[Section]]:
    sections = adoc_sections(text, items=True)
    page = path.stem.replace("-", " ", 1) if path.stem.startswith("git-") else path.stem
    return page, _name_line(sections), [s for s in sections if s.level >= 1]


def _read_html(path: Path, text: str) -> tuple[str, str, list[Section]]:
    root = parse_html(text)
    title_node = next((n for n in root.iter() if n.tag == "title"), None)
    title = text_of(title_node) if title_node else ""
    if path.parent.name == "c3ref":
        # Every C API page has the same <title>; its subject is its first heading.
        title = "SQLite C interface"
    return strip_numbering(title) or path.stem, "", html_sections(root)


SECTION_SOURCES: tuple[SectionSource, ...] = (
    SectionSource("perlpod", _perl_pods, _read_pod),
    SectionSource("gitman", _git_pages, _read_adoc),
    SectionSource("zshman", _zsh_pages, _read_html),
    SectionSource("sqlitedoc", _sqlite_pages, _read_html),
    SectionSource("valgrinddoc", _valgrind_pages, _read_html),
)


# --------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class Entry:
    """One query (or none, when `query` is empty) and the passages it brings to the corpus.

    `passages[0]` is the query's relevant passage; the rest are unjudged distractors.
    """

    key: str
    source: str
    kind: str  # "faq" or "pseudo"
    query: str
    title: str
    passages: tuple[str, ...]
    path: str = ""


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'`])")


def chunk(paragraphs: Sequence[str], max_words: int = MAX_WORDS) -> list[str]:
    """Pack paragraphs into passages of at most `max_words` words, in order.

    A paragraph longer than `max_words` is split on sentence boundaries, and a sentence
    longer than that on word boundaries. A last passage under a quarter of `max_words` is
    merged into the one before it (so a passage may reach 1.25 x `max_words`).
    """
    pieces: list[list[str]] = []
    for paragraph in paragraphs:
        words = paragraph.split()
        if not words:
            continue
        if len(words) <= max_words:
            pieces.append(words)
            continue
        for sentence in _SENTENCE.split(paragraph):
            sentence_words = sentence.split()
            for start in range(0, len(sentence_words), max_words):
                pieces.append(sentence_words[start : start + max_words])
    passages: list[list[str]] = []
    for words in pieces:
        if passages and len(passages[-1]) + len(words) <= max_words:
            passages[-1].extend(words)
        else:
            passages.append(list(words))
    if len(passages) > 1 and len(passages[-1]) < max_words // 4:
        passages[-2].extend(passages.pop())
    return [" ".join(p) for p in passages]


def faq_entries(source: FaqSource, path: Path, text: str) -> list[Entry]:
    """One `Entry` per question of a FAQ file."""
    doc = path.name.split(".")[0] if source.name == "perlfaq" else source.name
    if path.parent.name in ("Compress", "Net"):
        doc = f"{path.parent.name}-{doc}"
    if source.per_page:
        doc = path.name.split(".")[0]
    entries = []
    for qa in source.parse(text):
        entries.append(
            Entry(
                key=f"{source.name}/{doc}/{qa.anchor}",
                source=source.name,
                kind="faq",
                query=squash(qa.question),
                title=source.title if doc == source.name or source.per_page else (
                    f"{source.title} ({doc})"
                ),
                passages=tuple(chunk(qa.answer)),
                path=str(path),
            )
        )
    return entries


def pseudo_query(page: str, name_line: str, heading: str) -> str:
    """The query for a section: ``"<page>: <heading>"``, or `page` alone when the page
    name starts with the heading's words; a DESCRIPTION section gets the NAME line's
    description; generic headings and headings without a word give ``""`` (no query)."""
    heading = squash(heading)
    if heading.lower() == "description" and name_line:
        described = re.split(r"\s+-+\s+", name_line, maxsplit=1)
        return f"{page}: {described[-1]}" if len(described) == 2 else ""
    if not heading or heading.lower().rstrip(":") in GENERIC_HEADINGS:
        return ""
    heading_words, page_words = normalise(heading).split(), normalise(page).split()
    if not heading_words:
        return ""  # "--", "-": nothing to ask for
    if heading_words == page_words[: len(heading_words)]:
        return page  # "Expansion" on the page "Expansion (zsh)"
    return f"{page}: {heading}"


def section_entries(source: SectionSource, path: Path, text: str) -> list[Entry]:
    """One `Entry` per section of a manual page (sections with no text give none)."""
    page, name_line, sections = source.read(path, text)
    entries = []
    for number, section in enumerate(sections):
        passages = tuple(chunk(section.paragraphs))
        if not passages:
            continue
        query = pseudo_query(page, name_line, section.heading)
        if len(passages[0].split()) < MIN_PSEUDO_WORDS:
            query = ""
        entries.append(
            Entry(
                key=f"{source.name}/{path.stem}/{number}",
                source=source.name,
                kind="pseudo",
                query=query,
                title=page,
                passages=passages,
                path=str(path),
            )
        )
    return entries


# --------------------------------------------------------------------------- assembly


def normalise(text: str) -> str:
    """Lowercase, punctuation and whitespace removed: the key for duplicate questions."""
    return " ".join(re.findall(r"\w+", text.casefold()))


def _rank(key: str) -> str:
    return hashlib.sha256(f"{SEED}:{key}".encode()).hexdigest()


def _tokens(text: str) -> frozenset[str]:
    return frozenset(normalise(text).split())


@dataclass(frozen=True)
class Assembled:
    """The corpus, queries (with metadata) and the train/dev judgements, plus what was dropped."""

    corpus: list[Document]
    queries: dict[str, str]
    query_metadata: dict[str, dict[str, str]]
    splits: dict[str, Qrels]
    dropped: dict[str, int] = field(default_factory=dict)


def assemble(entries: Sequence[Entry], dev_fraction: float = DEV_FRACTION) -> Assembled:
    """Deduplicate, split and lay out `entries` (see the module docstring for the rules).

    Ids come from the entries' keys, so they are stable across builds; the order of
    `entries` matters only for which of two duplicates is kept (the first, FAQ entries
    before pseudo entries). The dev split depends only on the query ids.
    """
    corpus: list[Document] = []
    canonical: dict[str, str] = {}  # normalised passage text -> doc id
    positives: dict[str, str] = {}  # query id -> doc id
    queries: dict[str, str] = {}
    meta: dict[str, dict[str, str]] = {}
    seen_questions: set[str] = set()
    dropped: Counter[str] = Counter()
    ordered = [e for e in entries if e.kind == "faq"] + [e for e in entries if e.kind != "faq"]
    used_keys: set[str] = set()
    for entry in ordered:
        if entry.key in used_keys:
            raise InvalidInputError(f"duplicate entry key {entry.key!r}")
        used_keys.add(entry.key)
        doc_ids = []
        for number, text in enumerate(entry.passages):
            key = normalise(text)
            if key in canonical:
                doc_ids.append(canonical[key])
                dropped["duplicate passages"] += 1
                continue
            doc_id = f"{entry.key}#{number}"
            canonical[key] = doc_id
            doc_ids.append(doc_id)
            corpus.append(
                Document(
                    id=doc_id,
                    text=text,
                    title=entry.title,
                    metadata={"source": entry.source, "kind": entry.kind},
                )
            )
        if not entry.query or not doc_ids:
            continue
        n_words = len(entry.query.split())
        if not QUERY_WORDS[0] <= n_words <= QUERY_WORDS[1]:
            dropped[f"{entry.kind} queries outside {QUERY_WORDS} words"] += 1
            continue
        question = normalise(entry.query)
        if question in seen_questions:
            dropped[f"duplicate {entry.kind} questions"] += 1
            continue
        seen_questions.add(question)
        queries[entry.key] = entry.query
        positives[entry.key] = doc_ids[0]
        meta[entry.key] = {"source": entry.source, "kind": entry.kind}

    by_source: dict[str, list[str]] = defaultdict(list)
    for qid, info in meta.items():
        if info["kind"] == "faq":
            by_source[info["source"]].append(qid)
    dev: set[str] = set()
    for qids in by_source.values():
        count = max(1, round(len(qids) * dev_fraction))
        dev.update(sorted(qids, key=_rank)[:count])
    dev_positives = {positives[q] for q in dev}
    dev_tokens = [_tokens(queries[q]) for q in sorted(dev)]
    train: set[str] = set()
    for qid in queries:
        if qid in dev:
            continue
        if positives[qid] in dev_positives:
            dropped["train queries sharing a dev positive"] += 1
            continue
        words = _tokens(queries[qid])
        if any(len(words & d) / max(1, len(words | d)) >= NEAR_DUPLICATE for d in dev_tokens):
            dropped["train queries near-duplicating a dev question"] += 1
            continue
        train.add(qid)
    kept = dev | train
    splits = {
        "train": {q: {positives[q]: 1} for q in sorted(train)},
        "dev": {q: {positives[q]: 1} for q in sorted(dev)},
    }
    return Assembled(
        corpus=corpus,
        queries={q: t for q, t in queries.items() if q in kept},
        query_metadata={q: m for q, m in meta.items() if q in kept},
        splits=splits,
        dropped=dict(sorted(dropped.items())),
    )


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class SourceFile:
    """A file read for the collection, with its provenance."""

    path: Path
    package: str
    version: str
    sha256: str
    source: str
    entries: int


def _require_packages() -> dict[str, str]:
    versions = {name: installed_version(name) for name in PACKAGES}
    missing = sorted(name for name, version in versions.items() if version is None)
    if missing:
        raise InvalidInputError(
            f"the debian-faq dataset needs the Debian packages {', '.join(missing)}; "
            f"install them with: {APT_COMMAND}"
        )
    return {name: version for name, version in versions.items() if version is not None}


def _owned(paths: list[Path]) -> dict[Path, str]:
    found = owners(paths)
    for path in paths:
        owner = found.get(path)
        if owner is None:
            raise InvalidInputError(
                f"{path} is not installed by any Debian package; reinstall with: {APT_COMMAND}"
            )
        check_allowed(path, owner)
    return found


def make_collection() -> Collection:
    """Build the collection from the installed Debian packages (see the module docstring).

    Raises `InvalidInputError` naming the apt-get command when a package is missing.
    """
    _require_packages()
    plan: list[tuple[FaqSource | SectionSource, Path]] = []
    for faq in FAQ_SOURCES:
        plan.extend((faq, p) for p in faq.find())
    for manual in SECTION_SOURCES:
        plan.extend((manual, p) for p in manual.find())
    missing = [str(p) for _, p in plan if not p.is_file()]
    if missing:
        raise InvalidInputError(
            f"missing source file(s) {', '.join(missing[:3])}; install with: {APT_COMMAND}"
        )
    owner = _owned([p for _, p in plan])
    versions: dict[str, str] = {}
    entries: list[Entry] = []
    files: list[SourceFile] = []
    for spec, path in plan:
        text = _read(path)
        if isinstance(spec, FaqSource):
            found = faq_entries(spec, path, text)
        else:
            found = section_entries(spec, path, text)
        entries.extend(found)
        package = owner[path]
        if package not in versions:
            versions[package] = installed_version(package) or "unknown"
        files.append(
            SourceFile(path, package, versions[package], sha256(path), spec.name, len(found))
        )
    assembled = assemble(entries)
    manifest = _manifest(assembled, files)
    return Collection(
        corpus=assembled.corpus,
        queries=assembled.queries,
        qrels={},
        card=_card(assembled, manifest),
        manifest=manifest,
        splits=assembled.splits,
        query_metadata=assembled.query_metadata,
    )


def _counts(assembled: Assembled) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for split, qrels in assembled.splits.items():
        for qid in qrels:
            source = assembled.query_metadata[qid]["source"]
            counts.setdefault(source, {"train": 0, "dev": 0})[split] += 1
    return dict(sorted(counts.items()))


def _manifest(assembled: Assembled, files: list[SourceFile]) -> dict[str, Any]:
    packages = sorted({(f.package, f.version) for f in files})
    words = [len(d.text.split()) for d in assembled.corpus]
    return {
        "source": "Debian documentation packages (FAQs and manuals)",
        "apt_command": APT_COMMAND,
        "packages": [{"name": n, "version": v} for n, v in packages],
        "excluded_packages": list(EXCLUDED_PACKAGES),
        "splits": {s: len(q) for s, q in assembled.splits.items()},
        "queries_per_source": _counts(assembled),
        "corpus_size": len(assembled.corpus),
        "mean_passage_words": round(sum(words) / max(1, len(words)), 1),
        "max_passage_words": MAX_WORDS,
        "dev_fraction": DEV_FRACTION,
        "seed": SEED,
        "dropped": assembled.dropped,
        "files": [
            {
                "path": str(f.path),
                "package": f.package,
                "version": f.version,
                "sha256": f.sha256,
                "source": f.source,
                "entries": f.entries,
            }
            for f in files
        ],
    }


def _card(assembled: Assembled, manifest: Mapping[str, Any]) -> str:
    counts = manifest["queries_per_source"]
    faq_names = {source.name for source in FAQ_SOURCES}
    rows = "\n".join(
        f"| {source} | {'faq' if source in faq_names else 'pseudo'} "
        f"| {c['train']} | {c['dev']} |"
        for source, c in counts.items()
    )
    packages = ", ".join(f"{p['name']} {p['version']}" for p in manifest["packages"])
    dropped = "\n".join(f"- {reason}: {n}" for reason, n in manifest["dropped"].items())
    faq_train = sum(c["train"] for s, c in counts.items() if s in faq_names)
    return f"""# debian-faq

A training collection for rerankers (cross-encoders), made offline from the documentation
that Debian packages install. Query -> one relevant passage (grade 1); splits `train` and
`dev` (BEIR layout: `corpus.jsonl`, `queries.jsonl`, `qrels/train.tsv`, `qrels/dev.tsv`;
there is no test split). Each query's `metadata` has `source` and `kind`.

- **Real pairs** (`kind: faq`): questions of real FAQs and the first passage of their
  answers: {faq_train} in train, {len(assembled.splits['dev'])} in dev.
- **Pseudo pairs** (`kind: pseudo`, train only): `"<page>: <section heading>"` -> the first
  passage of the section, from manuals that are not FAQs: perl's pod pages (each perlfunc
  and perlvar entry is a section), git's manual pages (AsciiDoc sources), the zsh manual,
  the SQLite documentation and the Valgrind manual (HTML).
- Corpus: {len(assembled.corpus)} passages of at most {MAX_WORDS} words (1.25x for a merged
  tail; mean {manifest['mean_passage_words']} words), including the later passages of long
  answers and sections, which nobody judged (distractors, possibly relevant).

| source | kind | train | dev |
|---|---|---|---|
{rows}

## Recipe

Built by `shortlist datasets build debian-faq --out DIR` after `{APT_COMMAND}`
(Debian 12). Packages read: {packages}. Every file read is listed with its package,
version and sha256 in `dataset.json`.

Rules (see `shortlist_datasets.debian_faq`): answers and sections are cut into
passages on paragraph then sentence boundaries; headings NAME, SYNOPSIS, OPTIONS, SEE ALSO,
EXAMPLES and similar make no query, DESCRIPTION is queried by the page's NAME line;
questions are deduplicated case/punctuation/whitespace-insensitively (FAQ pairs first),
identical passages kept once; DEV is ~{DEV_FRACTION:.0%} of the real pairs of each FAQ
source chosen by sha256 of the query id (seed `{SEED}`); train queries that share a dev
query's positive passage or nearly repeat a dev question (token Jaccard >= {NEAR_DUPLICATE})
are dropped, and so are queries under {QUERY_WORDS[0]} or over {QUERY_WORDS[1]} words. Dropped:
{dropped}

## Held out

Never read, for independent checks: {', '.join(EXCLUDED_PACKAGES)} (and their language
variants). The builder refuses any file under `/usr/share/doc/<package>` of these packages
or owned by one of them according to `dpkg-query -S`.

## Caveats

Pseudo queries are headings, not questions people asked, and their passages often repeat
the heading's words (easy for lexical matching). Answers may refer to earlier questions or
code that did not survive the conversion to plain text (code blocks are flattened to one
line). Only one passage per query is judged; other passages may also answer it.
License: every text keeps its package's license (see /usr/share/doc/<package>/copyright),
among them GPL, Artistic, GFDL, Apache-2.0, BSD-style, zlib and public-domain texts.
"""
