"""Loading a Hugging Face fast tokenizer from a local path, for counting model tokens.

Used by token-based chunking and prompt packing. Nothing is downloaded: the path must
be a local ``tokenizer.json`` file or a model folder (one with ``tokenizer.json``, or
one that ``transformers.AutoTokenizer`` can turn into a fast tokenizer offline).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from shortlist._optional import require
from shortlist.errors import ModelLoadError


def load_tokenizer(path: str | Path) -> Any:
    """A `tokenizers.Tokenizer` with truncation and padding switched off.

    Raises `ModelLoadError` when the path does not exist or holds no usable tokenizer,
    and `MissingDependencyError` when `tokenizers` is not installed.
    """
    tokenizers = require("tokenizers", "dense", "counting model tokens")
    location = Path(path)
    if not location.exists():
        raise ModelLoadError(
            f"no tokenizer at {str(location)!r}; give a local tokenizer.json file or a model "
            "folder (nothing is downloaded)"
        )
    file = location / "tokenizer.json" if location.is_dir() else location
    try:
        if file.is_file():
            tok = tokenizers.Tokenizer.from_file(str(file))
        else:
            tok = _from_transformers(location)
    except ModelLoadError:
        raise
    except Exception as exc:  # the libraries raise a variety of types for a bad file
        raise ModelLoadError(f"cannot load a tokenizer from {str(location)!r}: {exc}") from exc
    tok.no_truncation()
    tok.no_padding()
    return tok


def _from_transformers(folder: Path) -> Any:
    transformers = require("transformers", "dense", "loading a tokenizer")
    auto = transformers.AutoTokenizer.from_pretrained(
        str(folder), use_fast=True, local_files_only=True
    )
    backend = getattr(auto, "backend_tokenizer", None)
    if backend is None:
        raise ModelLoadError(
            f"the tokenizer in {str(folder)!r} has no fast (Rust) version; "
            "convert it to tokenizer.json first"
        )
    return backend


def token_counter(tokenizer: Any) -> Callable[[str], int]:
    """A function counting the tokens of a text, special tokens not included."""

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count
