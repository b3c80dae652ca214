"""Dynamic batching: unit tests of the batcher, then concurrency through a real server."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi")

from serve_fakes import OverlapScorer, running
from shortlist.serve.app import ServeConfig, create_app
from shortlist.serve.batching import DynamicBatcher, QueueFullError, estimate_pair_tokens


def pairs_for(q: str, n: int) -> list[tuple[str, str]]:
    return [(q, f"{q} doc {i} " + "x " * i) for i in range(n)]


def test_jobs_get_exactly_their_own_scores_and_share_batches() -> None:
    scorer = OverlapScorer(delay_s=0.05)

    async def main() -> list[np.ndarray]:
        batcher = DynamicBatcher(scorer.score_pairs, max_wait_ms=20, max_batch_pairs=1000)
        await batcher.start()
        jobs = [pairs_for(f"query{j}", 1 + j % 4) for j in range(12)]
        results = await asyncio.gather(*(batcher.score(p) for p in jobs))
        await batcher.close()
        assert batcher.stats.jobs == 12
        assert batcher.stats.pairs == sum(len(p) for p in jobs)
        return [*results, *(scorer.score_pairs(p) for p in jobs)]

    out = asyncio.run(main())
    got, want = out[:12], out[12:]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    # All 12 jobs were queued before the idle worker's 20 ms wait ended: one batch.
    assert scorer.batches[0] == sum(len(g) for g in got)


def test_token_and_pair_budgets_split_batches() -> None:
    scorer = OverlapScorer()

    async def main() -> None:
        batcher = DynamicBatcher(
            scorer.score_pairs, max_batch_pairs=5, max_wait_ms=50, count_tokens=lambda pair: 1
        )
        await batcher.start()
        await asyncio.gather(*(batcher.score(pairs_for("q", 2)) for _ in range(5)))
        await batcher.close()

    asyncio.run(main())
    assert scorer.batches == [4, 4, 2]  # whole jobs of 2 pairs, at most 5 pairs per batch

    scorer = OverlapScorer()

    async def by_tokens() -> None:
        batcher = DynamicBatcher(
            scorer.score_pairs, max_batch_tokens=30, max_wait_ms=50, count_tokens=lambda pair: 10
        )
        await batcher.start()
        await asyncio.gather(*(batcher.score(pairs_for("q", 1)) for _ in range(7)))
        # A job over the budget on its own still runs, alone.
        await batcher.score(pairs_for("q", 5))
        await batcher.close()

    asyncio.run(by_tokens())
    assert scorer.batches == [3, 3, 1, 5]


def test_a_failing_job_does_not_fail_its_batch_mates() -> None:
    scorer = OverlapScorer(fail_on="poison")

    async def main() -> list[object]:
        batcher = DynamicBatcher(scorer.score_pairs, max_wait_ms=50)
        await batcher.start()
        out = await asyncio.gather(
            batcher.score([("q", "good one")]),
            batcher.score([("q", "poison")]),
            batcher.score([("q", "good two")]),
            return_exceptions=True,
        )
        await batcher.close()
        return out

    good1, bad, good2 = asyncio.run(main())
    assert isinstance(bad, RuntimeError)
    assert isinstance(good1, np.ndarray) and isinstance(good2, np.ndarray)
    assert scorer.batches == [3, 1, 1, 1]


def test_full_queue_rejects_and_close_drains() -> None:
    scorer = OverlapScorer(delay_s=0.1)

    async def main() -> tuple[list[object], int]:
        batcher = DynamicBatcher(scorer.score_pairs, queue_size=2, max_wait_ms=0, max_batch_pairs=1)
        await batcher.start()
        first = asyncio.ensure_future(batcher.score([("q", "a")]))
        await asyncio.sleep(0.02)  # the worker took it: the queue is empty again
        queued = [asyncio.ensure_future(batcher.score([("q", "b")])) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError) as err:
            await batcher.score([("q", "c")])
        assert err.value.http_status == 503 and "--queue-size" in str(err.value)
        await batcher.close()  # finishes the running job and both queued ones
        with pytest.raises(QueueFullError):
            await batcher.score([("q", "d")])
        return [first.result(), *(q.result() for q in queued)], batcher.stats.batches

    results, batches = asyncio.run(main())
    assert len(results) == 3 and batches == 3


def test_32_parallel_clients_match_sequential_calls() -> None:
    scorer = OverlapScorer(delay_s=0.01)
    app = create_app(ServeConfig(max_wait_ms=5), {"overlap": scorer})
    requests = [
        {
            "model": "overlap",
            "query": f"cat garden {i % 7} w{i}",
            "documents": [f"cat {j} w{i} garden " + "filler " * ((i + j) % 5) for j in range(10)],
            "top_n": 1 + i % 10,
        }
        for i in range(32)
    ]
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        sequential = [client.post("/v2/rerank", json=r).json()["results"] for r in requests]
        barrier = threading.Barrier(32)

        def call(r: dict[str, object]) -> list[dict[str, object]]:
            with httpx.Client(base_url=url, timeout=60) as c:
                barrier.wait()
                resp = c.post("/v2/rerank", json=r)
                assert resp.status_code == 200, resp.text
                return list(resp.json()["results"])

        with ThreadPoolExecutor(32) as pool:
            parallel = list(pool.map(call, requests))
        batch_jobs = app.state.slots["overlap"].batcher.stats
    assert parallel == sequential
    # Concurrent requests shared batches (32 jobs in fewer than 32 batches after warm-up).
    assert batch_jobs.jobs == 64 and batch_jobs.batches < 64


def test_full_queue_is_503_with_retry_after() -> None:
    scorer = OverlapScorer(delay_s=0.5)
    app = create_app(
        ServeConfig(queue_size=1, max_batch_pairs=1, max_wait_ms=0), {"overlap": scorer}
    )
    body = {"query": "q", "texts": ["a"]}
    with running(app) as url:

        def call(_: int) -> httpx.Response:
            return httpx.post(f"{url}/rerank", json=body, timeout=30)

        with ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(call, range(6)))
        metrics = httpx.get(f"{url}/metrics").text
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}
    rejected = next(r for r in responses if r.status_code == 503)
    assert rejected.headers["Retry-After"] == "1"
    # /rerank answers in TEI's error shape, with TEI's kind for a full queue.
    assert rejected.json()["error_type"] == "Overloaded"
    assert "queue is full" in rejected.json()["error"]
    assert 'shortlist_requests_total{endpoint="/rerank",status="503"}' in metrics


def test_pair_estimate_is_the_shared_estimate_plus_special_tokens() -> None:
    # "red apple" = 2, "pie!" = 2 (a word and a symbol), plus [CLS] [SEP] [SEP]
    assert estimate_pair_tokens("red apple", "pie!") == 2 + 2 + 3


def test_a_lone_request_is_not_held_for_max_wait() -> None:
    """With `active_requests`, the batcher stops waiting once every active request's job is
    in the batch; without it, a lone job waits `max_wait_ms` for company."""
    scorer = OverlapScorer()
    active = {"n": 1}

    async def main() -> tuple[np.ndarray, int]:
        batcher = DynamicBatcher(
            scorer.score_pairs, max_wait_ms=600_000, active_requests=lambda: active["n"]
        )
        await batcher.start()
        alone = await asyncio.wait_for(batcher.score([("q", "a b")]), timeout=60)
        # Two active requests: the first job waits for the second, and they share a batch.
        active["n"] = 2
        both = asyncio.gather(batcher.score([("q", "a")]), batcher.score([("q", "b")]))
        await asyncio.wait_for(both, timeout=60)
        await batcher.close()
        return alone, batcher.stats.batches

    alone, batches = asyncio.run(main())
    assert alone.shape == (1,)
    assert batches == 2 and scorer.batches == [1, 2]
