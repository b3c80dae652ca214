"""What the server pays to follow an index: one `LiveIndex.refresh()` when nothing changed
(read CURRENT, compare), one `lease()` per request, and one switch to a new generation.

Run: PYTHONPATH=src python benchmarks/live_index_poll.py
Prints the median of 2000 refreshes and leases, and of 20 switches (a 1000-document BM25
index without vectors). The server refreshes every 0.1 s, so the polling cost per second
is 10x the refresh time.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from shortlist.serve.live import LiveIndex
from shortlist.store.index import Index
from shortlist.types import Document


def median_us(fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "idx"
        docs = [Document(id=f"d{i}", text=f"passage {i} about apples") for i in range(1000)]
        writer = Index.create(root, docs, dense=False)
        live = LiveIndex(root)

        def lease() -> None:
            with live.lease():
                pass

        refresh_us = median_us(live.refresh, 2000)
        lease_us = median_us(lease, 2000)
        switches = []
        for i in range(20):
            writer.add([Document(id=f"new{i}", text="another passage")])
            start = time.perf_counter()
            assert live.refresh()
            switches.append((time.perf_counter() - start) * 1e3)
        writer.close()
        live.close()
    per_second_ms = refresh_us * 10 / 1e3
    print(f"refresh, no change: {refresh_us:.1f} us median ({per_second_ms:.3f} ms/s at 10 Hz)")
    print(f"lease per request:  {lease_us:.1f} us median")
    print(f"switch (open + swap) to a new generation: {statistics.median(switches):.1f} ms median")


if __name__ == "__main__":
    main()
