"""stdlib-docs: known-item search over the docstrings of the running Python's standard library.

Passages. Docstrings of modules, classes, functions and methods, read from the stdlib
source files with `ast` (nothing is imported, so no import side effects; that is why
tkinter and turtle can be read safely), plus the docstrings of C-implemented builtins from
a fixed list of side-effect-free public modules, read in a separate ``python -I`` process.
Skipped: tests, ``idlelib``, ``turtledemo``, ``ensurepip``, ``encodings`` (boilerplate),
``pydoc_data`` (a copy of the Python documentation), ``this``, ``antigravity`` and dunder
methods. Private modules and helpers become passages but never query targets. Each
docstring is cut into passages of at most 50 words on sentence boundaries; duplicate
texts are kept once.

Queries. From a docstring whose first line (the PEP 257 summary) is one plain sentence and
whose remaining text is 15-50 words, the summary is rewritten by fixed rules into what a
person might type: leading "Return(s)" dropped ("Return True if" becomes "check if"),
articles dropped, lowercased, punctuation removed; summaries with code (underscores,
brackets, dotted names, quotes) are not used. The target passage is the docstring WITHOUT
its summary line, so the query is not a verbatim copy of the passage, and its title is the
qualified name. Queries that are not unique are dropped. Up to 500 public targets are drawn
with a fixed seed, at most 3 per module (about 370 with Python 3.11). One relevant passage
per query (grade 1).

Caveats: the passage often reuses the summary's words, which favours lexical retrieval
(BM25); other passages may also answer a query but are not judged (false negatives); the
collection depends on the Python version that builds it (recorded in the card).
"""

from __future__ import annotations

import ast
import json
import random
import re
import subprocess
import sys
import sysconfig
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from shortlist.errors import ShortlistError
from shortlist.types import Document, Qrels
from shortlist_datasets.base import Collection

SUMMARY = "known-item search: ~370 queries over >10k Python stdlib docstring passages"

SEED = 20051
N_QUERIES = 500
MAX_PER_MODULE = 3
MAX_WORDS = 50
MIN_BODY_WORDS = 15
QUERY_WORDS = (3, 12)

SKIP_TOP_LEVEL = frozenset(
    {
        "test",
        "idlelib",
        "turtledemo",
        "ensurepip",
        "encodings",
        "pydoc_data",
        "this",
        "antigravity",
        "site-packages",
        "dist-packages",
    }
)
SKIP_PARTS = frozenset({"test", "tests", "idle_test"})

# Public modules whose C-implemented functions and types have docstrings worth indexing.
# Importing them has no side effect (no processes, no terminal or network access).
C_MODULES = (
    "builtins",
    "math",
    "cmath",
    "itertools",
    "operator",
    "time",
    "sys",
    "os",
    "array",
    "select",
    "binascii",
    "zlib",
    "unicodedata",
    "io",
    "collections",
    "functools",
    "datetime",
    "decimal",
    "heapq",
    "bisect",
    "struct",
    "mmap",
    "socket",
    "random",
    "pickle",
    "csv",
    "contextvars",
    "marshal",
    "gc",
    "signal",
    "fcntl",
    "grp",
    "pwd",
    "resource",
    "termios",
    "atexit",
    "faulthandler",
    "sqlite3",
    "lzma",
    "bz2",
    "queue",
    "hashlib",
    "re",
    "json",
    "codecs",
    "weakref",
    "abc",
    "curses",
    "ssl",
    "ctypes",
    "xml.parsers.expat",
    "zoneinfo",
    "unicodedata",
    "array",
)

_C_SCRIPT = r"""
import importlib, inspect, json, sys, types
DESCRIPTORS = (types.MethodDescriptorType, types.ClassMethodDescriptorType,
               types.GetSetDescriptorType, types.MemberDescriptorType,
               types.BuiltinFunctionType, types.WrapperDescriptorType)
def is_c_type(obj):
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    origin = getattr(module, "__file__", None) or ""
    return not origin.endswith(".py")
out = []
for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
    except ImportError:
        continue
    for attr, obj in sorted(vars(module).items()):
        if attr.startswith("_"):
            continue
        if isinstance(obj, types.BuiltinFunctionType):
            out.append((f"{name}.{attr}", name, obj.__doc__))
        elif isinstance(obj, type) and is_c_type(obj):
            out.append((f"{name}.{attr}", name, obj.__doc__))
            for member, value in sorted(vars(obj).items()):
                if not member.startswith("_") and isinstance(value, DESCRIPTORS):
                    out.append((f"{name}.{attr}.{member}", name, value.__doc__))
json.dump([(q, m, inspect.cleandoc(d)) for q, m, d in out if isinstance(d, str) and d.strip()],
          sys.stdout)
"""


@dataclass(frozen=True)
class Docstring:
    """One docstring: qualified name (``os.path.join``), its module and the cleaned text."""

    qualname: str
    module: str
    text: str
    public: bool = True


def stdlib_dir() -> Path:
    """The folder of the running interpreter's standard library sources."""
    folder = Path(sysconfig.get_paths()["stdlib"])
    if not (folder / "os.py").is_file():
        raise ShortlistError(
            f"no standard library sources under {folder}; the stdlib-docs collection needs "
            "the .py files (install the python3 stdlib package)"
        )
    return folder


