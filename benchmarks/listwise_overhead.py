"""Client-side overhead of the listwise (RankGPT) reranker, against the loopback chat server.

Run: PYTHONPATH=src python benchmarks/listwise_overhead.py
Prints, for K candidates with window 20 and step 10, the requests per query and the median
wall time of `rerank` (30 runs after one warm-up), with a fake model that answers at once:
what shortlist itself adds (prompt building, truncation, parsing, HTTP on loopback) to the
LLM's own time. No LLM runs here; a real one spends seconds per window.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from api_fake_roundtrip import median_ms  # noqa: E402

from listwise_fakes import FakeChatServer  # noqa: E402
from shortlist.rerank.api.listwise import ListwiseReranker  # noqa: E402


def docs(k: int) -> list[str]:
    return [f"passage {i} about apples and pie number {i} " * 12 for i in range(k)]


def main() -> None:
    with FakeChatServer() as srv, ListwiseReranker(srv.url, model="fake-llm") as rr:
        for k in (20, 50, 100):
            texts = docs(k)
            windows = int(rr.rerank("apple pie", texts).stats["listwise.windows"])
            ms = median_ms(rr, texts)
            print(f"K={k:>3}: {windows} requests/query, median {ms:.1f} ms/query, "
                  f"{ms / windows:.2f} ms/request (client + loopback fake server)")


if __name__ == "__main__":
    main()
