"""Lazy imports of optional dependencies that fail loudly with the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from shortlist.errors import MissingDependencyError


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import `module`, or raise `MissingDependencyError` naming the extra to install
    (`pip install -e '.[extra]'` from a checkout)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from exc
