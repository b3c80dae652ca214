"""The least any Python ASGI server can add to a request: the floor under serve_vs_library.py.

Runs uvicorn (uvloop + httptools when installed, as `shortlist serve` does) in a
subprocess with a bare ASGI app that does nothing but the work a request needs, and times
POSTs to it with the same bare keep-alive `http.client` client as
`serve_vs_library.py --client raw`. The app reads the body, holds the request for
`--work-ms` of CPU-free waiting (a `time.sleep`, like a model call that releases the GIL)
either on the event loop itself (`inline`) or in a worker thread (`thread`, as the server
runs its pipeline), then answers an ~8 KB JSON body, the size of a 10-hit `/v1/search`
answer.

With `--pipeline`, the work is instead the library's own query: the bare app opens an
index of `--docs` synthetic passages (serve_vs_library.py's corpus and queries) and runs
`Pipeline(first_stage(index, "hybrid"), bi-encoder, k=100, top_n=10).run(query)` with one
thread, then builds the answer as `/v1/search` does (`SearchResponse`, pydantic-core JSON).
That row is what the library's query costs behind HTTP with nothing of shortlist's server
around it, to set beside `serve_vs_library.py --rerank bi-encoder -k 100 --threads 1`.

    python benchmarks/serve_floor.py                     # 0 and 7 ms of work, both modes
    python benchmarks/serve_floor.py --work-ms 7 --requests 500
    HF_HUB_OFFLINE=1 python benchmarks/serve_floor.py --work-ms 6 --pipeline

The table gives the client's p50 and the p50 of what each request took beyond the work as
the app timed it (a sleep overshoots by tens of microseconds; for the pipeline, the JSON
answer is counted as added, as it is in the server). The `thread` row at the library's
query time is the floor under the served/library ratio: no shortlist server code, no
validation, no logging, only HTTP over loopback and one hop to a worker thread and back.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

from serve_vs_library import RawClient, corpus, free_port, queries  # benchmarks/: this folder

APP = r"""
import asyncio, json, os, time
PAYLOAD = b'{"x": "' + b"a" * 7800 + b'"}'
WORK = float(os.environ["FLOOR_WORK_MS"]) / 1000.0
THREAD = os.environ["FLOOR_MODE"] == "thread"
INDEX = os.environ.get("FLOOR_INDEX")

def wait(body):
    started = time.perf_counter()
    time.sleep(WORK)
    return PAYLOAD, (time.perf_counter() - started) * 1000.0

if INDEX:
    from shortlist.threads import apply_threads
    apply_threads(1)
    from shortlist.cli._common import load_reranker_with_threads
    from shortlist.pipeline import Pipeline
    from shortlist.retrieve.stages import first_stage
    from shortlist.serve.schemas import SearchResponse
    from shortlist.store.index import Index
    PIPELINE = Pipeline(first_stage(Index.open(INDEX, num_threads=1), "hybrid"),
                        load_reranker_with_threads("bi-encoder", 1), k=100, top_n=10)

    def work(body):
        query = json.loads(body)["query"]
        started = time.perf_counter()
        ranking = PIPELINE.run(query)
        ms = (time.perf_counter() - started) * 1000.0
        answer = SearchResponse.model_validate({"query": query,
            "results": [h.to_dict() for h in ranking], "timings_ms": dict(ranking.timings_ms),
            "warnings": list(ranking.warnings) or None})
        return answer.model_dump_json().encode(), ms
else:
    work = wait

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if THREAD and (WORK or INDEX):
        payload, ms = await asyncio.get_running_loop().run_in_executor(None, work, body)
    elif WORK or INDEX:
        payload, ms = work(body)
    else:
        payload, ms = PAYLOAD, 0.0
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        (b"x-work-ms", b"%.4f" % ms)]})
    await send({"type": "http.response.body", "body": payload})
"""


def measure(
    work_ms: float, mode: str, requests: int, folder: str, index: str | None
) -> tuple[float, float]:
    port = free_port()
    env = {**os.environ, "FLOOR_WORK_MS": str(work_ms), "FLOOR_MODE": mode, "PYTHONPATH": folder}
    if index is not None:
        env["FLOOR_INDEX"] = index
    cmd = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "floor_app:app"]  # fmt: skip
    server = subprocess.Popen(cmd, env=env)
    try:
        deadline = time.monotonic() + 300  # --pipeline loads a model first
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("uvicorn did not start") from None
                time.sleep(0.1)
        client = RawClient(f"http://127.0.0.1:{port}")
        times: list[float] = []
        added: list[float] = []
        for query in queries(requests + 20):
            t = time.perf_counter()
            response = client.post("/v1/search", json={"query": query, "k": 100, "top_n": 10})
            response.json()
            ms = (time.perf_counter() - t) * 1000.0
            times.append(ms)
            added.append(ms - float(response.headers.get("x-work-ms") or 0))
        # the first requests warm up
        return statistics.median(times[20:]), statistics.median(added[20:])
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-ms", type=float, action="append", help="default: 0 and 7")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--pipeline", action="store_true", help="also the library's query as the work (above)"
    )
    parser.add_argument("--docs", type=int, default=300, help="passages of the --pipeline index")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "floor_app.py"), "w") as f:
            f.write(APP)
        rows: list[tuple[str, float, str | None]] = [
            (f"{work:.1f}ms", work, None) for work in args.work_ms or [0.0, 7.0]
        ]
        if args.pipeline:
            from shortlist.store.index import Index

            index = Index.create(os.path.join(folder, "index"), corpus(args.docs))
            rows.append(("pipeline", 0.0, str(index.path)))
        print(f"{'work':>8} {'mode':<7} {'client p50':>10} {'added p50':>9}")
        for label, work, index_path in rows:
            for mode in ("inline", "thread"):
                p50, added = measure(work, mode, args.requests, folder, index_path)
                print(f"{label:>8} {mode:<7} {p50:>8.2f}ms {added:>7.2f}ms")


if __name__ == "__main__":
    main()