def _module_name(relative: Path) -> tuple[str, bool] | None:
    """(dotted module name, is it public) for a stdlib source file, None when skipped."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or parts[0] in SKIP_TOP_LEVEL or parts[0].startswith("config-"):
        return None
    if any(p in SKIP_PARTS or not p.isidentifier() or p.startswith("__") for p in parts):
        return None
    return ".".join(parts), not any(p.startswith("_") for p in parts)


def _walk(node: ast.AST, prefix: str, module: str, public: bool, out: list[Docstring]) -> None:
    for child in getattr(node, "body", []):
        if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            if child.name.startswith("__"):
                continue  # dunder methods: mostly boilerplate ("Return self==value.")
            qualname = f"{prefix}.{child.name}"
            child_public = public and not child.name.startswith("_")
            doc = ast.get_docstring(child)
            if doc:
                out.append(Docstring(qualname, module, doc, child_public))
            if isinstance(child, ast.ClassDef):
                _walk(child, qualname, module, child_public, out)


def read_source_docstrings(root: Path) -> list[Docstring]:
    """Docstrings of modules and their classes, functions and methods, read with ast.

    Private modules and helpers (leading underscore) are read too, marked
    ``public=False``: they become passages, never query targets. Dunder methods are skipped.
    """
    out: list[Docstring] = []
    for path in sorted(root.rglob("*.py")):
        named = _module_name(path.relative_to(root))
        if named is None:
            continue
        module, public = named
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError):
            continue  # e.g. a stray file for another Python version
        doc = ast.get_docstring(tree)
        if doc:
            out.append(Docstring(module, module, doc, public))
        _walk(tree, module, module, public, out)
    return out


def read_builtin_docstrings(modules: tuple[str, ...] = C_MODULES) -> list[Docstring]:
    """Docstrings of C-implemented functions and types, read in an isolated subprocess."""
    completed = subprocess.run(
        [sys.executable, "-I", "-W", "ignore", "-c", _C_SCRIPT, *modules],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise ShortlistError(f"reading builtin docstrings failed: {completed.stderr.strip()}")
    return [Docstring(q, m, text) for q, m, text in json.loads(completed.stdout)]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SIGNATURE = re.compile(r"^[\w.]+\(.*\)(\s*->.*)?$")
_CODE = re.compile(r"[_()\[\]{}<>=*/\\`'\"|#@$%^~]|\w\.\w|\d")
_ARTICLES = frozenset({"a", "an", "the"})


def _strip_signature(text: str) -> str:
    lines = text.splitlines()
    while lines and _SIGNATURE.match(lines[0].strip()):
        lines = lines[1:]
    return "\n".join(lines).strip()


def split_summary(text: str) -> tuple[str, str]:
    """(summary line, rest) of a cleaned docstring; the summary is its first line."""
    first, _, rest = text.partition("\n")
    return first.strip(), rest.strip()


def make_query(summary: str) -> str | None:
    """A search query made from a docstring summary line, or None if it is not usable.

    ``"Return the number of items in a container."`` -> ``"number of items in container"``;
    ``"Return True if the path is a directory."`` -> ``"check if path is directory"``.
    """
    summary = summary.strip()
    if not summary.endswith(".") or _SENTENCE_END.search(summary[:-1]) or _CODE.search(summary):
        return None
    words = summary[:-1].replace(",", " ").replace(";", " ").replace(":", " ").split()
    lowered = [w.lower() for w in words]
    if lowered[:3] in (["return", "true", "if"], ["returns", "true", "if"]):
        lowered = ["check", "if", *lowered[3:]]
    elif lowered and lowered[0] in ("return", "returns"):
        lowered = lowered[1:]
    lowered = [w for w in lowered if w not in _ARTICLES]
    if not all(w.replace("-", "").isalpha() for w in lowered):
        return None
    if not QUERY_WORDS[0] <= len(lowered) <= QUERY_WORDS[1]:
        return None
    return " ".join(lowered)


def chunk(text: str, max_words: int = MAX_WORDS) -> list[str]:
    """Cut `text` into passages of at most `max_words` words on sentence boundaries.

    A single sentence longer than `max_words` stays whole. Whitespace is collapsed.
    """
    sentences = [
        s for para in re.split(r"\n\s*\n", text) for s in _SENTENCE_END.split(para.strip()) if s
    ]
    passages: list[list[str]] = []
    size = 0
    for sentence in sentences:
        words = sentence.split()
        if passages and size + len(words) <= max_words:
            passages[-1].extend(words)
            size += len(words)
        else:
            passages.append(list(words))
            size = len(words)
    return [" ".join(p) for p in passages if p]


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _deduplicate(docstrings: list[Docstring]) -> list[Docstring]:
    seen: set[str] = set()
    by_name: dict[str, Docstring] = {}
    for doc in sorted(docstrings, key=lambda d: (d.qualname, d.text, d.module, d.public)):
        key = _normal(doc.text)
        if doc.qualname in by_name or key in seen:
            continue
        seen.add(key)
        by_name[doc.qualname] = doc
    return list(by_name.values())


def make_collection(
    docstrings: list[Docstring] | None = None,
    *,
    n_queries: int = N_QUERIES,
    seed: int = SEED,
) -> Collection:
    """Build the collection from `docstrings` (default: this interpreter's stdlib)."""
    if docstrings is None:
        docstrings = read_source_docstrings(stdlib_dir()) + read_builtin_docstrings()
    docs = _deduplicate(
        [Docstring(d.qualname, d.module, _strip_signature(d.text), d.public) for d in docstrings]
    )
    docs = [d for d in docs if d.text]

    summaries = Counter(_normal(split_summary(d.text)[0]) for d in docs)
    candidates: list[tuple[Docstring, str, str]] = []
    for doc in docs:
        summary, body = split_summary(doc.text)
        query = make_query(summary)
        body_words = len(body.split())
        if not doc.public or query is None or summaries[_normal(summary)] != 1:
            continue
        if not MIN_BODY_WORDS <= body_words <= MAX_WORDS or len(chunk(body)) != 1:
            continue
        candidates.append((doc, query, chunk(body)[0]))
    query_counts = Counter(q for _, q, _ in candidates)
    candidates = [c for c in candidates if query_counts[c[1]] == 1]

    rng = random.Random(seed)
    rng.shuffle(candidates)
    per_module: defaultdict[str, int] = defaultdict(int)
    chosen: dict[str, tuple[str, str]] = {}
    for doc, query, body in candidates:
        if len(chosen) == n_queries:
            break
        if per_module[doc.module] >= MAX_PER_MODULE:
            continue
        per_module[doc.module] += 1
        chosen[doc.qualname] = (query, body)

    corpus: list[Document] = []
    seen_texts = {_normal(body) for _, body in chosen.values()}
    for doc in docs:
        if doc.qualname in chosen:
            corpus.append(
                Document(id=doc.qualname, text=chosen[doc.qualname][1], title=doc.qualname)
            )
            continue
        pieces = chunk(doc.text)
        for i, piece in enumerate(pieces, start=1):
            if _normal(piece) in seen_texts:
                continue
            seen_texts.add(_normal(piece))
            doc_id = doc.qualname if len(pieces) == 1 else f"{doc.qualname}#{i}"
            corpus.append(Document(id=doc_id, text=piece, title=doc.qualname))

    queries = {f"q{i:04d}": chosen[name][0] for i, name in enumerate(sorted(chosen))}
    qrels: Qrels = {f"q{i:04d}": {name: 1} for i, name in enumerate(sorted(chosen))}
    return Collection(
        corpus=corpus,
        queries=queries,
        qrels=qrels,
        card=_card(corpus, queries, qrels, len(candidates)),
        manifest={"source": "Python standard library docstrings", "python": _version()},
    )


def _version() -> str:
    return ".".join(str(v) for v in sys.version_info[:3])


def _card(corpus: list[Document], queries: dict[str, str], qrels: Qrels, pool: int) -> str:
    examples = "\n".join(
        f"- `{queries[q]}` -> `{next(iter(qrels[q]))}`" for q in sorted(queries)[:8]
    )
    return f"""# stdlib-docs: known-item search over Python standard library docstrings

Built by `shortlist datasets build stdlib-docs` with Python {_version()} on {sys.platform};
another Python version gives a slightly different collection.

## Provenance
Docstrings written by the CPython developers (Python Software Foundation License), read
from the standard library sources of the interpreter that built this folder with `ast`
(nothing imported), plus docstrings of C-implemented builtins from a fixed list of
side-effect-free public modules. Skipped: tests, idlelib, turtledemo, ensurepip,
encodings, pydoc_data (a copy of the Python docs), this, antigravity, dunder methods.
Private modules and helpers are passages but never query targets. The Python FAQ and
the python3-doc package are not used.

## Passages
{len(corpus)} passages of at most {MAX_WORDS} words, cut on sentence boundaries from each
docstring; the title is the qualified name (`os.path.join`). Duplicate texts kept once.

## Queries
{len(queries)} queries, drawn with seed {SEED} from {pool} usable docstrings, at most
{MAX_PER_MODULE} per module. A docstring is usable when its name is public, its first
line (the summary) is one plain sentence without code, and the rest has
{MIN_BODY_WORDS}-{MAX_WORDS} words. The query is the summary rewritten by fixed rules:
leading "Return(s)" dropped ("Return True if" -> "check if"), articles dropped,
lowercased, punctuation removed. The relevant
passage is the rest of that docstring with the summary line REMOVED, so the query is not
a verbatim copy of it. Examples:
{examples}

## Relevance
Known-item: exactly one relevant passage per query (grade 1), the docstring the query was
made from. Summaries and queries that occur more than once were not used.

## Caveats
- The relevant passage usually shares words with its summary line, and the title (the
  qualified name) often shares words with the query: lexical overlap favours BM25.
- Other passages may answer a query too (related functions, the same method on several
  classes) but are not judged, so every system is under-credited somewhat.
- The rewritten summaries read like short search queries, but they were not written by
  searchers.
"""
