"""Search latency with and without one competing busy process, at the CLI's thread setting.

For each encoder spec, builds (once, cached under --work) an index of a BEIR-layout
dataset, then measures the latency of `Index.search` (dense and hybrid) for every query,
first with nothing else started, then while one subprocess spins numpy matrix products
on every core this process may use (its BLAS threads = the CPU count). The thread count is
applied exactly as the CLI applies `--threads` (`shortlist.threads.apply_threads` plus
`num_threads` for the encoder), default `default_threads()`. Prints p50/p95 per mode and
the ratio of contended to idle p95 (the goal: within 3x).

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/search_contention.py \
        --dataset /work/data/lee --work /work/data/cache/contention \
        [--model default?backend=onnx-int8 ...] [--threads N] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BUSY = """
import numpy as np
a = np.random.default_rng(0).random((1024, 1024))
while True:
    a = a @ a
    a /= np.abs(a).max()
"""


def _busy_process(cpus: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(cpus)
    return subprocess.Popen([sys.executable, "-c", BUSY], env=env)


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True, help="BEIR-layout folder")
    parser.add_argument("--work", type=Path, required=True, help="where indexes are cached")
    parser.add_argument("--model", nargs="+", default=["default"])
    parser.add_argument("--modes", nargs="+", default=["dense", "hybrid"])
    parser.add_argument("--threads", type=int, default=None, help="default: as the CLI")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the queries")
    parser.add_argument(
        "--runtime-defaults",
        action="store_true",
        help="the 'before' case: leave thread settings to torch/ONNX Runtime/OpenVINO",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from shortlist.threads import apply_threads, available_cpus, default_threads

    threads: int | None = None
    if not args.runtime_defaults:
        threads = args.threads or default_threads()
        apply_threads(threads)

    from shortlist.evaluate.beir import load_beir
    from shortlist.store.index import Index

    dataset = load_beir(args.dataset)
    queries = [text for _qid, text in sorted(dataset.queries.items())]
    cpus = len(available_cpus())
    print(
        f"dataset={args.dataset.name} queries={len(queries)}x{args.rounds} "
        f"threads={threads or 'runtime defaults'} "
        f"cpus={cpus} load_avg={os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'model':<28} {'mode':<7} {'idle p50':>9} {'idle p95':>9} "
        f"{'busy p50':>9} {'busy p95':>9} {'p95 x':>6}"
    )
    for spec in args.model:
        safe = "".join(c if c.isalnum() else "_" for c in spec)
        path = args.work / f"{args.dataset.name}-{safe}"
        try:
            index = Index.open(path, num_threads=threads)
        except Exception:
            index = Index.create(
                path, dataset.corpus, encoder=spec, overwrite=True, num_threads=threads
            )
        for mode in args.modes:
            index.search(queries[0], k=10, mode=mode)  # loads the encoder
            idle = _latencies(index, queries, mode, args.rounds)
            busy_proc = _busy_process(cpus)
            try:
                time.sleep(1.0)  # let it reach full speed
                busy = _latencies(index, queries, mode, args.rounds)
            finally:
                busy_proc.terminate()
                busy_proc.wait(timeout=10)
            row = {
                "idle_p50": _percentile(idle, 50),
                "idle_p95": _percentile(idle, 95),
                "busy_p50": _percentile(busy, 50),
                "busy_p95": _percentile(busy, 95),
            }
            print(
                f"{spec:<28} {mode:<7} {row['idle_p50']:>9.1f} {row['idle_p95']:>9.1f} "
                f"{row['busy_p50']:>9.1f} {row['busy_p95']:>9.1f} "
                f"{row['busy_p95'] / row['idle_p95']:>6.2f}",
                flush=True,
            )
            print(
                json.dumps({"model": spec, "mode": mode, "threads": threads, **row}),
                file=sys.stderr,
            )
    print(f"load_avg_after={os.getloadavg()[0]:.1f}")


def _latencies(index: object, queries: list[str], mode: str, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        for q in queries:
            t = time.perf_counter()
            index.search(q, k=10, mode=mode)  # type: ignore[attr-defined]
            out.append((time.perf_counter() - t) * 1000)
    return out


if __name__ == "__main__":
    main()
