"""ONNX artifacts shipped inside a model folder are used only for the weights they match."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from shortlist.runtime.onnx import FP32, INT8, shipped_artifact, weights_key


def _folder(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    (model / "onnx").mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (model / "model.safetensors").write_bytes(b"weights v1")
    (model / "onnx" / "model_int8.onnx").write_bytes(b"not really onnx")
    manifest = {
        "format": 1,
        "artifacts": {
            "model_int8.onnx": {"options": asdict(INT8), "weights": weights_key(model)}
        },
    }
    (model / "onnx" / "shortlist.json").write_text(json.dumps(manifest), encoding="utf-8")
    return model


def test_matching_artifact_is_found(tmp_path: Path) -> None:
    model = _folder(tmp_path)
    assert shipped_artifact(model, INT8) == model / "onnx" / "model_int8.onnx"
    assert shipped_artifact(model, FP32) is None  # other options: not this file


def test_artifact_of_other_weights_is_ignored(tmp_path: Path) -> None:
    model = _folder(tmp_path)
    (model / "model.safetensors").write_bytes(b"weights v2")
    assert shipped_artifact(model, INT8) is None


@pytest.mark.parametrize("manifest", ["{broken", "[]", '{"artifacts": {"x.onnx": 3}}'])
def test_unreadable_manifest_means_no_artifact(tmp_path: Path, manifest: str) -> None:
    model = _folder(tmp_path)
    (model / "onnx" / "shortlist.json").write_text(manifest, encoding="utf-8")
    assert shipped_artifact(model, INT8) is None


def test_no_onnx_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    assert shipped_artifact(tmp_path, INT8) is None
