"""The least any Python ASGI server can add to a request: the floor under serve_vs_library.py.

Runs uvicorn (uvloop + httptools when installed, as `shortlist serve` does) in a
subprocess with a bare ASGI app that does nothing but the work a request needs, and times
POSTs to it with the same bare keep-alive `http.client` client as
`serve_vs_library.py --client raw`. The app reads the body, holds the request for
`--work-ms` of CPU-free waiting (a `time.sleep`, like a model call that releases the GIL)
either on the event loop itself (`inline`) or in a worker thread (`thread`, as the server
runs its pipeline), then answers an ~8 KB JSON body, the size of a 10-hit `/v1/search`
answer.

    python benchmarks/serve_floor.py                     # 0 and 7 ms of work, both modes
    python benchmarks/serve_floor.py --work-ms 7 --requests 500

The table gives the client's p50 and the p50 of what each request took beyond the work as
the app timed it (a sleep overshoots by tens of microseconds). The `thread` row
at the library's query time is the floor under the served/library ratio: no shortlist
code, no validation, no logging, only HTTP over loopback and one hop to a worker thread
and back.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time

from serve_vs_library import free_port  # benchmarks/ is the script's folder

APP = r"""
import asyncio, os, time
PAYLOAD = b'{"x": "' + b"a" * 7800 + b'"}'
WORK = float(os.environ["FLOOR_WORK_MS"]) / 1000.0
THREAD = os.environ["FLOOR_MODE"] == "thread"

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    started = time.perf_counter()
    if WORK and THREAD:
        await asyncio.get_running_loop().run_in_executor(None, time.sleep, WORK)
    elif WORK:
        time.sleep(WORK)
    slept = b"%.4f" % ((time.perf_counter() - started) * 1000.0)
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(PAYLOAD)).encode()),
        (b"x-work-ms", slept)]})
    await send({"type": "http.response.body", "body": PAYLOAD})
"""


def measure(work_ms: float, mode: str, requests: int, folder: str) -> tuple[float, float]:
    port = free_port()
    env = {**os.environ, "FLOOR_WORK_MS": str(work_ms), "FLOOR_MODE": mode, "PYTHONPATH": folder}
    cmd = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "floor_app:app"]  # fmt: skip
    server = subprocess.Popen(cmd, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("uvicorn did not start") from None
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = json.dumps({"query": "cat river mountain history", "k": 100, "top_n": 10}).encode()
        times: list[float] = []
        added: list[float] = []
        for _ in range(requests + 20):
            t = time.perf_counter()
            conn.request("POST", "/v1/search", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            json.loads(response.read())
            ms = (time.perf_counter() - t) * 1000.0
            times.append(ms)
            added.append(ms - float(response.getheader("x-work-ms") or 0))
        # the first requests warm up
        return statistics.median(times[20:]), statistics.median(added[20:])
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-ms", type=float, action="append", help="default: 0 and 7")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "floor_app.py"), "w") as f:
            f.write(APP)
        print(f"{'work':>8} {'mode':<7} {'client p50':>10} {'added p50':>9}")
        for work in args.work_ms or [0.0, 7.0]:
            for mode in ("inline", "thread"):
                p50, added = measure(work, mode, args.requests, folder)
                print(f"{work:>6.1f}ms {mode:<7} {p50:>8.2f}ms {added:>7.2f}ms")


if __name__ == "__main__":
    main()
