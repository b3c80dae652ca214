"""`SentenceTransformerEncoder`: the torch dense encoder (sentence-transformers), and how
a model's weights file is found (the identity hashes it).

Its own module so that `encoders` (specs, the registry) and `encoder_backends` (the
exported runtimes, which wrap this one for torch) both use it without importing each other.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shortlist._fs import sha256_of_file
from shortlist._optional import require
from shortlist.errors import InvalidInputError, ModelLoadError
from shortlist.retrieve.encoder import (
    DEFAULT_MODEL,
    default_model_path,
)

# Weight files in the order sentence-transformers/transformers prefer them.
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.onnx")


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


def _progress_enabled(show_progress: bool) -> bool:
    # A progress bar in a log file or a pipe is noise; only draw it for a person watching.
    return show_progress and sys.stderr is not None and sys.stderr.isatty()


class SentenceTransformerEncoder:
    """A sentence-transformers bi-encoder, loaded by Hugging Face id or local folder.

    `model="default"` loads the offline all-MiniLM-L6-v2 folder (`default_model_path()`).
    Any other value is passed to `sentence_transformers.SentenceTransformer`, which resolves
    a local path or a Hugging Face id (downloaded once and cached by Hugging Face when a
    network is available). The model is loaded in the constructor, so a bad name fails early.

    Raises `MissingDependencyError` if sentence-transformers is not installed and
    `ModelLoadError` if the model cannot be found or loaded.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str | None = None,
        max_seq_length: int | None = None,
    ) -> None:
        if not model:
            raise InvalidInputError(
                "empty model name; pass 'default', a Hugging Face id or a local folder"
            )
        if max_seq_length is not None and max_seq_length <= 0:
            raise InvalidInputError(f"max_seq_length must be positive, got {max_seq_length}")
        self._name = model
        self._path = default_model_path() if model == DEFAULT_MODEL else model
        if _looks_like_path(self._path):
            self._path = os.path.expanduser(self._path)
        if _looks_like_path(self._path) and not os.path.isdir(self._path):
            raise ModelLoadError(
                f"model folder {self._path!r} does not exist; pass an existing folder "
                "holding a sentence-transformers model, or a Hugging Face id"
            )
        st = require("sentence_transformers", "dense", "dense retrieval")
        try:
            self._model = st.SentenceTransformer(self._path, device=device)
        except Exception as exc:  # the library raises OSError, ValueError, HF errors...
            reason = (str(exc).strip().splitlines() or [""])[0]
            raise ModelLoadError(
                f"cannot load sentence-transformers model {model!r} ({type(exc).__name__}: "
                f"{reason}). Without network access (or with HF_HUB_OFFLINE=1) a model must "
                "already be in the Hugging Face cache: download it on a machine with access, "
                "e.g. `huggingface-cli download " + model + " --local-dir ./my-model`, copy "
                "the folder over and pass its path instead of the id"
            ) from exc
        if max_seq_length is not None:
            self._model.max_seq_length = max_seq_length
        # Renamed in sentence-transformers 5.x; the old name warns there.
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        if get_dim is None:
            get_dim = self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ModelLoadError(f"model {model!r} does not declare an embedding dimension")
        self._dim = int(dim)
        self._weights_sha256: str | None = None

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_seq_length(self) -> int:
        return int(self._model.max_seq_length)

    @property
    def backend(self) -> str:
        return "torch"

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "kind": "sentence-transformers",
            "model": self._name,
            "dim": self._dim,
            "weights_sha256": self.weights_sha256,
            "backend": "torch",
        }

    @property
    def weights_sha256(self) -> str:
        """First 16 hex digits of the SHA-256 of the main weights file ("" if not found).

        Only the main weights file is hashed (tokenizer and config changes are rarer and
        would change the vectors' meaning less visibly than the name and dim already pin).
        Computed once per encoder.
        """
        if self._weights_sha256 is None:
            path = find_weights_file(self._path)
            self._weights_sha256 = sha256_of_file(path)[:16] if path is not None else ""
        return self._weights_sha256

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Shape (len(texts), dim), float32, each row L2-normalised.

        Texts longer than `max_seq_length` tokens are truncated by the model.
        """
        if batch_size <= 0:
            raise InvalidInputError(f"batch_size must be positive, got {batch_size}")
        if len(texts) == 0:
            return np.zeros((0, self._dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=_progress_enabled(show_progress),
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _looks_like_path(name: str) -> bool:
    # Hugging Face ids ("org/name") also contain "/", so only explicit paths count.
    return name.startswith(("/", "./", "../", "~")) or os.path.isabs(name)


def find_weights_file(name_or_path: str) -> Path | None:
    """The main weights file of a model folder, or of a hub id already in the local cache."""
    folder = Path(name_or_path)
    if folder.is_dir():
        for name in _WEIGHT_FILES:
            if (folder / name).is_file():
                return folder / name
        return None
    # A Hugging Face id: look in the local cache only, never download to hash.
    try:
        hub = require("huggingface_hub", "dense")
        for name in _WEIGHT_FILES:
            cached = hub.try_to_load_from_cache(name_or_path, name)
            if isinstance(cached, str) and os.path.isfile(cached):
                return Path(cached)
    except Exception:  # hashing is best effort: an unhashable model still has name and dim
        return None
    return None
