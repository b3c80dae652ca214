"""OpenVINO inference for sequence-classification cross-encoders: fp32 and static int8.

The torch model in `model_dir` is converted with `openvino.convert_model`. For int8,
NNCF's post-training *static* quantization (`nncf.quantize`, transformer preset) is
calibrated on real (query, passage) pairs: the caller's, or by default the pairs
shipped in `shortlist/data/calibration_pairs.jsonl` (built from the Lee news corpus,
see `scripts/make_calibration_pairs.py`). Static quantization fixes activation ranges
ahead of time, which is what makes int8 fast on CPU (no per-batch range computation).

Converted models are cached on disk under `cache_dir`, keyed by a hash of the model
files, the precision, the calibration pairs and the OpenVINO/NNCF versions; a cache
entry is written to a temporary folder and renamed into place, so a crash never leaves
half a model. Without `cache_dir` nothing is written and conversion runs each time.

Speed depends on the CPU: int8 pays off where the CPU has int8 dot-product instructions
(AVX-512 VNNI, AVX-VNNI, AMX). On an AVX2-only CPU (measured: AMD EPYC Zen 3, see
`benchmarks/bench_openvino.py`) int8 ran no faster than fp32; use `openvino` (fp32) there.

Why this converter and not sentence-transformers' (`CrossEncoder(backend="openvino")`,
`export_static_quantized_openvino_model`, issue #11): both need `optimum-intel`, whose 2.x
releases require transformers<5.6 (2.2.0) or safetensors<0.8 (2.0, 2.1), while shortlist
runs on transformers 5.24, so `pip install "sentence-transformers[openvino]==6.2.0"` is
ResolutionImpossible there. Measured in a side environment with transformers 5.5.4
(`benchmarks/export_compare.py`, all-MiniLM-L6-v2 shape, 50 pairs, one run), ST's path
gives no advantage to adopt: its fp32 IR under shortlist's batching matched this one (rank
agreement with torch 1.0 for both, same p50 within 1%); its static int8 IR ran at the same
p50 as ours (1755 vs 1746 ms) with rank agreement 0.986 vs 0.982. Its calibration
API takes one text column of a `datasets` dataset, so the (query, passage) pairs have to
be wrapped as a local dataset, and it quantizes the loaded model in place. ST's
`predict` compiles with the runtime's default precision, bf16 on a CPU with AVX512-BF16:
there `predict` (its fixed-size batches, bf16) ran the fp32 IR 1.4x faster than this
backend, at rank agreement 0.9988 and max |logit difference| 0.008; `openvino` keeps f32
so that it agrees with torch to ~1e-5.

Reference: OpenVINO `convert_model` and NNCF post-training quantization docs
(docs.openvino.ai, "Post-training Quantization with NNCF").
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from shortlist._fs import hash_file_into, publish_dir
from shortlist._optional import require
from shortlist.errors import InvalidInputError, ModelLoadError
from shortlist.runtime import BackendOptions, model_feed

CACHE_FORMAT = 1
_WEIGHT_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")


def default_calibration_pairs() -> list[tuple[str, str]]:
    """The shipped calibration pairs: (query, passage), relevant and not, from real news text."""
    text = resources.files("shortlist").joinpath("data/calibration_pairs.jsonl").read_text("utf-8")
    pairs = []
    for line in text.splitlines():
        if line.strip():
            obj = json.loads(line)
            pairs.append((str(obj["query"]), str(obj["passage"])))
    return pairs


def _model_hash(model_dir: Path) -> str:
    """sha256 over the names and bytes of the model's config, weight and tokenizer files."""
    h = hashlib.sha256()
    files = sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    if not files:
        raise ModelLoadError(f"{model_dir} holds no model files (config.json, weights)")
    for path in files:
        h.update(path.name.encode())
        hash_file_into(h, path)
    return h.hexdigest()


def _pairs_hash(pairs: Sequence[tuple[str, str]]) -> str:
    return hashlib.sha256(json.dumps([list(p) for p in pairs]).encode("utf-8")).hexdigest()


