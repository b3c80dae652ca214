"""Reranker spec strings: one grammar for the CLI, config files, the server and evaluation.

Grammar (the kind is everything before the first ':'):

    none
    bi-encoder[:MODEL]                      MODEL as for `shortlist.retrieve.encoders.load_encoder`
    cross-encoder:HF_ID_OR_PATH[?PARAMS]    PARAMS = name=value&... (see `describe_specs()`)
    colbert:HF_ID_OR_PATH[?PARAMS]          a PyLate-format ColBERT checkpoint
    llm-reranker:HF_ID_OR_PATH[?PARAMS]     a causal LM scored by its yes/no logits
    cohere:MODEL | voyage:MODEL | jina:MODEL
    tei:URL                                 the URL is kept whole, ':' and '?' included
    listwise:URL?model=NAME[&PARAMS]        an OpenAI-compatible chat server (RankGPT)
    cascade:SPEC_A>M>SPEC_B                 A scores all candidates, keeps M for B

Only kinds with parameters (`cross-encoder`, `llm-reranker`, `colbert`, `listwise`) take
a query part, and only its LAST '?' starts it, so a path with a '?' earlier still works.
`cascade` splits at the first `>M>` (M an integer), so B may itself be a cascade. Switching
models is a change of this string, not of code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

from shortlist.errors import SpecError
from shortlist.rerank.base import Reranker
from shortlist.runtime import BACKENDS

# Built from the backend registry itself, so the spec grammar never drifts from it.
CROSS_ENCODER_BACKENDS = tuple(BACKENDS)


@dataclass(frozen=True)
class Param:
    """One typed query parameter of a spec."""

    parse: Callable[[str], Any]
    help: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class RerankerSpec:
    """A parsed spec: `kind`, `target` (model id, path or URL; '' when absent), typed `params`."""

    kind: str
    target: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def __str__(self) -> str:
        out = self.kind if not self.target else f"{self.kind}:{self.target}"
        if self.params:
            out += "?" + "&".join(f"{k}={v}" for k, v in self.params.items())
        return out


@dataclass(frozen=True)
class _Kind:
    factory: Callable[..., Reranker]
    help: str
    example: str
    target: str  # "none", "optional" or "required"
    params: Mapping[str, Param] = field(default_factory=dict)
    options: tuple[str, ...] = ()  # keyword options load_reranker may pass to the factory


def _positive_int(value: str) -> int:
    n = int(value)
    if n <= 0:
        raise ValueError("must be a positive integer")
    return n


# --- factories: each imports its implementation lazily -------------------------------


def _none(spec: RerankerSpec, **options: Any) -> Reranker:
    from shortlist.rerank.passthrough import NoRerank

    return NoRerank(name=str(spec))


def _bi_encoder(spec: RerankerSpec, **options: Any) -> Reranker:
    from shortlist.rerank.bi_encoder import BiEncoderReranker

    return BiEncoderReranker(spec.target or "default", name=str(spec), **options)


def _cross_encoder(spec: RerankerSpec, **options: Any) -> Reranker:
    from shortlist.rerank.cross_encoder import CrossEncoderReranker

    # Spec parameters win over keyword options: the spec string is the user's last word.
    kwargs = {**options, **dict(spec.params)}
    reranker: Reranker = CrossEncoderReranker(spec.target, name=str(spec), **kwargs)
    return reranker


def _positive_float(value: str) -> float:
    x = float(value)
    if not x > 0 or x == float("inf"):
        raise ValueError("must be a positive number")
    return x


def _price(value: str) -> float:
    x = float(value)
    if not 0 <= x < float("inf"):
        raise ValueError("must be a price >= 0 in USD per million tokens")
    return x


def _listwise(spec: RerankerSpec, **options: Any) -> Reranker:
    from shortlist.rerank.api.listwise import ListwiseReranker

    params = dict(spec.params)
    # Spec parameters win over keyword options: the spec string is the user's last word.
    if "retries" in params:
        options["max_retries"] = params.pop("retries")
    return ListwiseReranker(spec.target, **{**options, **params, "name": str(spec)})


def _colbert(spec: RerankerSpec, **options: Any) -> Reranker:
    from shortlist.rerank.colbert import ColbertReranker

    kwargs = {**options, **dict(spec.params)}
    reranker: Reranker = ColbertReranker(spec.target, name=str(spec), **kwargs)
    return reranker


def _llm_reranker(spec: RerankerSpec, **options: Any) -> Reranker:
    from shortlist.rerank.llm_reranker import LLMReranker

    kwargs = {**options, **dict(spec.params)}
    reranker: Reranker = LLMReranker(spec.target, name=str(spec), **kwargs)
    return reranker


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _api(module: str, cls: str) -> Callable[..., Reranker]:
    def factory(spec: RerankerSpec, **options: Any) -> Reranker:
        import importlib

        reranker: Reranker = getattr(importlib.import_module(module), cls)(spec.target, **options)
        return reranker

    return factory


def _cascade(spec: RerankerSpec, **options: Any) -> Reranker:
    from shortlist.rerank.cascade import CascadeReranker

    first, keep, second = _split_cascade(spec.target)
    unused = set(options) - set(_options_for(first, options)) - set(_options_for(second, options))
    if unused:
        raise SpecError(
            f"no stage of {spec} takes option(s) {', '.join(sorted(unused))}"
        )
    return CascadeReranker(
        load_reranker(first, **_options_for(first, options)),
        keep,
        load_reranker(second, **_options_for(second, options)),
    )


_API_OPTIONS = ("api_key", "base_url", "timeout", "max_retries")

REGISTRY: dict[str, _Kind] = {
    "none": _Kind(
        _none,
        "keep the first-stage order (baseline; calibrated score = 1/rank)",
        "none",
        "none",
    ),
    "bi-encoder": _Kind(
        _bi_encoder,
        "cosine between query and passage embeddings (offline default: all-MiniLM-L6-v2)",
        "bi-encoder:default",
        "optional",
        options=("encoder", "vector_source"),
    ),
    "cross-encoder": _Kind(
        _cross_encoder,
        "local cross-encoder by Hugging Face id or folder",
        "cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2?backend=onnx-int8",
        "required",
        params={
            "backend": Param(str, "inference backend", CROSS_ENCODER_BACKENDS),
            "max_length": Param(_positive_int, "tokens per (query, passage) window"),
            "batch_tokens": Param(_positive_int, "token budget per batch"),
            # Values are checked by CrossEncoderReranker, which owns the aggregations.
            "aggregate": Param(str, "how window scores of a long document combine, e.g. max"),
            "window_stride": Param(_positive_int, "tokens between window starts"),
            "device": Param(str, "torch device, e.g. cpu or cuda"),
        },
        options=("cache_dir", "device", "num_threads"),
    ),
    "colbert": _Kind(
        _colbert,
        "late interaction (ColBERT, PyLate checkpoint): MaxSim over token embeddings",
        "colbert:lightonai/answerai-colbert-small-v1",
        "required",
        params={
            "query_length": Param(_positive_int, "query tokens incl. marker and expansion"),
            "document_length": Param(_positive_int, "tokens per document window"),
            "batch_tokens": Param(_positive_int, "token budget per batch"),
            "aggregate": Param(str, "how window scores of a long document combine, e.g. max"),
            "window_stride": Param(_positive_int, "tokens shared by consecutive windows"),
            "device": Param(str, "torch device, e.g. cpu or cuda"),
        },
        options=("device", "num_threads"),
    ),
    "llm-reranker": _Kind(
        _llm_reranker,
        "causal-LM reranker scored by its answer-token logits, by Hugging Face id or folder "
        "(families: shortlist.rerank.llm_reranker.RECIPES)",
        "llm-reranker:Qwen/Qwen3-Reranker-0.6B?instruction=Given%20a%20question,%20find%20answers",
        "required",
        params={
            # Names are checked by LLMReranker against its recipe registry.
            "template": Param(str, "family (a RECIPES key; default: by architecture) or .json"),
            "instruction": Param(unquote, "query instruction (URL-encoded spaces allowed)"),
            "max_length": Param(_positive_int, "tokens per (prompt, document window)"),
            "batch_tokens": Param(_positive_int, "token budget per batch"),
            "aggregate": Param(str, "how window scores of a long document combine, e.g. max"),
            "window_stride": Param(_positive_int, "tokens shared by consecutive windows"),
            "dtype": Param(str, "weights and activations", ("auto", "float32", "bfloat16", "int8")),
            "prefix_reuse": Param(_boolean, "share each query's prefix key/value cache"),
            "device": Param(str, "torch device, e.g. cpu or cuda"),
        },
        options=("device", "num_threads"),
    ),
    "cohere": _Kind(
        _api("shortlist.rerank.api.cohere", "CohereReranker"),
        "Cohere /v2/rerank (key: CO_API_KEY or api_key=)",
        "cohere:rerank-v3.5",
        "required",
        options=(*_API_OPTIONS, "api_version"),
    ),
    "voyage": _Kind(
        _api("shortlist.rerank.api.voyage", "VoyageReranker"),
        "Voyage AI rerank API",
        "voyage:rerank-2",
        "required",
        options=_API_OPTIONS,
    ),
    "jina": _Kind(
        _api("shortlist.rerank.api.jina", "JinaReranker"),
        "Jina AI rerank API",
        "jina:jina-reranker-v2-base-multilingual",
        "required",
        options=_API_OPTIONS,
    ),
    "tei": _Kind(
        _api("shortlist.rerank.api.tei", "TEIReranker"),
        "a text-embeddings-inference server's /rerank endpoint "
        "(API key from the variable named by ?api_key_env=VAR)",
        "tei:http://localhost:8080",
        "required",
        options=("api_key", "timeout", "max_retries"),
    ),
    "listwise": _Kind(
        _listwise,
        "RankGPT listwise reranking by an LLM behind an OpenAI-compatible "
        "/v1/chat/completions (vLLM, llama.cpp server, Ollama); no key sent unless key_env=",
        "listwise:http://localhost:8000/v1?model=Qwen/Qwen2.5-7B-Instruct&window=20&step=10",
        "required",
        params={
            "model": Param(str, "served model name (required)"),
            "window": Param(_positive_int, "passages per request (default 20)"),
            "step": Param(_positive_int, "how far each window moves up (default window/2)"),
            "context": Param(_positive_int, "the model's context length in tokens (default 4096)"),
            "passage_tokens": Param(
                _positive_int, "tokens kept per passage (default: what fits, at most 300)"
            ),
            "budget": Param(_positive_float, "seconds per query, all windows (default none)"),
            "timeout": Param(_positive_float, "seconds per request (default 30)"),
            "retries": Param(int, "retries per request on 429/5xx/timeouts (default 5)"),
            "key_env": Param(str, "environment variable holding the API key"),
            "price_in": Param(_price, "USD per 1M prompt tokens, for eval's cost column"),
            "price_out": Param(_price, "USD per 1M completion tokens"),
        },
        options=("api_key", "timeout", "max_retries", "client"),
    ),
    "cascade": _Kind(
        _cascade,
        "cheap SPEC_A scores all and keeps M for expensive SPEC_B",
        "cascade:bi-encoder>30>cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2",
        "required",
    ),
}


def available_rerankers() -> list[str]:
    """The spec kinds `load_reranker` understands."""
    return list(REGISTRY)


def describe_specs() -> str:
    """Help text for spec strings, built from the registry (for `--help` and error messages)."""
    lines = ["Reranker specs (KIND[:TARGET][?PARAMS]):"]
    for kind, entry in REGISTRY.items():
        lines.append(f"  {kind:<14} {entry.help}")
        lines.append(f"  {'':<14} e.g. {entry.example}")
        for name, p in entry.params.items():
            choices = f" ({'|'.join(p.choices)})" if p.choices else ""
            lines.append(f"  {'':<16}?{name}=...  {p.help}{choices}")
    return "\n".join(lines)


_CASCADE = re.compile(r">(\d+)>")


def _split_cascade(target: str) -> tuple[str, int, str]:
    m = _CASCADE.search(target)
    if m is None or not target[: m.start()] or not target[m.end() :]:
        raise SpecError(
            f"cascade spec {target!r} must look like SPEC_A>M>SPEC_B, "
            "e.g. cascade:bi-encoder>30>cross-encoder:MODEL"
        )
    keep = int(m.group(1))
    if keep <= 0:
        raise SpecError(f"cascade keeps M={keep} candidates; M must be a positive integer")
    return target[: m.start()], keep, target[m.end() :]


def _parse_params(kind: str, entry: _Kind, query: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    valid = ", ".join(entry.params) or "none"
    for item in query.split("&"):
        if not item:
            continue
        name, sep, raw = item.partition("=")
        param = entry.params.get(name)
        if param is None:
            raise SpecError(f"unknown parameter {name!r} for {kind}; valid parameters: {valid}")
        if not sep or raw == "":
            raise SpecError(f"parameter {name!r} of {kind} needs a value: {name}=VALUE")
        if param.choices and raw not in param.choices:
            raise SpecError(
                f"{kind} parameter {name}={raw!r} is not valid; choose one of: "
                + ", ".join(param.choices)
            )
        try:
            params[name] = param.parse(raw)
        except ValueError as exc:
            raise SpecError(f"{kind} parameter {name}={raw!r} is not valid: {exc}") from exc
    return params


def parse_spec(spec: str) -> RerankerSpec:
    """Parse a spec string; raise `SpecError` naming the valid kinds or parameters."""
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError("empty reranker spec; " + _valid_kinds())
    spec = spec.strip()
    kind, _, target = spec.partition(":")
    entry = REGISTRY.get(kind)
    if entry is None:
        raise SpecError(f"unknown reranker kind {kind!r}; " + _valid_kinds())
    params: dict[str, Any] = {}
    if entry.params and "?" in target:
        target, _, query = target.rpartition("?")
        params = _parse_params(kind, entry, query)
    if entry.target == "required" and not target:
        raise SpecError(f"{kind} needs a target, e.g. {entry.example}")
    if entry.target == "none" and target:
        raise SpecError(f"{kind} takes no target; write just {kind!r}")
    if kind == "cascade":
        first, _, second = _split_cascade(target)
        parse_spec(first)
        parse_spec(second)
    return RerankerSpec(kind=kind, target=target, params=params)


def _valid_kinds() -> str:
    return "valid kinds: " + ", ".join(REGISTRY) + " (see `shortlist rerank --help`)"


def _options_for(spec: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `options` the spec's kind accepts (a cascade hands each stage its own)."""
    kind = spec.partition(":")[0].strip()
    entry = REGISTRY.get(kind)
    if entry is None:
        return {}
    accepted = set(entry.options) | ({"cache"} if kind != "cascade" else set())
    if kind == "cascade":
        return dict(options)
    return {k: v for k, v in options.items() if k in accepted}


def load_reranker(spec: str, **options: Any) -> Reranker:
    """Build the reranker a spec string names.

    `options` are keyword arguments that do not belong in a spec string (an API key,
    an encoder object, a `cache`); each kind accepts the ones listed in its registry
    entry, plus `cache` (a `ScoreCache`), which wraps pair-scoring rerankers in a
    `CachedReranker`. Raises `SpecError` for a bad spec or an option the kind does not
    take, `MissingDependencyError` when the implementation's extra is not installed.
    """
    parsed = parse_spec(spec)
    entry = REGISTRY[parsed.kind]
    if parsed.kind != "cascade":
        accepted = (*entry.options, "cache")
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise SpecError(
                f"{parsed.kind} does not take option(s) {', '.join(unknown)}; "
                f"it takes: {', '.join(accepted)}"
            )
    opts = dict(options)
    cache = opts.pop("cache", None) if parsed.kind != "cascade" else None
    reranker = entry.factory(parsed, **opts)
    if cache is not None:
        from shortlist.rerank.cache import CachedReranker

        reranker = CachedReranker(reranker, cache)
    return reranker
