"""First-stage benchmark: shortlist's BM25 against bm25s (numpy backend), side by side.

Both engines see the same corpus, the same queries, the same k1/b and Lucene scoring, in one
process. Build time includes tokenisation on both sides (our `Analyzer.analyze_many` vs
`bm25s.tokenize` with the same stopwords and PyStemmer). Queries run one at a time, top-100.

Corpus: synthetic, because no 100k-passage real English corpus is available offline. Words
follow a Zipf law (s = 1.07) over a 50k vocabulary whose most frequent ranks are real English
words (ranked by their frequency in gensim's Lee corpus, so stopwords and stemming do real
work) followed by pseudo-words; passage lengths are lognormal with mean ~100 words. Queries
are 3-8 consecutive words cut from random passages.

Also times exact dense top-100 over random unit float32 vectors with numpy (placeholder for
the vector index).

Usage: python benchmarks/first_stage.py [--n-docs 100000] [--n-queries 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import resource
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from shortlist.retrieve.analyzer import Analyzer
from shortlist.retrieve.bm25 import BM25Index

K = 100
K1, B = 0.9, 0.4


def real_words() -> list[str]:
    """Distinct words of gensim's Lee corpus, most frequent first."""
    import gensim

    folder = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")
    counts: Counter[str] = Counter()
    for name in ("lee_background.cor", "lee.cor"):
        with open(os.path.join(folder, name), encoding="latin-1") as fh:
            counts.update(re.findall(r"[a-z]{2,}", fh.read().lower()))
    return [w for w, _ in counts.most_common()]


def pseudo_words(n: int, rng: np.random.Generator, taken: set[str]) -> list[str]:
    onsets = "b c d f g h j k l m n p r s t v w z br cr dr fl gr pl pr st tr".split()
    vowels = "a e i o u ai ea io ou".split()
    codas = ["", "n", "r", "s", "l", "t", "nd", "st", "ng"]
    out: list[str] = []
    seen = set(taken)
    while len(out) < n:
        syllables = int(rng.integers(2, 4))
        word = "".join(
            onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))]
            for _ in range(syllables)
        ) + codas[rng.integers(len(codas))]
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out


