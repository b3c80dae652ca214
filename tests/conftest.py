"""Shared fixtures. Everything here runs offline and fast."""

from __future__ import annotations

import os

import pytest

# Nothing in the test suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def data_dir() -> str:
    return os.path.join(os.path.dirname(__file__), "data")
