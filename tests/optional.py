"""Skip markers for tests that need an optional extra, decided without importing it.

A test that needs an extra's modules is marked with `needs_extra("onnx")`; when any of them
is missing it skips and says which extra installs them. A module that is installed but
broken is not skipped: importing it fails the test, loudly.
"""

from __future__ import annotations

import importlib.util

import pytest

EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "onnx": ("onnxruntime", "onnx"),
    "openvino": ("openvino", "nncf"),
    "serve": ("fastapi", "uvicorn", "prometheus_client"),
    "datasets": ("gensim",),
    "documents": ("selectolax", "pdfminer", "docx"),
    "milvus": ("pymilvus", "milvus_lite"),
    "ray": ("ray",),
}
"""What each extra of pyproject.toml installs, by top-level module name."""

BACKEND_EXTRA: dict[str, str] = {
    "onnx": "onnx",
    "onnx-int8": "onnx",
    "openvino": "openvino",
    "openvino-int8": "openvino",
}
"""Cross-encoder backends (keys of `shortlist.runtime.BACKENDS`) that need an extra."""


def missing_modules(*modules: str) -> list[str]:
    """The top-level `modules` that cannot be found (nothing is imported)."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _why_missing(extra: str) -> str | None:
    absent = missing_modules(*EXTRA_MODULES[extra])
    if not absent:
        return None
    return f"{', '.join(absent)} not installed: pip install -e '.[{extra}]'"


def needs_extra(extra: str) -> pytest.MarkDecorator:
    """Skip, naming `pip install -e '.[extra]'`, when a module of `extra` is missing."""
    reason = _why_missing(extra)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def skip_without_extra(extra: str) -> None:
    """In a fixture or test body: skip now, as `needs_extra` would, when `extra` is missing."""
    reason = _why_missing(extra)
    if reason is not None:
        pytest.skip(reason)


def backend_param(backend: str) -> object:
    """`backend` as a pytest parameter, skipped when its extra is missing."""
    extra = BACKEND_EXTRA.get(backend)
    return pytest.param(backend, marks=needs_extra(extra) if extra else ())
