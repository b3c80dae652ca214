"""The package's layering, read from the source: no import points up a layer, no two
modules import each other (imports inside functions and TYPE_CHECKING blocks count)."""

from __future__ import annotations

import ast
from pathlib import Path

import shortlist

ROOT = Path(shortlist.__file__).parent

# A module of a layer may not import these (the layers above it).
FORBIDDEN = {
    "shortlist.runtime": ("shortlist.retrieve", "shortlist.store", "shortlist.rerank",
                          "shortlist.pipeline", "shortlist.serve", "shortlist.evaluate",
                          "shortlist.cli"),
    "shortlist.retrieve": ("shortlist.store", "shortlist.rerank", "shortlist.pipeline",
                           "shortlist.serve", "shortlist.evaluate", "shortlist.cli"),
    "shortlist.rerank": ("shortlist.store", "shortlist.pipeline", "shortlist.serve",
                         "shortlist.evaluate", "shortlist.cli"),
    "shortlist.store": ("shortlist.rerank", "shortlist.pipeline", "shortlist.serve",
                        "shortlist.evaluate", "shortlist.cli"),
    "shortlist.pipeline": ("shortlist.serve", "shortlist.evaluate", "shortlist.cli"),
    # Answers take a ranking and a prompt; they never reach into indexes or the server.
    "shortlist.generate": ("shortlist.store", "shortlist.serve", "shortlist.evaluate",
                           "shortlist.cli"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("shortlist"))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0]
                    target = f"{base}.{node.module}" if node.module else base
                else:
                    target = node.module or ""
                if target.startswith("shortlist"):
                    found.add(target)
                    found.update(f"{target}.{a.name}" for a in node.names)
        graph[name] = found
    modules = set(graph)
    return {m: {t for t in targets if t in modules and t != m} for m, targets in graph.items()}


def test_no_import_points_up_a_layer() -> None:
    bad = [
        (module, target)
        for module, targets in _imports().items()
        for layer, above in FORBIDDEN.items()
        if module == layer or module.startswith(layer + ".")
        for target in targets
        if any(target == a or target.startswith(a + ".") for a in above)
    ]
    assert bad == []


def test_no_two_modules_import_each_other() -> None:
    graph = _imports()
    pairs = sorted(
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if a < b and a in graph.get(b, set()) and not _is_package_of(a, b)
    )
    assert pairs == []


def _is_package_of(a: str, b: str) -> bool:
    # A package's __init__ re-exporting its own submodule is not a cycle between peers.
    return b.startswith(a + ".") or a.startswith(b + ".")
