"""What every model runtime needs, whichever stage runs the model: finding a model's
folder, loading its config and tokenizer, and packing rows into token-budget batches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shortlist.errors import ModelLoadError

_HUB_IGNORE = [
    "onnx/*",
    "openvino/*",
    "*.onnx",
    "*.h5",
    "*.msgpack",
    "*.ot",
    "*.gguf",
    "tf_model*",
    "flax_model*",
    "rust_model*",
]


def pack_batches(
    lengths: Sequence[int] | np.ndarray, batch_tokens: int, *, sort: bool = True
) -> list[np.ndarray]:
    """Group row indices into batches whose padded size `rows * max(length)` <= `batch_tokens`.

    With `sort`, rows are taken shortest first (stable), so each batch holds rows of
    similar length and little padding; without it, rows are packed in input order.
    A single row longer than `batch_tokens` gets a batch of its own.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(lengths, kind="stable") if sort else np.arange(len(lengths))
    batches: list[np.ndarray] = []
    current: list[int] = []
    longest = 0
    for i in order.tolist():
        grown = max(longest, int(lengths[i]))
        if current and (len(current) + 1) * grown > batch_tokens:
            batches.append(np.asarray(current, dtype=np.int64))
            current, grown = [], int(lengths[i])
        current.append(i)
        longest = grown
    if current:
        batches.append(np.asarray(current, dtype=np.int64))
    return batches


def cut_to_tokens(tokenizer: Any, texts: Sequence[str], limit: int) -> list[str]:
    """Each text cut after its first `limit` tokens of `tokenizer` (a fast tokenizer; no
    special tokens counted), at the end of that token's characters."""
    if not texts:
        return []
    enc = tokenizer(
        list(texts),
        add_special_tokens=False,
        truncation=True,
        max_length=limit + 1,
        return_offsets_mapping=True,
    )
    return [
        t[: offsets[limit - 1][1]] if len(offsets) > limit else t
        for t, offsets in zip(texts, enc["offset_mapping"], strict=True)
    ]


def resolve_model_path(model: str) -> Path:
    """A local folder for `model`: the folder itself, or a hub id's cached snapshot.

    Raises `ModelLoadError` with instructions when the model is neither a folder nor
    obtainable from the Hugging Face hub (offline, unknown id, no network).
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path} is not a Hugging Face model folder (no config.json)")
        return path
    if path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1:
        raise ModelLoadError(f"model folder {model} does not exist")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id=model, ignore_patterns=_HUB_IGNORE))
    except Exception as exc:  # hub errors: offline, unknown repo, network, auth
        raise ModelLoadError(
            f"cannot load model {model!r} from the Hugging Face hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
            f"Download it where there is network (`hf download {model} --local-dir DIR`) "
            "and pass the folder instead; with HF_HUB_OFFLINE=1 only models already in "
            "the Hugging Face cache are found."
        ) from exc


def load_config_and_tokenizer(path: Path) -> tuple[Any, Any]:
    """The transformers config and tokenizer saved in the model folder `path`.

    Raises `ModelLoadError` when either cannot be read.
    """
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(str(path))
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load config/tokenizer from {path}: {exc}") from exc
    return config, tokenizer


def on_cpu(device: str | None) -> bool:
    """Whether `device` (None meaning the default) is the CPU: "cpu" or "cpu:N"."""
    return device is None or str(device).startswith("cpu")


def require_fast_tokenizer(tokenizer: Any, model: str) -> None:
    """Raise `ModelLoadError` unless `tokenizer` (of `model`) is a fast (Rust) tokenizer:
    windows and token cuts need its offset mapping."""
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(
            f"{model}: a fast (Rust) tokenizer is required; add tokenizer.json to the folder"
        )
