"""Client-side overhead of the hosted rerankers, measured against the local fake servers.

Run: PYTHONPATH=src python benchmarks/api_fake_roundtrip.py
Prints the median wall time of `rerank` for 100 candidates (30 runs after one warm-up):
Cohere in one request, TEI split into requests of at most 32 texts.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from api_fakes import FakeRerankServer  # noqa: E402
from shortlist.rerank.api import CohereReranker, TEIReranker  # noqa: E402
from shortlist.rerank.base import Reranker  # noqa: E402

DOCS = [f"passage {i} about apples and pie number {i} " * 5 for i in range(100)]


def median_ms(rr: Reranker, texts: list[str] = DOCS, runs: int = 30) -> float:
    """Median wall time (ms) of `rr.rerank("apple pie", texts, top_n=10)`, after one
    warm-up call; the listwise benchmark measures with it too."""
    rr.rerank("apple pie", texts)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        rr.rerank("apple pie", texts, top_n=10)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main() -> None:
    with FakeRerankServer("cohere") as srv:
        with CohereReranker("rerank-v3.5", api_key="test-key", base_url=srv.url) as rr:
            print(f"cohere (1 request of 100): median {median_ms(rr):.1f} ms")
    with FakeRerankServer("tei", api_key=None) as srv:
        with TEIReranker(srv.url) as tei:
            print(f"tei (4 requests of <=32): median {median_ms(tei):.1f} ms")


if __name__ == "__main__":
    main()
