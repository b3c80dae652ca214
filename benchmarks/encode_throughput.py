"""Encoding throughput of the default dense encoder (all-MiniLM-L6-v2): sentence-transformers
`encode` against every shortlist encoder backend, on the same real passages, in one run.
The `default` row is the spec `default` without `?backend=`, labelled with the backend it
resolved to (openvino-int8 on a CPU-only machine).

Passages are windows of 100-200 words cut from the Lee news corpus shipped with gensim
(`lee_background.cor`, real English news). For each backend the script prints passages/s,
the ratio to sentence-transformers measured in the same run, and the largest
`1 - cosine` between its vectors and sentence-transformers' vectors. Export/conversion
happens once, before timing (artifacts are cached, see shortlist.retrieve.encoder_backends).
Each measurement is the best of `--repeats` passes, interleaved across backends, so a
burst of load from other processes hurts every backend alike.

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/encode_throughput.py \
        [--n 500] [--threads N] \
        [--backends default torch onnx onnx-int8 openvino openvino-int8] \
        [--batch-tokens 2048] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import random
import time
from typing import Any


def lee_passages(n: int, seed: int = 0) -> list[str]:
    """`n` windows of 100-200 words from the Lee background corpus (gensim's test data)."""
    from gensim.test.utils import datapath

    with open(datapath("lee_background.cor"), encoding="latin-1") as f:
        words = f.read().split()
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(100, 200)
        start = rng.randrange(0, len(words) - length)
        out.append(" ".join(words[start : start + length]))
    return out


def _rate(encode: Any, texts: list[str]) -> tuple[float, Any]:
    start = time.perf_counter()
    vectors = encode(texts)
    return len(texts) / (time.perf_counter() - start), vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=500, help="passages per measurement")
    parser.add_argument("--threads", type=int, default=None, help="default: physical cores")
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["default", "torch", "onnx", "onnx-int8", "openvino", "openvino-int8"],
        help="backend names; 'default' is the spec without ?backend= (today's default)",
    )
    parser.add_argument("--batch-tokens", type=int, default=None)
    parser.add_argument("--st-batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from shortlist.threads import apply_threads, default_threads

    threads = args.threads or default_threads()
    apply_threads(threads)  # what the CLI does at its edge

    import numpy as np
    import sentence_transformers
    import torch

    from shortlist.retrieve.encoder import default_model_path
    from shortlist.retrieve.encoders import load_encoder

    texts = lee_passages(args.n)
    mean_words = sum(len(t.split()) for t in texts) / len(texts)
    flags = (
        sorted(
            {
                f
                for f in open("/proc/cpuinfo").read().split()
                if f in ("avx2", "avx512_vnni", "amx_int8")
            }
        )
        if os.path.exists("/proc/cpuinfo")
        else []
    )
    print(
        f"threads={threads} passages={len(texts)} mean_words={mean_words:.0f} "
        f"cpu_flags={','.join(flags)} load_avg={os.getloadavg()[0]:.1f} "
        f"sentence-transformers={sentence_transformers.__version__} torch={torch.__version__}"
    )

    st = sentence_transformers.SentenceTransformer(default_model_path(), device="cpu")

    def st_encode(batch: list[str]) -> Any:
        return st.encode(
            batch, batch_size=args.st_batch_size, normalize_embeddings=True, convert_to_numpy=True
        )

    encoders: dict[str, Any] = {}
    for backend in args.backends:
        spec = "default" if backend == "default" else f"default?backend={backend}"
        if args.batch_tokens and backend != "torch":
            spec += f"{'&' if '?' in spec else '?'}batch_tokens={args.batch_tokens}"
        t = time.perf_counter()
        encoder = load_encoder(spec, num_threads=threads)
        # The default row says which backend `default` resolved to on this machine.
        name = f"default ({encoder.identity.get('backend')})" if backend == "default" else backend
        encoders[name] = encoder
        print(f"loaded {spec} in {time.perf_counter() - t:.1f}s (export cached after first use)")

    warm = texts[:16]
    st_encode(warm)
    for enc in encoders.values():
        enc.encode(warm)

    best: dict[str, float] = {}
    vectors: dict[str, Any] = {}
    for _ in range(args.repeats):
        for name, fn in [("sentence-transformers", st_encode)] + [
            (b, e.encode) for b, e in encoders.items()
        ]:
            rate, vecs = _rate(fn, texts)
            best[name] = max(best.get(name, 0.0), rate)
            vectors[name] = vecs
    ref = np.asarray(vectors["sentence-transformers"], dtype=np.float32)
    print(f"{'backend':<22} {'passages/s':>10} {'x ST':>6} {'max 1-cos':>10}")
    for name, rate in best.items():
        got = np.asarray(vectors[name], dtype=np.float32)
        gap = float(np.max(1.0 - np.sum(ref * got, axis=1)))
        print(f"{name:<22} {rate:>10.1f} {rate / best['sentence-transformers']:>6.2f} {gap:>10.2e}")
    print(f"load_avg_after={os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
