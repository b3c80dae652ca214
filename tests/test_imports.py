"""Import hygiene of the package, read from the source with `ast` (nothing is imported
except in the last test, which imports the public API in a fresh interpreter).

- no import cycles between shortlist modules (a module importing another that imports it
  back, directly or through others), counting every import: module level, inside
  functions and under ``TYPE_CHECKING``;
- the reranking layer never imports the pipeline that composes it;
- the runtime never imports the collection builders (`shortlist_datasets`), except the CLI
  commands that build collections, inside the command;
- no heavy or optional library is imported when a module is imported, except by the modules
  that exist to wrap it (the server, the framework integrations).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "shortlist"

HEAVY = frozenset(
    {
        "torch",
        "transformers",
        "sentence_transformers",
        "tokenizers",
        "huggingface_hub",
        "onnxruntime",
        "onnx",
        "openvino",
        "nncf",
        "usearch",
        "gensim",
        "cohere",
        "shortlist_datasets",
        "fastapi",
        "starlette",
        "uvicorn",
        "prometheus_client",
        "pydantic",
        "langchain_core",
        "llama_index",
        "lxml",
        "selectolax",
        "pdfminer",
        "docx",
    }
)
"""Libraries that are optional, or slow to import, and must be imported where used."""

EAGER_ALLOWED: dict[str, frozenset[str]] = {
    "shortlist.serve": frozenset(
        {"fastapi", "starlette", "uvicorn", "prometheus_client", "pydantic"}
    ),
    "shortlist.integrations.langchain": frozenset({"langchain_core", "pydantic"}),
    "shortlist.integrations.llamaindex": frozenset({"llama_index", "pydantic"}),
    "shortlist.train.trainer": frozenset({"torch", "transformers", "sentence_transformers"}),
}
"""Module (or package) prefix -> heavy libraries it may import at module level: the server,
the integrations and the training glue (subclasses of sentence-transformers' losses and
callbacks) exist to wrap them, and nothing else imports those modules eagerly."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """Absolute names `node` imports: a module, or for ``from m import x``, ``m.x`` when
    that is a module and ``m`` otherwise."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package.pop()
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield sub if sub in MODULES else base


def _imports(module: str, *, eager_only: bool = False) -> set[str]:
    """Absolute module names imported by `module` (only at import time when `eager_only`)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    nodes = _eager_imports(tree.body) if eager_only else _all_imports(tree)
    return {target for node in nodes for target in _targets(module, node)}


def _all_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def _eager_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: module level, outside functions and
    ``if TYPE_CHECKING:`` blocks."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                yield from _eager_imports(node.body)
                yield from _eager_imports(node.orelse)
        elif isinstance(node, ast.Try):
            yield from _eager_imports(node.body)
            for handler in node.handlers:
                yield from _eager_imports(handler.body)
            yield from _eager_imports(node.orelse)
            yield from _eager_imports(node.finalbody)
        elif isinstance(node, ast.With):
            yield from _eager_imports(node.body)


def _internal(name: str) -> str | None:
    """The shortlist module `name` refers to (the longest known prefix), if any."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the shortlist modules it imports (anywhere in its source)."""
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = {_internal(t) for t in _imports(module)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_relative_and_submodule_imports_resolve() -> None:
    graph = import_graph()
    assert "shortlist.rerank.api.cohere" in graph["shortlist.rerank.api"]
    assert "shortlist.errors" in graph["shortlist.rerank.api.base"]


def test_no_two_shortlist_modules_import_each_other() -> None:
    assert cycles(import_graph()) == []


def _rerank_modules_importing_pipeline() -> set[str]:
    def within(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    graph = import_graph()
    return {
        m
        for m in graph
        if within(m, "shortlist.rerank") and any(within(t, "shortlist.pipeline") for t in graph[m])
    }


def test_rerank_never_imports_pipeline() -> None:
    assert _rerank_modules_importing_pipeline() == set()


def test_runtime_imports_the_collection_builders_only_in_cli_commands() -> None:
    anywhere = {m for m in MODULES if any(t.startswith("shortlist_datasets") for t in _imports(m))}
    eager = {
        m
        for m in MODULES
        if any(t.startswith("shortlist_datasets") for t in _imports(m, eager_only=True))
    }
    assert anywhere and all(m.startswith("shortlist.cli.") for m in anywhere)
    assert eager == set()


def _allowed(module: str) -> frozenset[str]:
    allowed: frozenset[str] = frozenset()
    for prefix, libraries in EAGER_ALLOWED.items():
        if module == prefix or module.startswith(prefix + "."):
            allowed |= libraries
    return allowed


def test_heavy_libraries_are_imported_lazily() -> None:
    eager = {}
    for module in MODULES:
        libraries = {t.split(".")[0] for t in _imports(module, eager_only=True)}
        offending = (libraries & HEAVY) - _allowed(module)
        if offending:
            eager[module] = sorted(offending)
    assert eager == {}


def test_public_api_imports_no_heavy_library() -> None:
    """`import shortlist`, every name of its public API and the CLI, in a fresh interpreter."""
    code = (
        "import json, sys\n"
        "import shortlist, shortlist.cli\n"
        "for name in shortlist.__all__:\n"
        "    getattr(shortlist, name)\n"
        f"heavy = {sorted(HEAVY)!r}\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": path},
        timeout=120,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
