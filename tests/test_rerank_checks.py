"""The checks the local windowed rerankers (cross-encoder, ColBERT, LLM) share."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from shortlist.errors import InvalidInputError, ModelLoadError
from shortlist.rerank.base import NO_OPTIONS, RerankOptions
from shortlist.rerank.windows import (
    CPU_BATCH_TOKENS,
    GPU_BATCH_TOKENS,
    check_model_options,
    default_batch_tokens,
)
from shortlist.runtime.models import load_config_and_tokenizer, on_cpu, require_fast_tokenizer


def test_window_limits_accept_unset_and_positive() -> None:
    NO_OPTIONS.check_window_limits()
    RerankOptions(max_tokens_per_doc=1, max_chunks_per_doc=3).check_window_limits()


@pytest.mark.parametrize("option", ["max_tokens_per_doc", "max_chunks_per_doc"])
@pytest.mark.parametrize("value", [0, -2])
def test_window_limits_name_the_option(option: str, value: int) -> None:
    with pytest.raises(InvalidInputError, match=f"{option} must be >= 1, got {value}"):
        RerankOptions(**{option: value}).check_window_limits()


def test_model_options() -> None:
    check_model_options("max", None)
    check_model_options("first", 1)
    with pytest.raises(InvalidInputError, match="unknown aggregate 'sum'.*max, mean, first"):
        check_model_options("sum", None)
    with pytest.raises(InvalidInputError, match="num_threads must be >= 1"):
        check_model_options("max", 0)


@pytest.mark.parametrize(
    ("device", "cpu"),
    [(None, True), ("cpu", True), ("cpu:0", True), ("cuda", False), ("cuda:1", False),
     ("mps", False)],
)
def test_on_cpu_and_default_batch_tokens(device: str | None, cpu: bool) -> None:
    assert on_cpu(device) is cpu
    assert default_batch_tokens(device) == (CPU_BATCH_TOKENS if cpu else GPU_BATCH_TOKENS)


def test_require_fast_tokenizer() -> None:
    require_fast_tokenizer(SimpleNamespace(is_fast=True), "m")
    for slow in (SimpleNamespace(is_fast=False), object()):
        with pytest.raises(ModelLoadError, match="m: a fast .* add tokenizer.json"):
            require_fast_tokenizer(slow, "m")


def test_load_config_and_tokenizer_names_the_folder(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    message = re.escape(f"cannot load config/tokenizer from {tmp_path}")
    with pytest.raises(ModelLoadError, match=message):
        load_config_and_tokenizer(tmp_path)