class OpenVINOBackend:
    """Runs a Hugging Face sequence-classification model with OpenVINO on CPU.

    `run(input_ids, attention_mask, token_type_ids)` takes int arrays of shape
    (batch, seq) and returns float32 logits of shape (batch, num_labels). The model
    accepts any batch size and sequence length. `token_type_ids=None` means zeros.
    fp32 runs with f32 inference precision (no silent bf16 on CPUs that have it), so
    it agrees with torch to ~1e-5. `num_threads` pins the CPU threads (None: OpenVINO's
    default, all cores).
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        int8: bool = False,
        cache_dir: str | Path | None = None,
        calibration_pairs: Sequence[tuple[str, str]] | None = None,
        num_threads: int | None = None,
        max_length: int = 512,
    ) -> None:
        ov = require("openvino", "openvino", "the openvino backends")
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise ModelLoadError(
                f"{self.model_dir} is not a model folder (no config.json); the openvino "
                "backend needs a local Hugging Face model folder"
            )
        if num_threads is not None and num_threads <= 0:
            raise InvalidInputError(f"num_threads must be positive, got {num_threads}")
        self.int8 = int8
        self.max_length = max_length
        self._calibration = list(calibration_pairs) if calibration_pairs is not None else None
        if int8 and self._calibration is not None and not self._calibration:
            raise InvalidInputError("int8 calibration needs at least one (query, passage) pair")
        model = self._load_or_convert(ov, Path(cache_dir) if cache_dir is not None else None)
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if num_threads is not None:
            config["INFERENCE_NUM_THREADS"] = num_threads
        self._compiled = ov.Core().compile_model(model, "CPU", config)
        self.input_names = tuple(sorted(port.get_any_name() for port in self._compiled.inputs))

    # --- conversion -------------------------------------------------------------------

    def _cache_key(self, ov: Any) -> str:
        parts = [str(CACHE_FORMAT), _model_hash(self.model_dir), ov.__version__]
        if self.int8:
            nncf = require("nncf", "openvino", "int8 quantization")
            pairs = self._calibration or default_calibration_pairs()
            parts += ["int8", nncf.__version__, _pairs_hash(pairs), str(self.max_length)]
        else:
            parts.append("fp32")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]

    def _load_or_convert(self, ov: Any, cache_dir: Path | None) -> Any:
        if cache_dir is None:
            return self._convert(ov)
        final = cache_dir / f"openvino-{'int8' if self.int8 else 'fp32'}-{self._cache_key(ov)}"
        xml = final / "model.xml"
        if xml.is_file():
            return ov.Core().read_model(xml)
        model = self._convert(ov)
        # compress_to_fp16=False: the default would halve fp32 weights on save.
        publish_dir(
            final,
            lambda tmp: ov.save_model(model, tmp / "model.xml", compress_to_fp16=False),
            marker="model.xml",
        )
        return model

    def _torch_model(self) -> tuple[Any, bool]:
        import inspect

        require("torch", "dense", "converting a torch model to OpenVINO")
        transformers = require("transformers", "dense", "loading the model to convert")
        try:
            model = transformers.AutoModelForSequenceClassification.from_pretrained(self.model_dir)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load a model from {self.model_dir}: {exc}") from exc
        model.eval()
        takes_types = "token_type_ids" in inspect.signature(model.forward).parameters
        return model, takes_types

    def _convert(self, ov: Any) -> Any:
        import torch

        model, takes_types = self._torch_model()
        example = {
            "input_ids": torch.ones((2, 16), dtype=torch.long),
            "attention_mask": torch.ones((2, 16), dtype=torch.long),
        }
        if takes_types:
            example["token_type_ids"] = torch.zeros((2, 16), dtype=torch.long)
        # Tracing a Hugging Face model emits TracerWarnings about data-dependent branches
        # (mask shortcuts); the reshape below and the agreement tests cover them.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ov_model = ov.convert_model(model, example_input=example)
        # Dynamic batch and sequence, whatever the tracer inferred from the example.
        dynamic = ov.PartialShape([-1, -1])
        ov_model.reshape({port.get_any_name(): dynamic for port in ov_model.inputs})
        if self.int8:
            ov_model = self._quantize(ov_model, takes_types)
        return ov_model

    def _quantize(self, ov_model: Any, takes_types: bool) -> Any:
        nncf = require("nncf", "openvino", "int8 quantization")
        transformers = require("transformers", "dense", "tokenizing calibration pairs")
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_dir)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"int8 calibration needs the tokenizer in {self.model_dir}: {exc}"
            ) from exc
        pairs = self._calibration or default_calibration_pairs()
        names = {port.get_any_name() for port in ov_model.inputs}
        items = []
        for query, passage in pairs:
            enc = tokenizer(
                query, passage, truncation="only_second", max_length=self.max_length,
                return_tensors="np",
            )
            item = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items() if k in names}
            if takes_types and "token_type_ids" not in item:
                item["token_type_ids"] = np.zeros_like(item["input_ids"])
            items.append(item)
        return nncf.quantize(
            ov_model,
            nncf.Dataset(items),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(items),
        )

    # --- inference --------------------------------------------------------------------

    def run(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        token_type_ids: np.ndarray | None,
    ) -> np.ndarray:
        """Logits of shape (batch, num_labels), float32."""
        feed = model_feed(self.input_names, input_ids, attention_mask, token_type_ids)
        request = self._compiled.create_infer_request()
        result = request.infer(feed)
        return np.array(result[self._compiled.output(0)], dtype=np.float32)


def _load(options: BackendOptions, *, int8: bool) -> OpenVINOBackend:
    from shortlist.runtime import default_cache_dir

    return OpenVINOBackend(
        options.model_path,
        int8=int8,
        cache_dir=options.cache_dir if options.cache_dir is not None else default_cache_dir(),
        num_threads=options.num_threads,
    )


def load_fp32(options: BackendOptions) -> OpenVINOBackend:
    """Registry loader for `backend=openvino` (conversion cached on disk)."""
    return _load(options, int8=False)


def load_int8(options: BackendOptions) -> OpenVINOBackend:
    """Registry loader for `backend=openvino-int8`: NNCF static int8, calibrated once on the
    shipped sample pairs and cached on disk."""
    return _load(options, int8=True)
