"""`/v1/search` against the library's `Pipeline.run`: same index, query, K and reranker.

Builds one index (300 synthetic documents, the offline all-MiniLM-L6-v2 encoder), then for
each reranker runs, in this one process and interleaved:

- library: `Pipeline(first_stage(index, MODE), reranker, k=K, top_n=N).run(query)`;
- served: `POST /v1/search` to a real server on 127.0.0.1, with batching on and off, one
  request at a time (latency, not throughput: see serve_load.py). By default the server is
  the `shortlist serve` command in its own process, as a client meets it
  (`--server process`); `--server thread` runs uvicorn in a thread of this process over
  the same objects, where client and server also contend for one interpreter lock.

It reports the median and p90 of each, the server's own pipeline time (`timings_ms.total`
of the response, without HTTP), and served / library. The acceptance goal is served <=
1.2x library. The served number includes HTTP, JSON and the worker-thread hops; the
library's is the `Pipeline.run` call alone. Library and served calls alternate (one
query each by default, `--block N` for runs of N), so drift on a busy machine hits both;
on a shared machine, rerun and compare medians.

    python benchmarks/serve_vs_library.py                     # bi-encoder and a MiniLM-L6
    python benchmarks/serve_vs_library.py --rerank bi-encoder --queries 50 -k 100
    python benchmarks/serve_vs_library.py --rerank bi-encoder -k 100 --client raw

`--client raw` times the served side with a bare keep-alive `http.client` connection
instead of httpx, leaving the client library's own cost (~0.5-1 ms a request) out.

The default cross-encoder is a random-weight BERT of ms-marco-MiniLM-L-6-v2's shape
(see serve_load.py): it costs what the trained one costs; scores are not checked here
(tests/test_reranker_contract.py checks they are equal).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

WORDS = (
    "retrieval rerank passage query document model score index corpus token batch latency "
    "cross encoder dense sparse hybrid fusion chunk window context prompt answer question "
    "garden cat river mountain history science protein cell market price energy climate "
    "policy law court music film novel city travel food health sleep heart brain memory"
).split()


def corpus(n: int, seed: int = 0) -> list[Any]:
    from shortlist.types import Document

    rng = random.Random(seed)
    return [
        Document(f"d{i}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 120))))
        for i in range(n)
    ]


def queries(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) for _ in range(n)]


class Server:
    """uvicorn on a free loopback port in a thread; `stop()` shuts it down."""

    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        while not self._server.started:
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """`shortlist serve --index DIR --rerank SPEC` on a free loopback port, in its own process."""

    def __init__(
        self, index_dir: Path, spec: str, *, batching: bool, max_docs: int, threads: int
    ) -> None:
        import httpx

        self.port = free_port()
        exe = shutil.which("shortlist") or "shortlist"
        cmd = [exe, "serve", "--index", str(index_dir), "--rerank", spec, "--port",
               str(self.port), "--max-docs", str(max_docs), "--threads", str(threads)]  # fmt: skip
        if not batching:
            cmd.append("--no-batching")
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ)
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise SystemExit(f"shortlist serve exited with {self._proc.returncode}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit("shortlist serve did not get ready in 300 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


class RawClient:
    """The least a client can do: one keep-alive `http.client` connection, JSON by hand."""

    class Response:
        def __init__(self, status: int, data: bytes, headers: Any) -> None:
            # headers: http.client's parsed message, as it came (`.get` ignores case)
            self.status, self.data, self.headers = status, data, headers

        def raise_for_status(self) -> None:
            if self.status != 200:
                raise RuntimeError(f"HTTP {self.status}: {self.data[:200]!r}")

        def json(self) -> Any:
            return json.loads(self.data)

    def __init__(self, url: str) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)

    def post(self, path: str, json: Any) -> RawClient.Response:
        import http.client
        import json as _json

        body = _json.dumps(json).encode()
        for attempt in (1, 2):
            try:
                self._conn.request("POST", path, body, {"Content-Type": "application/json"})
                response = self._conn.getresponse()
                return RawClient.Response(response.status, response.read(), response.headers)
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # The server closed the idle keep-alive connection (uvicorn: after 5 s, as a
                # slow library call can take); reconnect once, as httpx would.
                self._conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def summary(ms: list[float]) -> tuple[float, float]:
    ordered = sorted(ms)
    return statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rerank", action="append", help="reranker spec (repeatable)")
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument("--top-n", type=int, default=10)
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument(
        "--server",
        choices=("process", "thread"),
        default="process",
        help="`shortlist serve` in its own process (default), or uvicorn in a thread here",
    )
    parser.add_argument(
        "--client",
        choices=("httpx", "raw"),
        default="httpx",
        help="the HTTP client timed on the served side: httpx (what most Python users call), "
        "or a bare keep-alive http.client connection, which leaves out client-library cost",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads of the model runtimes, the same on both sides (default: "
        "shortlist's own default, OMP_NUM_THREADS or the physical cores)",
    )
    parser.add_argument(
        "--block",
        type=int,
        default=1,
        help="queries each side runs in a row before the other takes over (default 1: strict "
        "alternation, where each side runs on caches the other just used; 10 measures each "
        "side warm, as a server under steady traffic runs)",
    )
    args = parser.parse_args()

    import httpx

    from shortlist.threads import apply_threads, default_threads

    threads = args.threads or default_threads()
    apply_threads(threads)  # as the CLI does at its edge; the server gets --threads too

    from shortlist.cli._common import load_reranker_with_threads
    from shortlist.pipeline import Pipeline
    from shortlist.retrieve.stages import first_stage
    from shortlist.serve.app import ServeConfig, create_app
    from shortlist.store.index import Index

    work = Path(tempfile.mkdtemp(prefix="shortlist-serve-vs-library-"))
    specs = args.rerank
    if not specs:
        sys.path.insert(0, str(Path(__file__).parent))
        from serve_load import build_model

        specs = ["bi-encoder", f"cross-encoder:{build_model(work / 'minilm', 'minilm-l6')}"]
    index = Index.create(work / "index", corpus(args.docs))
    qs = queries(args.queries)
    warm = queries(3, seed=2)
    print(
        f"index: {index.num_passages} passages, mode={args.mode}, k={args.k}, "
        f"top_n={args.top_n}, {len(qs)} queries, server in a {args.server}, "
        f"{threads} thread(s) each side"
    )
    print(
        f"{'reranker':<14} {'batching':<8} {'library p50':>11} {'served p50':>10} "
        f"{'in-server p50':>13} {'p90 lib':>8} {'p90 srv':>8} {'ratio':>6}"
    )
    for spec in specs:
        for batching in (True, False):
            # Fresh handles for each side: an open index keeps recent query embeddings, and
            # neither side may profit from the other having seen the query.
            # Both sides with the same threads (`shortlist serve --threads` opens its index
            # so): left at None, OpenVINO would use every core in the library's process.
            reranker = load_reranker_with_threads(spec, threads)
            lib_index = Index.open(index.path, num_threads=threads)
            srv_index = Index.open(index.path, num_threads=threads)
            pipeline = Pipeline(
                first_stage(lib_index, args.mode), reranker, k=args.k, top_n=args.top_n
            )
            server: Server | ServeProcess
            if args.server == "thread":
                app = create_app(
                    ServeConfig(batching=batching, max_documents=max(1000, args.k)),
                    {"r": load_reranker_with_threads(spec, threads)},
                    srv_index,
                )
                server = Server(app)
            else:
                server = ServeProcess(
                    index.path,
                    spec,
                    batching=batching,
                    max_docs=max(1000, args.k),
                    threads=threads,
                )
            body = {"k": args.k, "top_n": args.top_n, "mode": args.mode}
            lib: list[float] = []
            srv: list[float] = []
            inside: list[float] = []  # the server's own pipeline time (its timings_ms.total)
            with httpx.Client(base_url=server.url, timeout=120) as httpx_client:
                client = httpx_client if args.client == "httpx" else RawClient(server.url)
                for q in warm:  # warm-up: model loading and first-call costs
                    pipeline.run(q)
                    client.post("/v1/search", json={"query": q, **body}).raise_for_status()
                # Blocks of `--block` queries, sides alternating block by block (and which
                # side leads), so drift on a shared machine hits both.
                for start in range(0, len(qs), args.block):
                    block = qs[start : start + args.block]
                    lead = (start // args.block) % 2 == 0
                    for side in ("lib", "srv") if lead else ("srv", "lib"):
                        for q in block:
                            t = time.perf_counter()
                            if side == "lib":
                                pipeline.run(q)
                            else:
                                response = client.post("/v1/search", json={"query": q, **body})
                                response.raise_for_status()
                                inside.append(float(response.json()["timings_ms"]["total"]))
                            ms = (time.perf_counter() - t) * 1000
                            (lib if side == "lib" else srv).append(ms)
            server.stop()
            (l50, l90), (s50, s90) = summary(lib), summary(srv)
            name = spec if len(spec) <= 14 else spec.split(":")[0]
            i50 = statistics.median(inside)
            print(
                f"{name:<14} {'on' if batching else 'off':<8} {l50:>9.1f}ms {s50:>8.1f}ms "
                f"{i50:>11.1f}ms {l90:>6.1f}ms {s90:>6.1f}ms {s50 / l50:>5.2f}x"
            )


if __name__ == "__main__":
    main()
