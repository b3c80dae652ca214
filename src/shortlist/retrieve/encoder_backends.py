"""Inference backends for dense (bi-)encoders, chosen explicitly by name.

`ENCODER_BACKENDS` maps a backend name to the `module:function` that builds an `Encoder`
for a sentence-transformers model; error messages are built from its keys.

- `torch`: sentence-transformers' own `encode` (`SentenceTransformerEncoder`).
- `onnx`, `onnx-int8`: the model's transformer exported once with `torch.onnx`, passed
  through ONNX Runtime's transformer optimizer (fused attention, LayerNorm, GELU) and,
  for int8, `quantize_dynamic` with per-channel int8 weights; the same helpers as the
  cross-encoder (`shortlist.runtime.onnx`).
- `openvino`, `openvino-int8`: the transformer converted with `openvino.convert_model`
  and compiled with f32 inference precision (no silent bf16); int8 is NNCF's static
  post-training quantization, calibrated on the texts shipped in
  `shortlist/data/calibration_pairs.jsonl` (real news text). `openvino-int8` is the
  default backend of the offline default model on CPU (`default_backend`).

The exported backends run only the transformer; tokenizing, length-sorted token-budget
batching, pooling (mean, CLS or max, as the model's `1_Pooling/config.json` says) and L2
normalisation happen here, so they support models made of Transformer + Pooling
(+ Normalize) modules, which covers the common sentence-transformers bi-encoders; any
other module (Dense, ...) is a `ModelLoadError` naming `backend=torch`.

Why hand-written and not `SentenceTransformer(..., backend="onnx")`: that path needs
`optimum-onnx` / `optimum-intel`, whose releases pin transformers < 4.58 (or a different
torch build) and would downgrade this installation's transformers 5.x.

Exported artifacts are cached under `cache_dir` (default: the per-user cache, see
`shortlist.runtime.default_cache_dir`) in a folder named by a hash of the model's
config, weight and tokenizer files, the export options and the exporter versions; a
second load never re-exports. Folders are written to a temporary sibling and renamed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from shortlist._fs import hash_file_into, publish_dir, sha256_of_file
from shortlist._optional import require
from shortlist.errors import InvalidInputError, ModelLoadError, SpecError
from shortlist.runtime import MODEL_INPUTS

if TYPE_CHECKING:
    from shortlist.retrieve.encoder import Encoder

ENCODER_BACKENDS: dict[str, str] = {
    "torch": "shortlist.retrieve.encoder_backends:load_torch",
    "onnx": "shortlist.retrieve.encoder_backends:load_onnx",
    "onnx-int8": "shortlist.retrieve.encoder_backends:load_onnx_int8",
    "openvino": "shortlist.retrieve.encoder_backends:load_openvino",
    "openvino-int8": "shortlist.retrieve.encoder_backends:load_openvino_int8",
}
"""Backend name -> `module:loader`. Error messages are built from these keys."""

DEFAULT_BACKEND = "torch"
"""The backend of a spec that names none, for every model but the offline default (see
`default_backend`). (An index whose manifest predates backends is a torch index whatever
this says: see `shortlist.retrieve.encoder.normalized_identity`.)"""

DEFAULT_MODEL_BACKEND = "openvino-int8"
"""The backend of `default` (all-MiniLM-L6-v2) without `?backend=` on a machine without a
CUDA GPU: the fastest backend whose dense nDCG@10 stays within 0.005 of fp32 on every
evaluation collection (docs/RESULTS.md, "Dense encoding")."""

INT8_BACKENDS = frozenset({"onnx-int8", "openvino-int8"})

# Measured for the cross-encoder (benchmarks/rerank_latency.py, docs/RESULTS.md): on CPU,
# batches of ~2k padded tokens keep activations in cache; see benchmarks/encode_throughput.py
# for the dense encoder's sweep.
DEFAULT_BATCH_TOKENS = 2048

_CACHE_FORMAT = 1
_MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")
_POOLING_MODES = ("cls", "mean", "max")
# ONNX export settings, part of the cache key. Eager attention: the graph traced from
# PyTorch's SDPA path is not recognised by ONNX Runtime's optimizer, the eager one fuses
# into Attention/BiasGelu/EmbedLayerNormalization kernels (checked on all-MiniLM-L6-v2).
_ONNX_EXPORT = ("opset=17", "attn=eager", "fuse=bert")
# Texts NNCF calibrates openvino-int8 on (None: all 388 shipped). 64 would take a third
# of the first-load time with the same quality for new indexes, but the identity does not
# record the calibration, so indexes already built on openvino-int8 would be queried by a
# differently quantized model (-0.008 nDCG@10 on stdlib-docs, docs/RESULTS.md). Changing
# this needs the calibration pinned in the encoder identity first.
_CALIBRATION_TEXTS: int | None = None


@dataclass(frozen=True, slots=True)
class EncoderOptions:
    """What a backend loader needs besides the model name.

    - `cache_dir`: where exported artifacts go (None: the per-user cache);
    - `num_threads`: intra-op threads (None: the runtime's default). For `torch` this is
      `torch.set_num_threads`, which is process-wide;
    - `batch_tokens`: padded tokens per batch for the exported backends;
    - `device`: torch device for the `torch` backend (None: sentence-transformers' choice).
    """

    cache_dir: Path | None = None
    num_threads: int | None = None
    batch_tokens: int = DEFAULT_BATCH_TOKENS
    device: str | None = None


def default_backend(model: str) -> str:
    """The backend a spec without `?backend=` runs on.

    `DEFAULT_MODEL_BACKEND` for the offline default model (`"default"`) when torch sees no
    CUDA GPU (the exported backends are CPU paths; on a GPU sentence-transformers is the
    fast one); `DEFAULT_BACKEND` (torch) otherwise, including for every other model, whose
    int8 quality has not been measured.
    """
    from shortlist.retrieve.encoder import DEFAULT_MODEL

    if model != DEFAULT_MODEL:
        return DEFAULT_BACKEND
    torch = require("torch", "dense", "choosing the dense encoder backend")
    return DEFAULT_BACKEND if torch.cuda.is_available() else DEFAULT_MODEL_BACKEND


def load_encoder_backend(backend: str, model: str, options: EncoderOptions) -> Encoder:
    """An `Encoder` for `model` ("default", a hub id or a folder) on `backend`.

    Raises `SpecError` naming the valid backends for an unknown name,
    `MissingDependencyError` when the backend's runtime is not installed and
    `ModelLoadError` when the model cannot be loaded or exported.
    """
    target = ENCODER_BACKENDS.get(backend)
    if target is None:
        raise SpecError(
            f"unknown dense encoder backend {backend!r}; choose one of: "
            f"{', '.join(ENCODER_BACKENDS)} (e.g. 'default?backend=onnx')"
        )
    if options.num_threads is not None and options.num_threads < 1:
        raise InvalidInputError(f"num_threads must be >= 1, got {options.num_threads}")
    if options.batch_tokens < 1:
        raise InvalidInputError(f"batch_tokens must be >= 1, got {options.batch_tokens}")
    module_name, _, attr = target.partition(":")
    loader: Callable[[str, EncoderOptions], Encoder] = getattr(
        importlib.import_module(module_name), attr
    )
    return loader(model, options)


# --- loaders -------------------------------------------------------------------------------


def load_torch(model: str, options: EncoderOptions) -> Encoder:
    from shortlist.retrieve.st_encoder import SentenceTransformerEncoder

    if options.num_threads is not None:
        require("torch", "dense", "the torch encoder backend").set_num_threads(options.num_threads)
    return SentenceTransformerEncoder(model, device=options.device)


def load_onnx(model: str, options: EncoderOptions) -> Encoder:
    return _exported(model, "onnx", options)


def load_onnx_int8(model: str, options: EncoderOptions) -> Encoder:
    return _exported(model, "onnx-int8", options)


def load_openvino(model: str, options: EncoderOptions) -> Encoder:
    return _exported(model, "openvino", options)


def load_openvino_int8(model: str, options: EncoderOptions) -> Encoder:
    return _exported(model, "openvino-int8", options)


def _exported(model: str, backend: str, options: EncoderOptions) -> Encoder:
    # Check the runtime first: a missing extra should not cost a model load.
    if backend.startswith("onnx"):
        require("onnxruntime", "onnx", f"the {backend} encoder backend")
    else:
        require("openvino", "openvino", f"the {backend} encoder backend")
    from shortlist.retrieve.encoder import DEFAULT_MODEL, default_model_path

    path = default_model_path() if model == DEFAULT_MODEL else model
    folder = _resolve_folder(path)
    layout = read_layout(folder, backend)
    if backend.startswith("onnx"):
        runner: TokenModel = _OnnxRunner(_onnx_artifact(folder, layout, backend, options), options)
    else:
        runner = _OpenVINORunner(_openvino_artifact(folder, layout, backend, options), options)
    return ExportedEncoder(model, backend, folder, layout, runner, options.batch_tokens)


def _resolve_folder(model: str) -> Path:
    from shortlist.runtime.models import resolve_model_path

    return resolve_model_path(model)


# --- the model's sentence-transformers layout ------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelLayout:
    """What the exported backends need to know about a sentence-transformers folder."""

    pooling: str
    dim: int
    max_seq_length: int
    do_lower_case: bool
    model_type: str
    num_heads: int
    hidden_size: int


def read_layout(folder: Path, backend: str = "onnx") -> ModelLayout:
    """Read `modules.json`, the pooling config, `sentence_bert_config.json` and `config.json`.

    Raises `ModelLoadError` for a module other than Transformer/Pooling/Normalize or a
    pooling mode other than cls/mean/max (both need `backend=torch`).
    """
    config = _read_json(folder / "config.json")
    pooling_dir = folder / "1_Pooling"
    modules_file = folder / "modules.json"
    if modules_file.is_file():
        for module in _read_json(modules_file):
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            if kind not in ("Transformer", "Pooling", "Normalize"):
                raise ModelLoadError(
                    f"the {backend} encoder backend supports Transformer + Pooling (+ Normalize) "
                    f"models; {folder} also has a {kind} module. Use backend=torch for it"
                )
            if kind == "Pooling":
                pooling_dir = folder / str(module.get("path", "1_Pooling"))
    pooling = "mean"  # what sentence-transformers uses for a plain transformer folder
    if (pooling_dir / "config.json").is_file():
        pool_cfg = _read_json(pooling_dir / "config.json")
        modes = [
            key.removeprefix("pooling_mode_").removesuffix("_tokens").removesuffix("_token")
            for key, on in pool_cfg.items()
            if key.startswith("pooling_mode") and on is True
        ]
        if len(modes) != 1 or modes[0] not in _POOLING_MODES:
            raise ModelLoadError(
                f"the {backend} encoder backend pools by one of {', '.join(_POOLING_MODES)}; "
                f"{folder} asks for {modes or 'none'}. Use backend=torch for it"
            )
        pooling = modes[0]
    st_cfg_file = folder / "sentence_bert_config.json"
    st_cfg = _read_json(st_cfg_file) if st_cfg_file.is_file() else {}
    positions = int(config.get("max_position_embeddings", 512))
    if config.get("model_type") in {"roberta", "xlm-roberta", "camembert"}:
        positions -= int(config.get("pad_token_id", 1) or 0) + 1
    max_len = st_cfg.get("max_seq_length") or positions
    hidden = int(config.get("hidden_size", 0))
    return ModelLayout(
        pooling=pooling,
        dim=hidden,
        max_seq_length=min(int(max_len), positions),
        do_lower_case=bool(st_cfg.get("do_lower_case", False)),
        model_type=str(config.get("model_type", "")),
        num_heads=int(config.get("num_attention_heads", 0)),
        hidden_size=hidden,
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc


def pool(hidden: np.ndarray, attention_mask: np.ndarray, mode: str) -> np.ndarray:
    """Sentence vectors from token vectors (batch, seq, dim), as sentence-transformers'
    `Pooling` computes them: masked mean (sum / max(count, 1e-9)), first token, or masked max."""
    mask = attention_mask.astype(hidden.dtype)[:, :, None]
    if mode == "mean":
        counts = np.maximum(mask.sum(axis=1), 1e-9)
        return np.asarray((hidden * mask).sum(axis=1) / counts, dtype=np.float32)
    if mode == "cls":
        return np.asarray(hidden[:, 0], dtype=np.float32)
    if mode == "max":
        return np.asarray(np.where(mask > 0, hidden, -1e9).max(axis=1), dtype=np.float32)
    raise InvalidInputError(f"unknown pooling {mode!r}; expected one of {_POOLING_MODES}")


# --- the encoder -------------------------------------------------------------------------------


class TokenModel(Protocol):
    """Runs the transformer on one padded batch: int64 (batch, seq) in, float32
    (batch, seq, hidden) token vectors out."""

    input_names: tuple[str, ...]

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray: ...


class ExportedEncoder:
    """A sentence-transformers bi-encoder run by an exported ONNX or OpenVINO transformer.

    Texts are tokenized once, sorted by length and packed into batches of at most
    `batch_tokens` padded tokens (`shortlist.rerank.cross_encoder.pack_batches`); vectors
    are pooled, L2-normalised and returned in input order. Texts longer than the model's
    `max_seq_length` are truncated, as sentence-transformers does.
    """

    def __init__(
        self,
        name: str,
        backend: str,
        folder: Path,
        layout: ModelLayout,
        runner: TokenModel,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
    ) -> None:
        transformers = require("transformers", "dense", "tokenizing for the encoder")
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the tokenizer in {folder}: {exc}") from exc
        self._name = name
        self._backend = backend
        self._folder = folder
        self._layout = layout
        self._runner = runner
        self._batch_tokens = batch_tokens
        self._weights_sha256: str | None = None

    @property
    def dim(self) -> int:
        return self._layout.dim

    @property
    def max_seq_length(self) -> int:
        return self._layout.max_seq_length

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "kind": "sentence-transformers",
            "model": self._name,
            "dim": self.dim,
            "weights_sha256": self.weights_sha256,
            "backend": self._backend,
        }

    @property
    def weights_sha256(self) -> str:
        """First 16 hex digits of the main weights file's SHA-256 (as the torch backend)."""
        if self._weights_sha256 is None:
            from shortlist.retrieve.st_encoder import find_weights_file

            path = find_weights_file(str(self._folder))
            self._weights_sha256 = sha256_of_file(path)[:16] if path is not None else ""
        return self._weights_sha256

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Shape (len(texts), dim), float32, each row L2-normalised.

        Batches are formed by the token budget, not by `batch_size` (kept for the
        `Encoder` contract); progress is reported by the caller (see `shortlist.progress`).
        """
        if batch_size <= 0:
            raise InvalidInputError(f"batch_size must be positive, got {batch_size}")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        from shortlist.runtime.models import pack_batches

        items = [t.lower() for t in texts] if self._layout.do_lower_case else list(texts)
        encoded = self._tokenizer(
            items,
            truncation=True,
            max_length=self._layout.max_seq_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        pad_id = self._tokenizer.pad_token_id or 0
        for rows in pack_batches([len(ids) for ids in encoded], self._batch_tokens):
            longest = max(len(encoded[r]) for r in rows.tolist())
            ids = np.full((len(rows), longest), pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), longest), dtype=np.int64)
            for j, r in enumerate(rows.tolist()):
                ids[j, : len(encoded[r])] = encoded[r]
                mask[j, : len(encoded[r])] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._runner.input_names:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self._runner.run(feed)
            out[rows] = pool(hidden, mask, self._layout.pooling)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return np.ascontiguousarray(out / norms, dtype=np.float32)


# --- export and caching -----------------------------------------------------------------------


def artifact_key(folder: Path, backend: str, extra: Sequence[str] = ()) -> str:
    """sha256 of the model's config, weight and tokenizer files, the backend, the exporter
    versions and `extra` (e.g. the calibration set); names the cache folder."""
    import torch
    import transformers

    h = hashlib.sha256()
    meta = [str(_CACHE_FORMAT), backend, torch.__version__, transformers.__version__, *extra]
    h.update("\n".join(meta).encode())
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _MODEL_FILE_SUFFIXES)
    for p in files:
        h.update(p.name.encode())
        hash_file_into(h, p)
    return h.hexdigest()[:32]


def _cache_root(options: EncoderOptions) -> Path:
    from shortlist.runtime import default_cache_dir

    return (options.cache_dir or default_cache_dir()) / "dense"


def _hidden_module(
    folder: Path, attn_implementation: str | None = None
) -> tuple[Any, tuple[str, ...]]:
    """The fp32 transformer wrapped to return only `last_hidden_state`, and its input names."""
    import inspect

    import torch

    transformers = require("transformers", "dense", "exporting the encoder")
    kwargs: dict[str, Any] = {"dtype": "float32"}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    try:
        model = transformers.AutoModel.from_pretrained(str(folder), **kwargs).eval()
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load a transformer from {folder}: {exc}") from exc
    accepted = inspect.signature(model.forward).parameters
    names = tuple(n for n in MODEL_INPUTS if n in accepted)

    class Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, args, strict=True))).last_hidden_state

    return Hidden(model).eval(), names


def _example(names: tuple[str, ...], vocab_size: int) -> tuple[Any, ...]:
    import torch

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab_size, (2, 16), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    return tuple(feed[n] for n in names)


def _onnx_artifact(
    folder: Path, layout: ModelLayout, backend: str, options: EncoderOptions
) -> Path:
    require("onnx", "onnx", "exporting encoders to ONNX")
    from shortlist.runtime.onnx import OnnxOptions, _quantize

    root = _cache_root(options)
    fp32_dir = root / f"onnx-{artifact_key(folder, 'onnx', _ONNX_EXPORT)}"
    publish_dir(fp32_dir, lambda tmp: _export_onnx(folder, layout, tmp), marker="model.onnx")
    if backend == "onnx":
        return fp32_dir / "model.onnx"
    # Per-channel int8 weights, the cross-encoder's choice (better rank agreement than
    # per-tensor at the same speed).
    q_options = OnnxOptions(quantize="qint8", per_channel=True)
    q_dir = root / f"onnx-int8-{artifact_key(folder, 'onnx-int8', _ONNX_EXPORT)}"
    publish_dir(
        q_dir,
        lambda tmp: _quantize(fp32_dir / "model.onnx", q_options, tmp / "model.onnx"),
        marker="model.onnx",
    )
    return q_dir / "model.onnx"


def _export_onnx(folder: Path, layout: ModelLayout, tmp: Path) -> None:
    import os

    import torch

    from shortlist.runtime.onnx import _FUSABLE, _fuse

    module, names = _hidden_module(folder, attn_implementation="eager")
    vocab = int(module.inner.config.vocab_size)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    raw = tmp / "exported.onnx"
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter is deprecated and chatty about tracing; agreement
            # with torch is checked by the test suite and the benchmark.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                _example(names, vocab),
                str(raw),
                input_names=list(names),
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
    except Exception as exc:  # exporter failures come in many types
        raise ModelLoadError(
            f"cannot export {folder} ({layout.model_type}) to ONNX: {exc}; use backend=torch"
        ) from exc
    fusion = _FUSABLE.get(layout.model_type)
    if fusion is not None:
        config = module.inner.config
        _fuse(raw, tmp / "model.onnx", fusion, config)
        raw.unlink()
    else:
        os.replace(raw, tmp / "model.onnx")


def calibration_texts(limit: int | None = None) -> list[str]:
    """The shipped calibration texts: the distinct queries and passages of
    `calibration_pairs.jsonl` (388), or `limit` of them spread evenly over the file."""
    text = resources.files("shortlist").joinpath("data/calibration_pairs.jsonl").read_text("utf-8")
    out: list[str] = []
    for line in text.splitlines():
        if line.strip():
            obj = json.loads(line)
            out += [str(obj["query"]), str(obj["passage"])]
    texts = list(dict.fromkeys(out))
    if limit is None or limit >= len(texts):
        return texts
    if limit < 1:
        raise InvalidInputError(f"calibration limit must be >= 1, got {limit}")
    step = len(texts) / limit
    return [texts[int(i * step)] for i in range(limit)]


def _openvino_artifact(
    folder: Path, layout: ModelLayout, backend: str, options: EncoderOptions
) -> Path:
    ov = require("openvino", "openvino", f"the {backend} encoder backend")
    extra = [ov.__version__]
    texts: list[str] = []
    if backend == "openvino-int8":
        nncf = require("nncf", "openvino", "int8 quantization")
        texts = calibration_texts(_CALIBRATION_TEXTS)
        digest = hashlib.sha256(json.dumps(texts).encode()).hexdigest()
        extra += [nncf.__version__, digest]
    final = _cache_root(options) / f"{backend}-{artifact_key(folder, backend, extra)}"

    def build(tmp: Path) -> None:
        model = _convert_openvino(ov, folder, layout, texts if backend.endswith("int8") else None)
        # compress_to_fp16=False: the default would halve fp32 weights on save.
        ov.save_model(model, tmp / "model.xml", compress_to_fp16=False)

    publish_dir(final, build, marker="model.xml")
    return final / "model.xml"


def _convert_openvino(
    ov: Any, folder: Path, layout: ModelLayout, calibration: list[str] | None
) -> Any:
    import torch

    module, names = _hidden_module(folder)
    vocab = int(module.inner.config.vocab_size)
    example = _example(names, vocab)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings about data-dependent branches
            ov_model = ov.convert_model(module, example_input=example)
    except Exception as exc:  # conversion failures come in many types
        raise ModelLoadError(
            f"cannot convert {folder} ({layout.model_type}) to OpenVINO: {exc}; use backend=torch"
        ) from exc
    for port, name in zip(ov_model.inputs, names, strict=True):
        port.get_tensor().set_names({name})
    ov_model.outputs[0].get_tensor().set_names({"last_hidden_state"})
    ov_model.reshape({name: ov.PartialShape([-1, -1]) for name in names})
    if calibration is None:
        return ov_model
    nncf = require("nncf", "openvino", "int8 quantization")
    transformers = require("transformers", "dense", "tokenizing calibration texts")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    items = []
    for text in calibration:
        enc = tokenizer(
            text.lower() if layout.do_lower_case else text,
            truncation=True,
            max_length=layout.max_seq_length,
            return_tensors="np",
        )
        ids = np.asarray(enc["input_ids"], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(ids)
        items.append(feed)
    import contextlib
    import sys

    # NNCF draws its progress on stdout; keep stdout for the program's output (`--json`).
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        return nncf.quantize(
            ov_model,
            nncf.Dataset(items),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(items),
        )


# --- runtimes ------------------------------------------------------------------------------------


class _OnnxRunner:
    def __init__(self, path: Path, options: EncoderOptions) -> None:
        from shortlist.runtime.onnx import open_session

        self._session, self.input_names = open_session(
            path,
            num_threads=options.num_threads,
            device=None,
            purpose="the onnx encoder backends",
        )

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        feed = {k: v for k, v in feed.items() if k in self.input_names}
        (hidden,) = self._session.run(["last_hidden_state"], feed)
        return np.asarray(hidden, dtype=np.float32)


class _OpenVINORunner:
    def __init__(self, path: Path, options: EncoderOptions) -> None:
        ov = require("openvino", "openvino", "the openvino encoder backends")
        core = ov.Core()
        # f32 precision: this CPU family would otherwise run fp32 models in bf16.
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if options.num_threads is not None:
            config["INFERENCE_NUM_THREADS"] = options.num_threads
        self._compiled = core.compile_model(core.read_model(path), "CPU", config)
        present = {port.get_any_name() for port in self._compiled.inputs}
        self.input_names = tuple(n for n in MODEL_INPUTS if n in present)

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        feed = {k: v for k, v in feed.items() if k in self.input_names}
        # A request per call: requests are not thread-safe, the compiled model is.
        result = self._compiled.create_infer_request().infer(feed)
        return np.array(result[self._compiled.output(0)], dtype=np.float32)
