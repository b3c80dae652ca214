"""Spec parsing and loading."""

from __future__ import annotations

import pytest

from rerank_fakes import BagOfWordsEncoder
from shortlist.errors import SpecError
from shortlist.rerank.bi_encoder import BiEncoderReranker
from shortlist.rerank.cache import CachedReranker, MemoryScoreCache
from shortlist.rerank.cascade import CascadeReranker
from shortlist.rerank.passthrough import NoRerank
from shortlist.rerank.registry import (
    REGISTRY,
    RerankerSpec,
    available_rerankers,
    describe_specs,
    load_reranker,
    parse_spec,
)


@pytest.mark.parametrize(
    ("spec", "kind", "target", "params"),
    [
        ("none", "none", "", {}),
        ("bi-encoder", "bi-encoder", "", {}),
        ("bi-encoder:hashing:64", "bi-encoder", "hashing:64", {}),
        ("cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2", "cross-encoder",
         "cross-encoder/ms-marco-MiniLM-L-6-v2", {}),
        ("cross-encoder:/models/x?backend=onnx-int8&max_length=256", "cross-encoder",
         "/models/x", {"backend": "onnx-int8", "max_length": 256}),
        # only the LAST '?' starts the parameters
        ("cross-encoder:/odd?dir/m?backend=openvino", "cross-encoder", "/odd?dir/m",
         {"backend": "openvino"}),
        ("cross-encoder:C:/models/x", "cross-encoder", "C:/models/x", {}),
        ("cohere:rerank-v3.5", "cohere", "rerank-v3.5", {}),
        ("voyage:rerank-2", "voyage", "rerank-2", {}),
        ("jina:jina-reranker-v2-base-multilingual", "jina",
         "jina-reranker-v2-base-multilingual", {}),
        # a URL keeps its ':' and '?'
        ("tei:http://host:8080?x=1", "tei", "http://host:8080?x=1", {}),
        ("cascade:bi-encoder>30>cross-encoder:/m?backend=onnx", "cascade",
         "bi-encoder>30>cross-encoder:/m?backend=onnx", {}),
    ],
)
def test_parse_spec(spec: str, kind: str, target: str, params: dict) -> None:
    parsed = parse_spec(spec)
    assert parsed == RerankerSpec(kind, target, params)
    assert dict(parsed.params) == params


def test_spec_round_trips_through_str() -> None:
    for spec in ["none", "bi-encoder:hashing", "cross-encoder:/m?backend=onnx&max_length=128"]:
        assert str(parse_spec(spec)) == spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty reranker spec"),
        ("bm25", "unknown reranker kind 'bm25'"),
        ("cross-encoder", "needs a target"),
        ("none:x", "takes no target"),
        ("cross-encoder:/m?batch=3", "unknown parameter 'batch'"),
        ("cross-encoder:/m?backend=tensorrt", "choose one of: torch, torch-int8, onnx, onnx-int8"),
        ("cross-encoder:/m?max_length=-5", "max_length='-5'"),
        ("cross-encoder:/m?max_length=abc", "max_length='abc'"),
        ("cross-encoder:/m?max_length", "needs a value"),
        ("cascade:bi-encoder>cross-encoder:/m", "SPEC_A>M>SPEC_B"),
        ("cascade:bi-encoder>0>none", "positive"),
        ("cascade:bogus>5>none", "unknown reranker kind 'bogus'"),
    ],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("?", r"\?")):
        parse_spec(spec)


def test_unknown_kind_lists_every_registered_kind() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec("nope:x")
    for kind in REGISTRY:
        assert kind in str(err.value)


def test_unknown_param_names_the_valid_ones() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec("cross-encoder:/m?bogus=1")
    for name in REGISTRY["cross-encoder"].params:
        assert name in str(err.value)


def test_available_and_described() -> None:
    kinds = available_rerankers()
    assert kinds == list(REGISTRY)
    assert {"none", "bi-encoder", "cross-encoder", "cohere", "voyage", "jina", "tei",
            "cascade"} <= set(kinds)
    text = describe_specs()
    for kind in kinds:
        assert kind in text
    assert "onnx-int8" in text and "max_length" in text


def test_load_none_bi_encoder_and_cascade() -> None:
    none = load_reranker("none")
    assert isinstance(none, NoRerank) and none.name == "none"
    enc = BagOfWordsEncoder()
    bi = load_reranker("bi-encoder:fake", encoder=enc)
    assert isinstance(bi, BiEncoderReranker) and bi.name == "bi-encoder:fake"
    assert bi.encoder is enc
    cascade = load_reranker("cascade:bi-encoder:fake>2>none", encoder=enc)
    assert isinstance(cascade, CascadeReranker)
    assert cascade.keep == 2 and cascade.second.name == "none"
    assert cascade.name == "cascade:bi-encoder:fake>2>none"


def test_load_with_cache_wraps_pair_scorers() -> None:
    reranker = load_reranker("bi-encoder", encoder=BagOfWordsEncoder(), cache=MemoryScoreCache())
    assert isinstance(reranker, CachedReranker)
    with pytest.raises(SpecError, match="cannot be cached"):
        load_reranker("none", cache=MemoryScoreCache())


def test_options_a_kind_does_not_take_are_rejected() -> None:
    with pytest.raises(SpecError, match="does not take option"):
        load_reranker("none", api_key="k")
    with pytest.raises(SpecError, match="no stage of .* takes option"):
        load_reranker("cascade:none>3>bi-encoder", api_key="k")


def test_cross_encoder_factory_passes_typed_params(monkeypatch: pytest.MonkeyPatch) -> None:
    module = pytest.importorskip("shortlist.rerank.cross_encoder")
    seen: dict = {}

    def fake(model: str, **kwargs: object) -> object:
        seen.update(model=model, **kwargs)
        return NoRerank(name=str(kwargs["name"]))

    monkeypatch.setattr(module, "CrossEncoderReranker", fake)
    load_reranker("cross-encoder:/m?backend=onnx&max_length=128", cache_dir="/c")
    assert seen == {"model": "/m", "backend": "onnx", "max_length": 128, "cache_dir": "/c",
                    "name": "cross-encoder:/m?backend=onnx&max_length=128"}


@pytest.mark.parametrize(
    ("spec", "module", "cls"),
    [
        ("cohere:rerank-v3.5", "shortlist.rerank.api.cohere", "CohereReranker"),
        ("voyage:rerank-2", "shortlist.rerank.api.voyage", "VoyageReranker"),
        ("jina:jina-reranker-v2", "shortlist.rerank.api.jina", "JinaReranker"),
        ("tei:http://h:8080", "shortlist.rerank.api.tei", "TEIReranker"),
    ],
)
def test_api_factories(spec: str, module: str, cls: str) -> None:
    mod = pytest.importorskip(module)
    reranker = load_reranker(spec, api_key="k")
    assert isinstance(reranker, getattr(mod, cls))


def test_bi_encoder_hashing_spec_loads_real_encoder() -> None:
    pytest.importorskip("shortlist.retrieve.encoders")
    reranker = load_reranker("bi-encoder:hashing")
    ranking = reranker.rerank("solar energy", ["solar energy storage", "banana bread"])
    assert ranking[0].index == 0
