"""Shared fixtures. Everything here runs offline and fast."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Nothing in the test suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def data_dir() -> str:
    return os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture(autouse=True)
def _restore_thread_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """CLI commands apply `--threads` process-wide (environment, torch); undo it after
    each test so one test's setting never leaks into the next."""
    import sys

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY"):
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    # The torch loaded before the test (a test may put a fake in sys.modules meanwhile).
    if torch is not None and before is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)
