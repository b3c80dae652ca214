"""Encoders: the hashing fake, spec parsing, and one load of the real offline default model."""

from __future__ import annotations

import numpy as np
import pytest

from shortlist.errors import InvalidInputError, ModelLoadError
from shortlist.retrieve.encoder import Encoder
from shortlist.retrieve.encoders import (
    ENCODERS,
    HashingEncoder,
    SentenceTransformerEncoder,
    load_encoder,
)

TEXTS = [
    "The cat sat on the mat.",
    "A cat was sitting on the mat!",
    "Quarterly revenue grew by ten percent in Europe.",
    "",
]


def test_hashing_shape_dtype_norm() -> None:
    encoder = HashingEncoder(dim=32)
    vectors = encoder.encode(TEXTS)
    assert isinstance(encoder, Encoder)
    assert vectors.shape == (4, 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert encoder.encode([]).shape == (0, 32)


def test_hashing_is_deterministic_and_seeded() -> None:
    a = HashingEncoder(dim=64, seed=0).encode(TEXTS)
    b = HashingEncoder(dim=64, seed=0).encode(TEXTS)
    c = HashingEncoder(dim=64, seed=1).encode(TEXTS)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # Encoding one text alone gives the same vector as in a batch.
    np.testing.assert_array_equal(HashingEncoder(dim=64).encode([TEXTS[2]])[0], a[2])


def test_hashing_is_case_and_punctuation_insensitive() -> None:
    encoder = HashingEncoder()
    a, b = encoder.encode(["Hello, World!", "hello world"])
    np.testing.assert_allclose(a, b)


def test_hashing_similar_texts_score_higher() -> None:
    encoder = HashingEncoder(dim=256)
    cat, cat2, revenue, _ = encoder.encode(TEXTS)
    assert float(cat @ cat2) > float(cat @ revenue) + 0.3
    assert float(cat @ cat2) > 0.5


def test_hashing_identity_and_bad_args() -> None:
    assert HashingEncoder(dim=16, seed=3).identity == {
        "kind": "hashing",
        "model": "hashing",
        "dim": 16,
        "seed": 3,
    }
    with pytest.raises(InvalidInputError):
        HashingEncoder(dim=1)


def test_load_encoder_hashing_specs() -> None:
    encoder = load_encoder("hashing")
    assert isinstance(encoder, HashingEncoder) and encoder.dim == 64
    assert load_encoder("hashing:128").dim == 128
    with pytest.raises(InvalidInputError, match="integer"):
        load_encoder("hashing:wide")


@pytest.mark.parametrize(
    "spec", ["", "  ", "bogus:thing", "default:extra", "sentence-transformers:"]
)
def test_load_encoder_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        load_encoder(spec)
    if spec.strip() and spec.startswith("bogus"):
        for form, _ in ENCODERS.values():
            assert form in str(err.value)


def test_missing_model_offline_is_a_model_load_error(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_encoder(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        SentenceTransformerEncoder("shortlist-test/does-not-exist")
    with pytest.raises(ModelLoadError, match="pass its path"):
        load_encoder("sentence-transformers:shortlist-test/does-not-exist")


@pytest.fixture(scope="module")
def default_encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder("default")


def test_default_model_offline_paraphrase(default_encoder: SentenceTransformerEncoder) -> None:
    vectors = default_encoder.encode(
        [
            "How do I reset my password?",
            "What are the steps to change a forgotten password?",
            "The Eiffel Tower is in Paris.",
        ],
        batch_size=2,
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2
    identity = default_encoder.identity
    assert identity["kind"] == "sentence-transformers"
    assert identity["model"] == "default"
    assert identity["dim"] == 384
    assert len(identity["weights_sha256"]) == 16


@pytest.mark.slow  # calibrates the real model once (about a minute on 2 CPU cores)
def test_default_spec_runs_the_default_model_on_openvino_int8_on_cpu(
    default_encoder: SentenceTransformerEncoder,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    encoder = load_encoder("default", cache_dir=tmp_path_factory.mktemp("dense-cache"))
    assert encoder.identity["backend"] == "openvino-int8"
    texts = [
        "How do I reset my password?",
        "What are the steps to change a forgotten password?",
        "The Eiffel Tower is in Paris.",
    ]
    got, ref = encoder.encode(texts), default_encoder.encode(texts)
    assert float(got[0] @ got[1]) > float(got[0] @ got[2]) + 0.2
    cosines = np.sum(got * ref, axis=1)
    assert float(cosines.min()) > 0.98 and not np.allclose(got, ref, atol=1e-6)
