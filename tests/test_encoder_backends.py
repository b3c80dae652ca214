"""Dense encoder backends: the registry, spec parsing, agreement with sentence-transformers
on a tiny random-weight BERT bi-encoder, caching of exports, and the index's backend pin."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shortlist.errors import IndexCompatibilityError, InvalidInputError, ModelLoadError, SpecError
from shortlist.retrieve.encoder_backends import (
    ENCODER_BACKENDS,
    EncoderOptions,
    load_encoder_backend,
    pool,
    read_layout,
)
from shortlist.retrieve.encoders import load_encoder, parse_encoder_spec
from shortlist.store.index import Index
from shortlist.types import Document

sys.path.insert(0, str(Path(__file__).parent))
from models import WORDS, build_tiny_sentence_transformer, corpus  # noqa: E402

TEXTS = [*corpus(24, seed=3), " ".join(WORDS), "cat", ""]


# --- registry and spec errors ----------------------------------------------------------------


def test_unknown_backend_names_every_valid_one() -> None:
    with pytest.raises(SpecError) as err:
        load_encoder("default?backend=tensorrt")
    for name in ENCODER_BACKENDS:
        assert name in str(err.value)
    with pytest.raises(SpecError) as err:
        load_encoder_backend("tensorrt", "default", EncoderOptions())
    for name in ENCODER_BACKENDS:
        assert name in str(err.value)


def test_spec_parameters_are_checked() -> None:
    assert parse_encoder_spec("default").backend is None
    parsed = parse_encoder_spec("./m?backend=onnx-int8&batch_tokens=512")
    assert (parsed.base, parsed.backend, parsed.batch_tokens) == ("./m", "onnx-int8", 512)
    with pytest.raises(SpecError, match="valid parameters: backend, batch_tokens"):
        parse_encoder_spec("default?threads=2")
    with pytest.raises(SpecError, match="positive integer"):
        parse_encoder_spec("default?batch_tokens=0")
    with pytest.raises(SpecError, match="needs a value"):
        parse_encoder_spec("default?backend=")
    with pytest.raises(SpecError, match="sentence-transformers models"):
        load_encoder("hashing:16?backend=onnx")
    with pytest.raises(InvalidInputError, match="num_threads"):
        load_encoder_backend("onnx", "default", EncoderOptions(num_threads=0))


def test_pooling_matches_hand_computed_values() -> None:
    hidden = np.array([[[1.0, 2.0], [3.0, -4.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    np.testing.assert_allclose(pool(hidden, mask, "mean"), [[2.0, -1.0]])
    np.testing.assert_allclose(pool(hidden, mask, "cls"), [[1.0, 2.0]])
    np.testing.assert_allclose(pool(hidden, mask, "max"), [[3.0, 2.0]])


# --- a tiny sentence-transformers model on every backend ----------------------------------------


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("st")
    return {
        pooling: build_tiny_sentence_transformer(root / pooling, pooling=pooling)
        for pooling in ("mean", "cls", "max")
    }


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _needs(backend: str) -> None:
    extra = "onnx" if backend.startswith("onnx") else "openvino"
    modules = {"onnx": ["onnxruntime", "onnx"], "openvino": ["openvino", "nncf"]}[extra]
    for module in modules:
        pytest.importorskip(module, reason=f"{module} missing: pip install -e '.[{extra}]'")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.sum(a * b, axis=1))


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_fp32_backends_agree_with_sentence_transformers(
    tiny_models: dict[str, Path], cache: Path, backend: str, pooling: str
) -> None:
    _needs(backend)
    folder = str(tiny_models[pooling])
    reference = load_encoder(folder)
    # A small token budget forces several length-sorted batches.
    exported = load_encoder(f"{folder}?backend={backend}&batch_tokens=64", cache_dir=cache)
    ref, got = reference.encode(TEXTS), exported.encode(TEXTS)
    assert got.shape == ref.shape == (len(TEXTS), 32)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    assert float(np.max(1.0 - _cosines(ref, got))) < 1e-4
    # One text alone gets the same vector as inside a batch (padding does not leak).
    np.testing.assert_allclose(exported.encode([TEXTS[5]])[0], got[5], atol=1e-5)
    assert exported.encode([]).shape == (0, 32)


@pytest.mark.parametrize("backend", ["onnx-int8", "openvino-int8"])
def test_int8_backends_stay_close(tiny_models: dict[str, Path], cache: Path, backend: str) -> None:
    _needs(backend)
    folder = str(tiny_models["mean"])
    ref = load_encoder(folder).encode(TEXTS)
    got = load_encoder(f"{folder}?backend={backend}", cache_dir=cache).encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    assert float(np.min(_cosines(ref, got))) > 0.9


def test_identity_records_the_backend(tiny_models: dict[str, Path], cache: Path) -> None:
    _needs("onnx")
    folder = str(tiny_models["mean"])
    torch_id = load_encoder(folder).identity
    onnx_id = load_encoder(f"{folder}?backend=onnx", cache_dir=cache).identity
    assert torch_id["backend"] == "torch"
    assert onnx_id["backend"] == "onnx"
    # Same model, same weights: only the backend tells them apart.
    assert {k: v for k, v in onnx_id.items() if k != "backend"} == {
        k: v for k, v in torch_id.items() if k != "backend"
    }


def test_exports_are_cached_not_redone(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _needs("onnx")
    import shortlist.retrieve.encoder_backends as eb

    folder = str(tiny_models["mean"])
    first = load_encoder(f"{folder}?backend=onnx", cache_dir=tmp_path).encode(TEXTS)
    exported = sorted(p.name for p in (tmp_path / "dense").iterdir())
    assert len(exported) == 1 and exported[0].startswith("onnx-")

    def no_export(*args: Any) -> None:
        raise AssertionError("exported again although the cache holds the model")

    monkeypatch.setattr(eb, "_export_onnx", no_export)
    again = load_encoder(f"{folder}?backend=onnx", cache_dir=tmp_path).encode(TEXTS)
    np.testing.assert_array_equal(first, again)


def test_models_with_other_modules_need_torch(tmp_path: Path) -> None:
    folder = build_tiny_sentence_transformer(tmp_path / "dense", extra_module="Dense")
    with pytest.raises(ModelLoadError, match="backend=torch"):
        read_layout(folder, "onnx")


# --- the index pins the backend ---------------------------------------------------------------


class _Encoder:
    """A hashing-like fake with a sentence-transformers identity and a chosen backend."""

    def __init__(self, backend: str | None) -> None:
        from shortlist.retrieve.encoders import HashingEncoder

        self._inner = HashingEncoder(dim=16)
        self._backend = backend
        self.spec = "default"

    @property
    def dim(self) -> int:
        return 16

    @property
    def identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {
            "kind": "sentence-transformers",
            "model": "default",
            "dim": 16,
            "weights_sha256": "abc",
        }
        if self._backend is not None:
            ident["backend"] = self._backend
        return ident

    def encode(
        self, texts: Any, *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        return self._inner.encode(texts)


DOCS = [Document(id=f"d{i}", text=t) for i, t in enumerate(corpus(6))]


def test_querying_with_another_backend_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    Index.create(tmp_path / "ix", DOCS, encoder=_Encoder("onnx-int8"))
    manifest_identity = Index.open(tmp_path / "ix").encoder_identity
    assert manifest_identity is not None and manifest_identity["backend"] == "onnx-int8"
    Index.open(tmp_path / "ix", encoder=_Encoder("onnx-int8"))  # same backend: fine
    with pytest.raises(IndexCompatibilityError) as err:
        Index.open(tmp_path / "ix", encoder=_Encoder("torch"))
    message = str(err.value)
    assert "'onnx-int8'" in message and "'torch'" in message
    assert "default?backend=onnx-int8" in message and "--overwrite" in message


def test_indexes_without_a_backend_are_torch(tmp_path: Path) -> None:
    Index.create(tmp_path / "old", DOCS, encoder=_Encoder(None))  # written before backends
    Index.open(tmp_path / "old", encoder=_Encoder("torch"))
    with pytest.raises(IndexCompatibilityError, match="backend 'torch'"):
        Index.open(tmp_path / "old", encoder=_Encoder("openvino"))


def test_an_index_is_queried_on_the_backend_it_was_built_with() -> None:
    from shortlist.retrieve.encoders import pin_backend

    st = {"kind": "sentence-transformers", "model": "default", "dim": 384}
    assert pin_backend("default", st) == "default?backend=torch"  # pre-backend manifest
    assert pin_backend("default", {**st, "backend": "onnx"}) == "default?backend=onnx"
    assert (
        pin_backend("./m?batch_tokens=512", {**st, "backend": "openvino"})
        == "./m?batch_tokens=512&backend=openvino"
    )
    assert pin_backend("default?backend=onnx", {**st, "backend": "onnx"}) == "default?backend=onnx"
    assert pin_backend("hashing:16", {"kind": "hashing", "dim": 16}) == "hashing:16"
    assert pin_backend("default", None) == "default"


def test_index_loads_its_encoder_on_the_recorded_backend(
    tiny_models: dict[str, Path], cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _needs("onnx")
    import shortlist.retrieve.encoders as encoders

    folder = str(tiny_models["mean"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache.parent / "xdg"))
    Index.create(tmp_path / "ix", DOCS, encoder=f"{folder}?backend=onnx")
    seen: list[str] = []
    real = encoders.load_encoder

    def spy(spec: str, **kwargs: Any) -> Any:
        seen.append(spec)
        return real(spec, **kwargs)

    monkeypatch.setattr(encoders, "load_encoder", spy)
    index = Index.open(tmp_path / "ix", num_threads=1)
    assert index.search(DOCS[0].text, k=1, mode="dense").hits[0].doc_id == "d0"
    assert seen == [f"{folder}?backend=onnx"]
    assert index.encoder.identity["backend"] == "onnx"


def test_bi_encoder_reuses_vectors_of_indexes_written_before_backends(tmp_path: Path) -> None:
    from shortlist.rerank.bi_encoder import BiEncoderReranker

    index = Index.create(tmp_path / "old", DOCS, encoder=_Encoder(None))
    reranker = BiEncoderReranker("default", encoder=_Encoder("torch"), vector_source=index)
    hits = index.search(DOCS[1].text, k=3, mode="bm25").hits
    stored, mask = reranker._stored(list(hits))
    assert stored is not None and mask.all()  # same model, torch both: no re-encoding
    other = BiEncoderReranker("default", encoder=_Encoder("onnx-int8"), vector_source=index)
    assert other._stored(list(hits))[0] is None  # int8 vectors are not the index's


def test_calibration_subset_is_spread_over_the_shipped_texts() -> None:
    from shortlist.retrieve.encoder_backends import _CALIBRATION_TEXTS, calibration_texts

    every = calibration_texts()
    assert len(every) == 388 == len(set(every))
    assert calibration_texts(len(every) + 10) == every
    # Existing openvino-int8 indexes were encoded by a model calibrated on all of them.
    assert calibration_texts(_CALIBRATION_TEXTS) == every
    subset = calibration_texts(64)
    assert len(subset) == len(set(subset)) == 64
    positions = [every.index(t) for t in subset]
    assert positions == sorted(positions) and positions[0] == 0
    assert positions[-1] >= len(every) - len(every) // 64 - 1  # reaches the end of the file
    assert calibration_texts(1) == every[:1]
    with pytest.raises(InvalidInputError, match="calibration limit"):
        calibration_texts(0)


# --- the backend of a spec without ?backend= --------------------------------------------------


@pytest.mark.parametrize(("cuda", "expected"), [(False, "openvino-int8"), (True, "torch")])
def test_default_model_runs_int8_on_cpu_and_torch_on_a_gpu(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, expected: str
) -> None:
    import torch

    from shortlist.retrieve.encoder_backends import DEFAULT_MODEL_BACKEND, default_backend

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert default_backend("default") == expected
    assert DEFAULT_MODEL_BACKEND == "openvino-int8"
    # Other models keep torch: their int8 quality has not been measured.
    assert default_backend("BAAI/bge-small-en-v1.5") == "torch"
    assert default_backend("./my-model") == "torch"


def _spy_backends(monkeypatch: pytest.MonkeyPatch, seen: list[tuple[str, str]]) -> None:
    """Make every backend load return a fake that records (backend, model)."""
    import shortlist.retrieve.encoder_backends as eb

    def fake(backend: str, model: str, options: EncoderOptions) -> Any:
        seen.append((backend, model))
        return _Encoder(backend)

    monkeypatch.setattr(eb, "load_encoder_backend", fake)


def test_default_without_a_backend_resolves_to_the_default_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    seen: list[tuple[str, str]] = []
    _spy_backends(monkeypatch, seen)
    load_encoder("default")
    load_encoder("default?batch_tokens=512")
    load_encoder("default?backend=torch")
    load_encoder("./some-model")
    assert seen == [
        ("openvino-int8", "default"),
        ("openvino-int8", "default"),
        ("torch", "default"),
        ("torch", "./some-model"),
    ]


def test_new_indexes_take_the_new_default_and_old_ones_keep_theirs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    seen: list[tuple[str, str]] = []
    _spy_backends(monkeypatch, seen)
    new = Index.create(tmp_path / "new", DOCS, encoder="default")
    assert new.encoder_identity is not None
    assert new.encoder_identity["backend"] == "openvino-int8"
    # Indexes written by torch: explicitly (backend recorded) and before backends existed.
    Index.create(tmp_path / "torch", DOCS, encoder=_Encoder("torch"))
    Index.create(tmp_path / "old", DOCS, encoder=_Encoder(None))
    seen.clear()
    for name in ("new", "torch", "old"):
        index = Index.open(tmp_path / name)
        index.search(DOCS[0].text, k=1, mode="dense")
    assert seen == [("openvino-int8", "default"), ("torch", "default"), ("torch", "default")]
