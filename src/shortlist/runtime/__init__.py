"""Model runtimes (torch, ONNX Runtime, OpenVINO; fp32 and int8), chosen explicitly by name.

Below both stages: the cross-encoder runs its models through these backends, and the
dense encoder's exported backends (`shortlist.retrieve.encoder_backends`) reuse their
export, fusion and quantization. A backend turns padded token batches into logits;
everything else (tokenizing, windows, batching, aggregation, ranking) lives in
`shortlist.rerank.cross_encoder`. `runtime` imports neither stage.

`BACKENDS` maps a backend name to the `module:function` that builds it. Modules are
imported only when their backend is asked for, so a missing optional dependency
(onnxruntime, openvino) only matters to the people who pick that backend. Each
loader has the signature `load(options: BackendOptions) -> Backend`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from shortlist.errors import SpecError

BACKENDS: dict[str, str] = {
    "torch": "shortlist.runtime.torch:load_fp32",
    "torch-int8": "shortlist.runtime.torch:load_int8",
    "onnx": "shortlist.runtime.onnx:load_fp32",
    "onnx-int8": "shortlist.runtime.onnx:load_int8",
    "openvino": "shortlist.runtime.openvino:load_fp32",
    "openvino-int8": "shortlist.runtime.openvino:load_int8",
}
"""Backend name -> `module:loader`. Error messages are built from these keys."""

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
"""The inputs a sequence-classification model may take, in this order."""


def model_feed(
    input_names: tuple[str, ...],
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    token_type_ids: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """What a backend feeds its model: C-contiguous int64 ids and mask, and segment ids when
    the model takes them (`input_names`; all zeros when the caller has none)."""
    feed = {"input_ids": input_ids, "attention_mask": attention_mask}
    if "token_type_ids" in input_names:
        feed["token_type_ids"] = (
            token_type_ids if token_type_ids is not None else np.zeros_like(input_ids)
        )
    return {name: np.ascontiguousarray(array, dtype=np.int64) for name, array in feed.items()}


@runtime_checkable
class Backend(Protocol):
    """Runs a sequence-classification model on one padded batch."""

    @property
    def input_names(self) -> tuple[str, ...]:
        """The model inputs it consumes, a subset of input_ids/attention_mask/token_type_ids."""
        ...

    def run(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        token_type_ids: np.ndarray | None,
    ) -> np.ndarray:
        """Int64 arrays of shape (batch, seq) in; float32 logits of shape (batch, labels) out.

        `token_type_ids` is ignored by models that have no segment embeddings.
        """
        ...


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """What a backend loader needs.

    - `model_path`: a local folder holding `config.json` and the weights
      (hub ids are resolved to their cached snapshot before a backend sees them);
    - `cache_dir`: where exported/quantized artifacts are kept (None: the platform
      cache, see `default_cache_dir`);
    - `num_threads`: intra-op threads for this model (None: the runtime's default);
    - `device`: e.g. "cpu" or "cuda" (None: cpu).
    """

    model_path: Path
    cache_dir: Path | None = None
    num_threads: int | None = None
    device: str | None = None


def load_backend(name: str, options: BackendOptions) -> Backend:
    """Build the backend registered as `name`.

    Raises `SpecError` for a name not in `BACKENDS` (or whose module is not part of
    this installation), and `MissingDependencyError` when the backend's optional
    dependency is not installed.
    """
    target = BACKENDS.get(name)
    if target is None:
        raise SpecError(
            f"unknown cross-encoder backend {name!r}; choose one of: {', '.join(BACKENDS)}"
        )
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise SpecError(
            f"cross-encoder backend {name!r} is not available in this installation "
            f"({module_name} is missing)"
        ) from exc
    backend: Backend = getattr(module, attr)(options)
    return backend


def default_cache_dir() -> Path:
    """The per-user cache folder for exported models, read from the environment at call time.

    `$XDG_CACHE_HOME/shortlist` (or `~/.cache/shortlist`) on Linux, `~/Library/Caches/shortlist`
    on macOS, `%LOCALAPPDATA%/shortlist/cache` on Windows.
    """
    import os
    import sys

    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        if base:
            return Path(base) / "shortlist" / "cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "shortlist"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg if xdg else Path.home() / ".cache") / "shortlist"
