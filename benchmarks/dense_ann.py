"""ANN (usearch HNSW) against exact search in `VectorIndex`: recall@k and ms/query.

Data: a gaussian mixture on the unit sphere. `--centers` cluster means are drawn uniformly
on the sphere; each vector is a mean plus isotropic gaussian noise whose expected norm is
`--spread` (1.0 = as long as the mean), then L2-normalised. Queries are fresh draws from the
same mixture, not stored vectors. Uniform random vectors are a poor test: in 384 dims all
their cosines are ~0 and "nearest neighbours" are noise; a mixture has real neighbourhoods
like text embeddings do, while the noise keeps clusters from being trivially separable.

Recall@k = mean over queries of |ANN top k ∩ exact top k| / k. Timings are single-query
calls of `search` (ANN) and exact search, after the graph is built.

    PYTHONPATH=src python benchmarks/dense_ann.py            # 100k x 384, float16, k=100
    PYTHONPATH=src python benchmarks/dense_ann.py --n 20000 --dtype float32
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from shortlist.retrieve.vectors import VectorIndex


def mixture(rng: np.random.Generator, n: int, means: np.ndarray, spread: float) -> np.ndarray:
    dim = means.shape[1]
    labels = rng.integers(0, means.shape[0], n)
    x = means[labels] + rng.standard_normal((n, dim), dtype=np.float32) * (spread / dim**0.5)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--centers", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--connectivity", type=int, default=16)
    parser.add_argument("--expansion-add", type=int, default=128)
    parser.add_argument("--expansion-search", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    means = rng.standard_normal((args.centers, args.dim), dtype=np.float32)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    vectors = mixture(rng, args.n, means, args.spread)
    queries = mixture(rng, args.queries, means, args.spread)

    index = VectorIndex(
        args.dim,
        dtype=args.dtype,
        ann_threshold=1,
        ann_connectivity=args.connectivity,
        ann_expansion_add=args.expansion_add,
        ann_expansion_search=args.expansion_search,
    )
    start = time.perf_counter()
    for lo in range(0, args.n, 10_000):
        index.add(vectors[lo : lo + 10_000], np.arange(lo, min(lo + 10_000, args.n)))
    add_s = time.perf_counter() - start
    report = index.measure_recall(k=args.k, queries=queries)
    report.update(
        {
            "add_s": add_s,
            "dim": float(args.dim),
            "dtype": args.dtype,
            "centers": float(args.centers),
            "spread": args.spread,
        }
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
