"""Export/quantization: shortlist's own code against sentence-transformers' export functions.

Issue #11 asks whether shortlist's hand-written ONNX/OpenVINO export and int8 quantization
(`shortlist.runtime.onnx` / `.openvino`) can be rebuilt on sentence-transformers'
`CrossEncoder(backend="onnx"|"openvino")`, `export_dynamic_quantized_onnx_model` and
`export_static_quantized_openvino_model`. This script answers it by measurement, in one
run, on the same passages as `benchmarks/rerank_latency.py` (50 pairs, ~220 tokens, a
MiniLM-L6-shaped cross-encoder with a ridge-fitted head):

- export time: a fresh cache/output folder per engine, from the local model folder, offline;
- p50 latency of scoring the 50 pairs;
- Spearman rank agreement and max |logit difference| against fp32 torch.

Each ST artifact is timed twice: under ST's own `CrossEncoder.predict` (fixed-size batches,
the runtime's default precision: OpenVINO runs bf16 on a CPU with AVX512-BF16/AMX) and
loaded into shortlist's backend (length-sorted token-budget batching, f32 precision hint,
as shortlist's own OpenVINO backend), so the artifact and the runtime settings are judged
apart. ST's static OpenVINO quantization is calibrated on the
same (query, passage) pairs shortlist calibrates on (`default_calibration_pairs`), handed
to it as a local dataset, so nothing is fetched from the hub.

sentence-transformers' ONNX and OpenVINO paths need `optimum-onnx` / `optimum-intel`,
which (as of this writing) pin `transformers<4.58` / `<5.6`; run this in a separate
environment where they are installed (see the module docstrings of the backends). An ST
engine whose packages are missing is listed as skipped, with the reason.

    PYTHONPATH=src python benchmarks/export_compare.py --threads 2 --repeats 7
    PYTHONPATH=src python benchmarks/export_compare.py --tiny   # the tests' tiny BERT

`--tiny` only checks that every path exports a working artifact offline: a random head's
scores are too flat for its Spearman column to mean anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _sibling(name: str) -> Any:
    """Import a module from this folder (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return " / ".join(lines[:3])


def tiny_model(folder: Path) -> Path:
    """The tests' tiny random-weight BERT cross-encoder (tests/models.py)."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    import models  # type: ignore[import-not-found]

    return Path(models.build_tiny_cross_encoder(folder, "bert", max_positions=512))


class IRBackend:
    """An OpenVINO IR file under shortlist's backend contract (same compile settings as
    `shortlist.runtime.openvino.OpenVINOBackend`)."""

    def __init__(self, xml: Path, num_threads: int) -> None:
        import openvino as ov

        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
            "INFERENCE_NUM_THREADS": num_threads,
        }
        self._compiled = ov.Core().compile_model(ov.Core().read_model(xml), "CPU", config)
        self.input_names = tuple(sorted(p.get_any_name() for p in self._compiled.inputs))

    def run(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> np.ndarray:
        from shortlist.runtime import model_feed

        feed = model_feed(self.input_names, input_ids, attention_mask, token_type_ids)
        result = self._compiled.create_infer_request().infer(feed)
        return np.array(result[self._compiled.output(0)], dtype=np.float32)


class OnnxFileBackend:
    """An ONNX file under shortlist's backend contract."""

    def __init__(self, path: Path, num_threads: int) -> None:
        from shortlist.runtime import BackendOptions
        from shortlist.runtime.onnx import OnnxBackend

        self._inner = OnnxBackend(
            path, BackendOptions(model_path=path.parent, num_threads=num_threads)
        )
        self.input_names = self._inner.input_names

    def run(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> np.ndarray:
        return self._inner.run(input_ids, attention_mask, token_type_ids)


def calibration_dataset(folder: Path) -> Path:
    """shortlist's calibration pairs as a local JSON-lines dataset with a `pair` column of
    [query, passage] lists; a tokenizer called on such a column encodes text pairs."""
    from shortlist.runtime.openvino import default_calibration_pairs

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "train.jsonl").open("w", encoding="utf-8") as f:
        for query, passage in default_calibration_pairs():
            f.write(json.dumps({"pair": [query, passage]}) + "\n")
    return folder


