"""Counting tokens: the one estimate without a tokenizer, and exact counts with one.

`estimate_tokens` is the estimate every part of shortlist uses when it has no model
tokenizer at hand (prompt budgets, hosted-API request splitting and cost estimates, the
server's batch packing). `load_tokenizer` loads a Hugging Face fast tokenizer for exact
counts, used by token-based chunking and prompt packing. Nothing is downloaded: the path
must be a local ``tokenizer.json`` file or a model folder (one with ``tokenizer.json``, or
one that ``transformers.AutoTokenizer`` can turn into a fast tokenizer offline).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shortlist._optional import require
from shortlist.errors import ModelLoadError

# CJK ideographs, kana and hangul come first: tokenizers give them about one token
# per character, so they must not be counted as one long "word".
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_ESTIMATE_UNIT = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+|\S")
_CHARS_PER_PIECE = 6


def estimate_tokens(text: str) -> int:
    """Estimate the token count of `text` without a tokenizer (0 for an empty text).

    Formula: every punctuation or symbol character, and every CJK character, counts 1;
    a run of other letters/digits of length ``n`` counts ``1 + (n - 1) // 6`` (long,
    rare words split into several word pieces).

    Why this one: measured against the all-MiniLM-L6-v2 WordPiece tokenizer (BERT
    uncased) on the 300 documents of gensim's Lee background corpus, estimate/actual was
    0.99 at the lowest, 1.16 on average and 1.30 at the highest. It leans high, so a
    budget or a request limit computed with it is rarely exceeded by an English WordPiece
    or BPE tokenizer, and it counts CJK text and punctuation-heavy text (code, tables)
    sensibly. The usual ``characters / 4`` rule it replaced was looser on the same
    documents (1.00 / 1.24 / 1.47) and counts CJK text at a quarter of its tokens.
    Use a model tokenizer (`load_tokenizer`, `token_counter`) when the count must be exact.
    """
    count = 0
    for match in _ESTIMATE_UNIT.finditer(text):
        piece = match.group()
        count += 1 + (len(piece) - 1) // _CHARS_PER_PIECE if piece[0].isalnum() else 1
    return count


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