def make_corpus(n_docs: int, n_queries: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    vocab_size = 50_000
    words = real_words()[:vocab_size]
    words += pseudo_words(vocab_size - len(words), rng, set(words))
    weights = 1.0 / np.arange(1, vocab_size + 1) ** 1.07
    lengths = np.maximum(rng.lognormal(np.log(100) - 0.125, 0.5, n_docs).astype(np.int64), 5)
    ids = rng.choice(vocab_size, size=int(lengths.sum()), p=weights / weights.sum()).tolist()
    ends = np.cumsum(lengths).tolist()
    texts, start = [], 0
    for end in ends:
        texts.append(" ".join(map(words.__getitem__, ids[start:end])))
        start = end
    queries = []
    for doc in rng.integers(0, n_docs, n_queries).tolist():
        length = int(rng.integers(3, 9))
        at = int(rng.integers(0, max(1, int(lengths[doc]) - length)))
        queries.append(" ".join(texts[doc].split()[at : at + length]))
    return texts, queries


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def traced_peak_mb(fn: Callable[[], Any]) -> float:
    """Peak bytes allocated (Python objects and numpy buffers) while `fn` runs."""
    gc.collect()
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del out
    return peak / 2**20


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-docs", type=int, default=100_000)
    parser.add_argument("--n-queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc passes")
    args = parser.parse_args()

    import bm25s
    import Stemmer

    texts, queries = make_corpus(args.n_docs, args.n_queries, args.seed)
    n_words = sum(len(t.split()) for t in texts)
    print(f"corpus: {len(texts)} synthetic Zipf passages, {n_words / len(texts):.1f} words "
          f"avg; {len(queries)} queries of 3-8 words; k1={K1} b={B} top-{K}")
    rss = {"start": maxrss_mb()}
    rows = np.arange(len(texts))
    analyzer = Analyzer()

    def build_ours() -> BM25Index:
        index = BM25Index(k1=K1, b=B)
        index.add(analyzer.analyze_many(texts), rows)
        return index

    def build_theirs() -> Any:
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"),
                                show_progress=False)
        retriever = bm25s.BM25(k1=K1, b=B, method="lucene", backend="numpy")
        retriever.index(tokens, show_progress=False)
        return retriever

    theirs, t_build_theirs = timed(build_theirs)
    rss["bm25s build"] = maxrss_mb()
    ours, t_build_ours = timed(build_ours)
    rss["shortlist build"] = maxrss_mb()

    query_tokens = analyzer.analyze_many(queries)
    vocab = theirs.vocab_dict
    their_ids = [[vocab[t] for t in q if t in vocab] for q in query_tokens]

    def search_ours() -> list[tuple[np.ndarray, np.ndarray]]:
        return [ours.search(q, K) for q in query_tokens]

    def search_theirs() -> list[tuple[np.ndarray, np.ndarray]]:
        # bm25s's own single-query path (scores for all docs + numpy top-k), without the
        # batching/progress machinery of `retrieve`.
        out = []
        for ids in their_ids:
            scores, docs = theirs._get_top_k_results(ids, k=K, backend="numpy", sorted=True)
            out.append((docs[scores > 0], scores[scores > 0]))
        return out

    def retrieve_theirs() -> None:
        for q in query_tokens:
            theirs.retrieve([q], k=K, show_progress=False, n_threads=0)

    def end_to_end_ours() -> None:
        for text in queries:
            ours.search(analyzer.analyze(text), K)

    stemmer = Stemmer.Stemmer("english")

    def end_to_end_theirs() -> None:
        for text in queries:
            q = bm25s.tokenize(text, stopwords="en", stemmer=stemmer, return_ids=False,
                               show_progress=False)[0]
            theirs.retrieve([q], k=K, show_progress=False, n_threads=0)

    search_ours()  # warm-up (allocates the score buffer)
    hits_ours, t_ours = timed(search_ours)
    hits_theirs, t_theirs = timed(search_theirs)
    _, t_retrieve_theirs = timed(retrieve_theirs)
    _, t_e2e_ours = timed(end_to_end_ours)
    _, t_e2e_theirs = timed(end_to_end_theirs)
    rss["searches"] = maxrss_mb()
    overlaps, tie_aware = [], []
    for (rows_a, scores_a), (rows_b, scores_b) in zip(hits_ours, hits_theirs, strict=True):
        if len(rows_b) == 0:
            continue
        top_b = set(rows_b[:10].tolist())
        overlaps.append(len(set(rows_a[:10].tolist()) & top_b) / min(10, len(rows_b)))
        # Synthetic text has many exact score ties; any tied document is an equally right
        # answer, so a hit also counts when its score reaches bm25s's 10th score.
        cut = scores_b[:10].min() * (1 - 1e-5)
        pairs = zip(rows_a[:10].tolist(), scores_a[:10], strict=True)
        agree = [r in top_b or s >= cut for r, s in pairs]
        tie_aware.append(sum(agree) / min(10, len(rows_b)))

    n_q = len(queries)
    rows_out = [
        ("build, incl. tokenisation (s)", t_build_ours, t_build_theirs, "lower is better"),
        ("QPS top-100, search only", n_q / t_ours, n_q / t_theirs, "higher is better"),
        ("QPS top-100 vs bm25s.retrieve()", n_q / t_ours, n_q / t_retrieve_theirs,
         "higher is better"),
        ("QPS top-100, incl. query analysis", n_q / t_e2e_ours, n_q / t_e2e_theirs,
         "higher is better"),
    ]
    if not args.no_memory:
        del theirs, ours
        gc.collect()
        rows_out.append(("build peak traced memory (MiB)", traced_peak_mb(build_ours),
                         traced_peak_mb(build_theirs), "lower is better"))
    print(f"\n{'measure':36} {'shortlist':>12} {'bm25s':>12} {'ratio':>8}")
    for name, mine, other, note in rows_out:
        print(f"{name:36} {mine:12.2f} {other:12.2f} {mine / other:7.2f}x  ({note})")
    print(f"{'top-10 overlap with bm25s':36} {np.mean(overlaps):12.4f} "
          f"(tie-aware: {np.mean(tie_aware):.4f})")
    print("process max RSS after each phase (MiB): "
          + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))

    # Exact dense top-100 with numpy: placeholder for the vector index.
    rng = np.random.default_rng(args.seed)
    dim, n_dense = 384, len(texts)
    matrix = rng.standard_normal((n_dense, dim), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    dense_queries = matrix[rng.integers(0, n_dense, min(200, n_q))] + 0.1

    def dense() -> None:
        for q in dense_queries:
            sims = matrix @ q
            top = np.argpartition(sims, -K)[-K:]
            top[np.argsort(-sims[top])]

    _, t_dense = timed(dense)
    print(f"dense exact top-{K} over {n_dense} x {dim} float32 (numpy): "
          f"{1000 * t_dense / len(dense_queries):.2f} ms/query")


if __name__ == "__main__":
    main()
