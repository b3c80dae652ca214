"""ONNX Runtime backends: `onnx` (fp32) and `onnx-int8` (dynamic int8 quantization).

The model is exported once with `torch.onnx` (dynamic batch and sequence axes) and kept
in a cache folder keyed by a hash of the weights, the config and the export options,
so a second load of the same model never re-exports. Artifacts are written to a
temporary folder beside their final place and renamed into it, so an interrupted
export never leaves a half-written model behind.

For BERT-family models (bert, roberta, xlm-roberta, electra) the exported graph is
first passed through ONNX Runtime's transformer optimizer, which fuses attention,
layer norm and GELU into single kernels; int8 quantizes that fused graph.

A model folder may also ship its artifacts: ``onnx/shortlist.json`` maps file names in
``onnx/`` to the options they were made with and the hash of the weights they were
made from (`ship_artifact` writes them; `shortlist train-reranker` does). A shipped
artifact whose weights hash and options match is used as is, with no export and no
cache, so a trained folder runs on `onnx-int8` offline wherever it is copied.

Why this exporter and not sentence-transformers' (`CrossEncoder(backend="onnx")`,
`export_dynamic_quantized_onnx_model`, issue #11): both are built on `optimum-onnx`, and
every release of it (up to 0.1.0) requires transformers<4.58, while sentence-transformers
6.x requires transformers>=5. pip finds no solution even for ST's own extra
(`pip install "sentence-transformers[onnx]==6.2.0"`: ResolutionImpossible), so that path
cannot be installed next to the transformers shortlist runs on. `benchmarks/export_compare.py`
times both paths in one run and skips ST's with the reason, to re-check when it resolves.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shortlist._fs import hash_file_into, publish_dir
from shortlist._optional import require
from shortlist.errors import ModelLoadError
from shortlist.runtime import MODEL_INPUTS, BackendOptions, default_cache_dir, model_feed

_FUSABLE = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "electra": "bert"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True, slots=True)
class OnnxOptions:
    """How the ONNX artifact is produced. Every field is part of the cache key.

    - `opset`: ONNX opset for `torch.onnx.export`;
    - `fuse`: run ONNX Runtime's transformer optimizer on BERT-family graphs;
    - `quantize`: None for fp32, else `"qint8"`/`"quint8"` weights for `quantize_dynamic`;
    - `per_channel`, `reduce_range`: passed to `quantize_dynamic`.
    """

    opset: int = 17
    fuse: bool = True
    quantize: str | None = None
    per_channel: bool = False
    reduce_range: bool = False


FP32 = OnnxOptions()
INT8 = OnnxOptions(quantize="qint8", per_channel=True)
"""Per-channel int8 weights: on this AVX2 (no VNNI) CPU it kept rank agreement with fp32
at 0.956 vs 0.86 per-tensor, at the same speed (benchmarks/rerank_latency.py)."""


def open_session(
    path: Path, *, num_threads: int | None, device: str | None, purpose: str
) -> tuple[Any, tuple[str, ...]]:
    """An ONNX Runtime session over `path` and the model inputs it takes (of `MODEL_INPUTS`).

    Full graph optimisation; `num_threads` intra-op threads (None: the runtime's default)
    whose idle workers sleep instead of spinning: under a competing busy process spinning
    workers steal the cores the working thread needs (`shortlist.threads`,
    benchmarks/search_contention.py). CUDA first when `device` names it. `purpose` names
    what needs onnxruntime in the error when it is missing.
    """
    ort = require("onnxruntime", "onnx", purpose)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if num_threads is not None:
        so.intra_op_num_threads = num_threads
        so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if (device or "cpu").startswith("cuda"):
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(path), sess_options=so, providers=providers)
    present = {i.name for i in session.get_inputs()}
    return session, tuple(n for n in MODEL_INPUTS if n in present)


class OnnxBackend:
    """An `onnxruntime.InferenceSession` over an exported sequence-classification model."""

    def __init__(self, path: Path, options: BackendOptions) -> None:
        self._session, self.input_names = open_session(
            path,
            num_threads=options.num_threads,
            device=options.device,
            purpose="the onnx cross-encoder backends",
        )
        self.path = path

    def run(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        token_type_ids: np.ndarray | None,
    ) -> np.ndarray:
        feed = model_feed(self.input_names, input_ids, attention_mask, token_type_ids)
        (logits,) = self._session.run(["logits"], feed)
        return np.asarray(logits, dtype=np.float32)


def load_fp32(options: BackendOptions) -> OnnxBackend:
    return OnnxBackend(onnx_model(options, FP32), options)


def load_int8(options: BackendOptions) -> OnnxBackend:
    return OnnxBackend(onnx_model(options, INT8), options)


def load_with(options: BackendOptions, onnx_options: OnnxOptions) -> OnnxBackend:
    """A backend built with non-default export/quantization options (used by benchmarks)."""
    return OnnxBackend(onnx_model(options, onnx_options), options)


def onnx_model(options: BackendOptions, onnx_options: OnnxOptions) -> Path:
    """Path of the ONNX file for this model and these options: shipped with the model
    folder (see the module docstring), else cached, made on first use."""
    require("onnxruntime", "onnx", "the onnx cross-encoder backends")
    shipped = shipped_artifact(options.model_path, onnx_options)
    if shipped is not None:
        return shipped
    require("onnx", "onnx", "exporting cross-encoders to ONNX")
    cache = (options.cache_dir or default_cache_dir()) / "onnx"
    fp32_options = OnnxOptions(opset=onnx_options.opset, fuse=onnx_options.fuse)
    fp32_dir = cache / artifact_key(options.model_path, fp32_options)
    fp32 = _materialize(fp32_dir, lambda out: _export(options.model_path, fp32_options, out))
    if onnx_options.quantize is None:
        return fp32
    q_dir = cache / artifact_key(options.model_path, onnx_options)
    return _materialize(q_dir, lambda out: _quantize(fp32, onnx_options, out))


def artifact_key(model_path: Path, onnx_options: OnnxOptions) -> str:
    """sha256 of config.json, the weight files' bytes, the options and the exporter versions."""
    import torch
    import transformers

    h = hashlib.sha256()
    meta = {
        "options": asdict(onnx_options),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "format": 1,
    }
    h.update(json.dumps(meta, sort_keys=True).encode())
    _hash_weights(h, model_path)
    return h.hexdigest()[:32]


def _hash_weights(h: Any, model_path: Path) -> None:
    files = [model_path / "config.json"]
    files += sorted(p for p in model_path.iterdir() if p.name.endswith(_WEIGHT_SUFFIXES))
    for p in files:
        h.update(p.name.encode())
        hash_file_into(h, p)


def weights_key(model_path: Path) -> str:
    """sha256 of config.json and the weight files' bytes (what a shipped artifact came from)."""
    h = hashlib.sha256()
    _hash_weights(h, model_path)
    return h.hexdigest()


SHIPPED_DIR = "onnx"
SHIPPED_MANIFEST = "shortlist.json"


def shipped_artifact(model_path: Path, onnx_options: OnnxOptions) -> Path | None:
    """The ONNX file shipped in `model_path/onnx/` for these options and these weights."""
    manifest = model_path / SHIPPED_DIR / SHIPPED_MANIFEST
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    artifacts = data.get("artifacts") if isinstance(data, dict) else None
    if not isinstance(artifacts, dict):
        return None
    wanted = asdict(onnx_options)
    candidates = [
        (model_path / SHIPPED_DIR / str(name), entry.get("weights"))
        for name, entry in artifacts.items()
        if isinstance(entry, dict) and entry.get("options") == wanted
    ]
    candidates = [(path, weights) for path, weights in candidates if path.is_file()]
    if not candidates:
        return None
    current = weights_key(model_path)  # hashes every weight file: once per lookup
    for path, weights in candidates:
        if weights == current:
            return path
    return None


def ship_artifact(
    model_path: Path, onnx_options: OnnxOptions, name: str, *, cache_dir: Path | None = None
) -> Path:
    """Export (or take from the cache) the ONNX file for these options and copy it to
    `model_path/onnx/name`, recorded in `onnx/shortlist.json`; returns its path."""
    if "/" in name or os.sep in name or not name.endswith(".onnx"):
        raise ValueError(f"artifact name must be a plain *.onnx file name, got {name!r}")
    built = onnx_model(BackendOptions(model_path=model_path, cache_dir=cache_dir), onnx_options)
    folder = model_path / SHIPPED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if built != target:
        tmp = folder / f".{name}.tmp"
        shutil.copyfile(built, tmp)
        os.replace(tmp, target)
    manifest = folder / SHIPPED_MANIFEST
    data: dict[str, Any] = {"format": 1, "artifacts": {}}
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except ValueError:
            pass
    data.setdefault("artifacts", {})[name] = {
        "options": asdict(onnx_options),
        "weights": weights_key(model_path),
    }
    tmp_manifest = folder / f".{SHIPPED_MANIFEST}.tmp"
    tmp_manifest.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp_manifest, manifest)
    return target