def st_engines(
    model_dir: Path, work: Path, threads: int, pairs: list[tuple[str, str]], make_reranker: Any
) -> tuple[dict[str, Callable[[], np.ndarray]], dict[str, float], list[str]]:
    """ST's export paths: engines, their export seconds, and skip lines."""
    import shutil

    import torch
    from sentence_transformers import CrossEncoder

    engines: dict[str, Callable[[], np.ndarray]] = {}
    export_s: dict[str, float] = {}
    skipped: list[str] = []
    ident = torch.nn.Identity()

    def copy_model(name: str) -> Path:
        target = work / name
        shutil.copytree(model_dir, target)
        return target

    def load(folder: Path, backend: str, file_name: str) -> Any:
        return CrossEncoder(
            str(folder),
            backend=backend,
            activation_fn=ident,
            max_length=512,
            model_kwargs={"file_name": file_name},
        )

    def add(label: str, st: Any, artifact: Path, backend_cls: Any) -> None:
        engines[f"{label} (ST predict)"] = lambda st=st: np.asarray(
            st.predict(pairs, batch_size=32)
        )
        reranker = make_reranker()
        reranker._backend = backend_cls(artifact, threads)  # ST's artifact, shortlist batching
        engines[f"{label} (shortlist batching)"] = lambda r=reranker: r.score_pairs(pairs)

    # ONNX fp32 + dynamic int8
    try:
        from sentence_transformers import export_dynamic_quantized_onnx_model

        folder = copy_model("st-onnx")
        t = time.perf_counter()
        st = CrossEncoder(str(folder), backend="onnx", activation_fn=ident, max_length=512)
        st.save_pretrained(str(folder))
        export_s["st onnx"] = time.perf_counter() - t
        t = time.perf_counter()
        export_dynamic_quantized_onnx_model(st, "avx512_vnni", str(folder))
        export_s["st onnx-int8"] = export_s["st onnx"] + time.perf_counter() - t
        for label, name in (
            ("st onnx", "onnx/model.onnx"),
            ("st onnx-int8", "onnx/model_qint8_avx512_vnni.onnx"),
        ):
            add(label, load(folder, "onnx", name), folder / name, OnnxFileBackend)
    except Exception as exc:  # missing optimum-onnx, or its export failing
        skipped.append(f"st onnx: {type(exc).__name__}: {_first_line(exc)}")

    # OpenVINO fp32 + static int8
    try:
        from sentence_transformers import export_static_quantized_openvino_model

        folder = copy_model("st-openvino")
        t = time.perf_counter()
        st = CrossEncoder(str(folder), backend="openvino", activation_fn=ident, max_length=512)
        st.save_pretrained(str(folder))
        export_s["st openvino"] = time.perf_counter() - t
        data = calibration_dataset(work / "calibration")
        t = time.perf_counter()
        export_static_quantized_openvino_model(
            st,
            None,
            str(folder),
            dataset_name=str(data),
            dataset_config_name="default",
            dataset_split="train",
            column_name="pair",
        )
        export_s["st openvino-int8"] = export_s["st openvino"] + time.perf_counter() - t
        # Quantizing changes the loaded model in place, so both are read back from disk.
        for label, name in (
            ("st openvino", "openvino/openvino_model.xml"),
            ("st openvino-int8", "openvino/openvino_model_qint8_quantized.xml"),
        ):
            add(label, load(folder, "openvino", name), folder / name, IRBackend)
    except Exception as exc:  # missing optimum-intel, or its export failing
        skipped.append(f"st openvino: {type(exc).__name__}: {_first_line(exc)}")
    return engines, export_s, skipped


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--candidates", type=int, default=50)
    ap.add_argument("--mean-tokens", type=int, default=220)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--tiny", action="store_true", help="the tests' tiny BERT, not MiniLM")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--model", type=Path, help="model folder to use, built there first if missing")
    ap.add_argument(
        "--cache-root",
        type=Path,
        help="keep shortlist's per-backend caches here; a filled one is loaded, not re-exported "
        "(so a run under another transformers can reuse OpenVINO IR exported under ours)",
    )
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

    import torch
    import transformers
    from scipy.stats import spearmanr
    from transformers import AutoTokenizer

    from shortlist.errors import MissingDependencyError
    from shortlist.rerank.cross_encoder import CrossEncoderReranker
    from shortlist.retrieve.encoder import default_model_path

    torch.set_num_threads(args.threads)
    latency = _sibling("rerank_latency")
    work = Path(tempfile.mkdtemp(prefix="shortlist-export-"))
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    query_tokens = len(tokenizer(latency.QUERY)["input_ids"]) + 1
    texts = latency.passages(tokenizer, args.candidates, args.mean_tokens - query_tokens, seed=0)
    model_dir = args.model or work / "model"
    if not (model_dir / "config.json").is_file():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if args.tiny:
                tiny_model(model_dir)
            else:
                latency.build_model(model_dir, latency.passages(tokenizer, 40, 120, 1))
    cache_root = args.cache_root or work
    pairs = [(latency.QUERY, t) for t in texts]
    print(
        f"{len(pairs)} pairs; model {'tiny bert' if args.tiny else 'MiniLM-L6 shape'}; "
        f"threads {args.threads}; torch {torch.__version__}, transformers "
        f"{transformers.__version__}"
    )

    def make(backend: str = "torch", cache: Path | None = None) -> CrossEncoderReranker:
        return CrossEncoderReranker(
            str(model_dir), backend=backend, cache_dir=cache or work / "cache-torch",
            num_threads=args.threads,
        )  # fmt: skip

    engines: dict[str, Callable[[], np.ndarray]] = {}
    export_s: dict[str, float] = {}
    skipped: list[str] = []
    for backend in ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8"):
        cache = cache_root / f"cache-{backend}"
        cached = cache.is_dir() and any(cache.iterdir())
        t = time.perf_counter()
        try:  # a fresh cache per backend: the time is the full export (+ fp32 step for int8)
            r = make(backend, cache)
        except MissingDependencyError as exc:
            skipped.append(f"shortlist {backend}: {exc}")
            continue
        except Exception as exc:  # e.g. an exporter that breaks under this transformers
            skipped.append(f"shortlist {backend}: {type(exc).__name__}: {_first_line(exc)}")
            continue
        export_s[f"shortlist {backend}" + (" (cache load)" if cached else "")] = (
            time.perf_counter() - t
        )
        engines[f"shortlist {backend}"] = lambda r=r: r.score_pairs(pairs)
    more, more_export, more_skipped = st_engines(model_dir, work, args.threads, pairs, make)
    engines.update(more)
    export_s.update(more_export)
    skipped.extend(more_skipped)

    scores = {
        n: np.asarray(fn(), dtype=np.float64).reshape(len(pairs)) for n, fn in engines.items()
    }
    samples: dict[str, list[float]] = {n: [] for n in engines}
    for _ in range(args.repeats):  # interleaved so machine noise hits every engine alike
        for name, fn in engines.items():
            t = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t)

    ref = scores["shortlist torch"]
    rows = []
    print(f"\n{'engine':40} {'p50 ms':>8} {'spearman':>9} {'max|d|':>8}")
    for name in engines:
        p50 = statistics.median(samples[name]) * 1000
        rho = float(spearmanr(scores[name], ref).statistic)
        diff = float(np.abs(scores[name] - ref).max())
        rows.append({"engine": name, "p50_ms": p50, "spearman_vs_torch": rho, "max_abs_diff": diff})
        print(f"{name:40} {p50:8.1f} {rho:9.4f} {diff:8.4f}")
    print("\nexport seconds (fresh folder, from the local model):")
    for name, seconds in export_s.items():
        print(f"  {name:38} {seconds:7.1f}")
    for line in skipped:
        print(f"skip {line}")
    if args.json:
        args.json.write_text(
            json.dumps({"rows": rows, "export_s": export_s, "skipped": skipped}, indent=2)
        )


if __name__ == "__main__":
    main()
