"""Encoding throughput of the default dense encoder (all-MiniLM-L6-v2) on this CPU.

Passages are built from the Lee corpus shipped with gensim when available (real English
text), cut into windows of 100-200 words; otherwise from a fixed word list.

    PYTHONPATH=src python benchmarks/encode_throughput.py [--n 256] [--batch-sizes 32 64]
"""

from __future__ import annotations

import argparse
import os
import random
import time


def _passages(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words: list[str] = []
    try:
        from gensim.test.utils import datapath

        with open(datapath("lee_background.cor"), encoding="utf-8") as f:
            words = f.read().split()
    except Exception:
        words = ("the quick brown fox jumps over the lazy dog while retrieval systems rank "
                 "passages for questions about science history and sport").split() * 1000
    out = []
    for _ in range(n):
        length = rng.randint(100, 200)
        start = rng.randrange(0, len(words) - length)
        out.append(" ".join(words[start : start + length]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=256, help="passages per measurement")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from shortlist.retrieve.encoders import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder("default")
    texts = _passages(args.n)
    mean_words = sum(len(t.split()) for t in texts) / len(texts)
    print(f"torch threads={torch.get_num_threads()} passages={len(texts)} "
          f"mean_words={mean_words:.0f} max_seq_length={encoder.max_seq_length}")
    encoder.encode(texts[:32], batch_size=32)  # warm-up
    for batch_size in args.batch_sizes:
        start = time.perf_counter()
        encoder.encode(texts, batch_size=batch_size)
        elapsed = time.perf_counter() - start
        print(f"batch={batch_size}: {len(texts) / elapsed:.1f} passages/s "
              f"({1000 * elapsed / len(texts):.1f} ms/passage)")


if __name__ == "__main__":
    main()