def _materialize(final_dir: Path, build: Callable[[Path], None]) -> Path:
    """`final_dir/model.onnx`, built into a temporary sibling folder and renamed into place."""
    publish_dir(final_dir, lambda tmp: build(tmp / "model.onnx"), marker="model.onnx")
    return final_dir / "model.onnx"


def _export(model_path: Path, onnx_options: OnnxOptions, out: Path) -> None:
    import inspect

    import torch
    from transformers import AutoConfig

    from shortlist.runtime.torch import load_model

    model = load_model(BackendOptions(model_path=model_path))
    config = AutoConfig.from_pretrained(str(model_path))
    accepted = inspect.signature(model.forward).parameters
    names = [n for n in MODEL_INPUTS if n in accepted]

    class Logits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, args, strict=True))).logits

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, int(config.vocab_size), (2, 16), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    dummy = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    args = tuple(dummy[n] for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["logits"] = {0: "batch"}
    raw = out.with_name("exported.onnx")
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated and chatty about tracing; the graph
            # it produces is checked against torch by the test suite.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Logits(model).eval(),
                args,
                str(raw),
                input_names=names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=onnx_options.opset,
                dynamo=False,
            )
    except Exception as exc:  # exporter failures come in many types
        raise ModelLoadError(
            f"cannot export {model_path} ({config.model_type}) to ONNX: {exc}; "
            "use backend='torch' for this model"
        ) from exc
    fusion = _FUSABLE.get(config.model_type)
    if onnx_options.fuse and fusion is not None:
        _fuse(raw, out, fusion, config)
    else:
        os.replace(raw, out)


def _fuse(raw: Path, out: Path, model_type: str, config: Any) -> None:
    """ONNX Runtime's transformer optimizer: fused attention, LayerNorm, GELU, embeddings."""
    from onnxruntime.transformers.optimizer import optimize_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimized = optimize_model(
            str(raw),
            model_type=model_type,
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            opt_level=1,
            use_gpu=False,
        )
        optimized.save_model_to_file(str(out))


def _quantize(fp32: Path, onnx_options: OnnxOptions, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight_type = {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}[str(onnx_options.quantize)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(fp32),
            str(out),
            weight_type=weight_type,
            per_channel=onnx_options.per_channel,
            reduce_range=onnx_options.reduce_range,
            # Fused contrib ops (Attention, SkipLayerNorm) defeat ONNX shape inference;
            # their outputs are float32.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
