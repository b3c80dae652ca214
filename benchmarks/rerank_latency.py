"""Cross-encoder latency: every registered backend against sentence-transformers, one run.

Scores one query against 50 candidates of real documentation text (docstrings of the
Python standard library, cut to mixed lengths, about 220 tokens per pair on average;
the actual mean is printed) with a MiniLM-L6-shaped cross-encoder: all-MiniLM-L6-v2's
real encoder weights (the offline default model) under a fresh, seeded 1-label head.

Reports p50/p95 per backend, the ratio to sentence-transformers `CrossEncoder` (torch
fp32) measured in the same run, the gain of length-sorted packing alone (same backend,
sorted vs input order), and each int8 backend's Spearman rank agreement with fp32.
Backends whose optional dependencies are missing are listed as skipped.

    PYTHONPATH=src python benchmarks/rerank_latency.py --threads 2 --repeats 7
    PYTHONPATH=src python benchmarks/rerank_latency.py --model TRAINED_FOLDER  # real scores
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

QUERY = "how do I read a JSON file and turn it into a Python dictionary"
MODULES = (
    "json", "os", "pathlib", "re", "collections", "itertools", "functools", "subprocess",
    "argparse", "logging", "datetime", "typing", "dataclasses", "asyncio", "threading",
    "shutil", "csv", "sqlite3", "urllib.parse", "random", "statistics", "textwrap",
    "string", "heapq", "bisect", "contextlib", "inspect", "tempfile", "zipfile", "tarfile",
)  # fmt: skip


def docstrings() -> list[str]:
    """Long-ish docstrings of public standard-library functions and classes."""
    out = []
    for name in MODULES:
        module = importlib.import_module(name)
        doc = inspect.getdoc(module)
        if doc and len(doc) > 300:
            out.append(doc)
        for attr in sorted(dir(module)):
            if attr.startswith("_"):
                continue
            doc = inspect.getdoc(getattr(module, attr, None))
            if doc and len(doc) > 400:
                out.append(doc)
    return list(dict.fromkeys(out))


def passages(tokenizer: Any, n: int, mean_tokens: int, seed: int) -> list[str]:
    """`n` passages of running docstring text, cut at word boundaries to token lengths drawn
    from a triangular distribution around `mean_tokens` (from 40 to 2 * mean_tokens - 40).
    """
    rng = random.Random(seed)
    words = " ".join(docstrings()).split()
    texts, start = [], 0
    for _ in range(n):
        target = int(rng.triangular(40, 2 * mean_tokens - 40, mean_tokens))
        lo, hi = start + 1, min(len(words), start + 2 * target)
        while lo < hi:  # longest run of words within the target
            mid = (lo + hi + 1) // 2
            if len(tokenizer.tokenize(" ".join(words[start:mid]))) <= target:
                lo = mid
            else:
                hi = mid - 1
        texts.append(" ".join(words[start:lo]))
        start = lo + rng.randint(50, 400)  # skip ahead: passages from different places
    return texts


TRAIN_QUERIES = (
    "how to run a shell command and capture its output",
    "format a date as a string",
    "iterate over pairs of items from two lists",
    "compile and match a regular expression",
    "copy a directory tree recursively",
    "write rows to a CSV file",
    "create a temporary file that is deleted automatically",
    "compute the median of a list of numbers",
)


def build_model(folder: Path, train_passages: list[str]) -> Path:
    """all-MiniLM-L6-v2's encoder under a 1-label head, saved to `folder`.

    No trained cross-encoder can be downloaded here, and a random head gives scores too
    flat to judge int8 rank agreement. So the head is a ridge-regression fit of the
    pooled output to the bi-encoder cosine (all-MiniLM-L6-v2 itself) on pairs built from
    other queries and passages than the timed ones: the scores then spread like a
    relevance model's. Latency does not depend on the head.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, BertForSequenceClassification

    from shortlist.retrieve.encoder import default_model_path

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BertForSequenceClassification.from_pretrained(default_model_path(), num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    bi = SentenceTransformer(default_model_path(), device="cpu")
    q_emb = bi.encode(list(TRAIN_QUERIES), normalize_embeddings=True)
    p_emb = bi.encode(train_passages, normalize_embeddings=True)
    features, targets = [], []
    model.eval()
    with torch.inference_mode():
        for qi, query in enumerate(TRAIN_QUERIES):
            batch = tokenizer(
                [query] * len(train_passages),
                train_passages,
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            out = model.bert(**batch)
            features.append(out.pooler_output.numpy())
            targets.append(p_emb @ q_emb[qi])
    x = np.concatenate(features).astype(np.float64)
    y = np.concatenate(targets).astype(np.float64) * 10.0  # logits roughly in [-5, 5]
    x_mean, y_mean = x.mean(0), y.mean()
    xc = x - x_mean
    w = np.linalg.solve(xc.T @ xc + 1.0 * np.eye(x.shape[1]), xc.T @ (y - y_mean))
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(w[None, :]).float())
        model.classifier.bias.fill_(float(y_mean - x_mean @ w - 2.5))
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def timed(fn: Callable[[], Any], warmup: int, repeats: int) -> tuple[list[float], Any]:
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return times, result


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000.0, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--candidates", type=int, default=50)
    ap.add_argument("--mean-tokens", type=int, default=220)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch-tokens", type=int, default=None, help="default: the library's")
    ap.add_argument("--backends", default="", help="comma list; default: all registered")
    ap.add_argument(
        "--budget-sweep",
        type=int,
        nargs="*",
        default=[],
        help="also time these batch_tokens values",
    )
    ap.add_argument("--onnx-variants", action="store_true", help="also time ONNX int8 options")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument(
        "--model",
        type=Path,
        help="a trained cross-encoder folder to time instead of the ridge-headed MiniLM",
    )
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from scipy.stats import spearmanr
    from sentence_transformers import CrossEncoder

    from shortlist.errors import MissingDependencyError, SpecError
    from shortlist.rerank.cross_encoder import CrossEncoderReranker
    from shortlist.runtime import BACKENDS, BackendOptions

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="shortlist-bench-"))
    from transformers import AutoTokenizer

    from shortlist.retrieve.encoder import default_model_path

    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    query_tokens = len(tokenizer(QUERY)["input_ids"]) + 1  # + the pair's second [SEP]
    texts = passages(tokenizer, args.candidates, args.mean_tokens - query_tokens, seed=0)
    train = passages(tokenizer, 40, 120, seed=1)
    model_dir = args.model or build_model(work / "model", train)
    cache = work / "cache"
    st = CrossEncoder(str(model_dir), activation_fn=torch.nn.Identity(), max_length=512)
    pairs = [(QUERY, t) for t in texts]
    lengths = [len(x) for x in st.tokenizer([QUERY] * len(texts), texts)["input_ids"]]
    print(
        f"{len(pairs)} pairs, tokens per pair: mean {statistics.mean(lengths):.0f}, "
        f"min {min(lengths)}, max {max(lengths)}; threads {args.threads}; "
        f"torch {torch.__version__}"
    )

    engines: dict[str, Callable[[], np.ndarray]] = {
        "sentence-transformers": lambda: np.asarray(st.predict(pairs, batch_size=32)),
    }
    rerankers: dict[str, CrossEncoderReranker] = {}
    wanted = [b for b in args.backends.split(",") if b] or list(BACKENDS)
    for backend in wanted:
        try:
            r = CrossEncoderReranker(
                str(model_dir),
                backend=backend,
                cache_dir=cache,
                num_threads=args.threads,
                batch_tokens=args.batch_tokens,
            )
        except (MissingDependencyError, SpecError) as exc:
            print(f"skip {backend}: {exc}")
            continue
        rerankers[backend] = r
        engines[backend] = lambda r=r: r.score_pairs(pairs)
    unsorted_of = [b for b in ("torch", "onnx") if b in rerankers]
    for backend in unsorted_of:
        r = CrossEncoderReranker(
            str(model_dir),
            backend=backend,
            cache_dir=cache,
            num_threads=args.threads,
            batch_tokens=args.batch_tokens,
            sort_by_length=False,
        )
        engines[f"{backend} (unsorted)"] = lambda r=r: r.score_pairs(pairs)
    for budget in args.budget_sweep:
        for backend in list(rerankers):
            r = CrossEncoderReranker(
                str(model_dir),
                backend=backend,
                cache_dir=cache,
                num_threads=args.threads,
                batch_tokens=budget,
            )
            engines[f"{backend} budget={budget}"] = lambda r=r: r.score_pairs(pairs)
    if args.onnx_variants and "onnx" in rerankers:
        from shortlist.runtime import onnx as onnx_backend
        from shortlist.runtime.onnx import OnnxOptions

        options = BackendOptions(model_path=model_dir, cache_dir=cache, num_threads=args.threads)
        variants = {
            "onnx unfused fp32": OnnxOptions(fuse=False),
            "onnx-int8 unfused": OnnxOptions(fuse=False, quantize="qint8"),
            "onnx-int8 quint8": OnnxOptions(quantize="quint8"),
            "onnx-int8 per-channel": OnnxOptions(quantize="qint8", per_channel=True),
            "onnx-int8 reduce-range": OnnxOptions(quantize="qint8", reduce_range=True),
        }
        for label, opts in variants.items():
            r = CrossEncoderReranker(
                str(model_dir),
                backend="onnx",
                cache_dir=cache,
                num_threads=args.threads,
                batch_tokens=args.batch_tokens,
            )
            r._backend = onnx_backend.load_with(options, opts)  # same tokenizer/batching
            rerankers[label] = r
            engines[label] = lambda r=r: r.score_pairs(pairs)

    samples: dict[str, list[float]] = {k: [] for k in engines}
    scores: dict[str, np.ndarray] = {}
    for name, fn in engines.items():  # warmup
        for _ in range(args.warmup):
            scores[name] = np.asarray(fn(), dtype=np.float64).reshape(len(pairs))
    for _ in range(args.repeats):  # interleaved so machine noise hits every engine alike
        for name, fn in engines.items():
            t = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t)

    ref = statistics.median(samples["sentence-transformers"])
    fp32 = scores["torch"] if "torch" in scores else scores["sentence-transformers"]
    rows = []
    print(
        f"\n{'engine':28} {'p50 ms':>8} {'p95 ms':>8} {'x vs ST':>8} {'spearman':>9} {'max|d|':>8}"
    )
    for name in engines:
        p50, p95 = pct(samples[name], 50), pct(samples[name], 95)
        rho = float(spearmanr(scores[name], fp32).statistic)
        diff = float(np.abs(scores[name] - fp32).max())
        rows.append(
            {
                "engine": name,
                "p50_ms": p50,
                "p95_ms": p95,
                "speedup_vs_st": ref * 1000 / p50,
                "spearman_vs_fp32": rho,
                "max_abs_diff_vs_fp32": diff,
            }
        )
        print(f"{name:28} {p50:8.0f} {p95:8.0f} {ref * 1000 / p50:8.2f} {rho:9.4f} {diff:8.4f}")
    for backend in unsorted_of:
        gain = statistics.median(samples[f"{backend} (unsorted)"]) / statistics.median(
            samples[backend]
        )
        print(f"length-sorted packing alone, {backend}: {gain:.2f}x faster than input order")
    if args.json:
        args.json.write_text(
            json.dumps({"mean_tokens": statistics.mean(lengths), "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
