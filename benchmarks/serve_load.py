"""Load test of `shortlist serve` on loopback: dynamic batching on vs off.

Starts the server twice in a child process (batching on, then `--no-batching`), drives
each with N concurrent clients for a fixed time (each client sends its next request when
the previous one returns), and reports requests/s, p50 and p99 latency, and the on/off
ratio. It stops by itself.

    python benchmarks/serve_load.py                       # 16 clients, 30 s per run
    python benchmarks/serve_load.py --clients 8 --seconds 10 --docs 50
    python benchmarks/serve_load.py --rerank SPEC         # a registry spec instead

The default reranker is shortlist's own `CrossEncoderReranker` (`--backend`, default
torch) over a random-weight BERT with the shape of ms-marco-MiniLM-L-6-v2 (6 layers,
hidden 384, 12 heads, intermediate 1536, one logit; `--shape tinybert-l2` for
ms-marco-TinyBERT-L-2-v2's 2 layers, hidden 128), saved to a temporary folder with the
offline all-MiniLM-L6-v2 WordPiece tokenizer (same uncased vocabulary). Random weights
cost exactly what trained ones cost; the scores are meaningless and not checked.
`--rerank SPEC` serves any registry spec instead.

Every request carries `--docs` documents of 20 to 150 words (fixed seed), so requests
differ in length as real candidate lists do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORDS = (
    "retrieval rerank passage query document model score index corpus token batch latency "
    "cross encoder dense sparse hybrid fusion chunk window context prompt answer question "
    "garden cat river mountain history science protein cell market price energy climate "
    "policy law court music film novel city travel food health sleep heart brain memory"
).split()


SHAPES = {
    # name: (layers, hidden, heads, intermediate), as in the published checkpoints
    "minilm-l6": (6, 384, 12, 1536),  # cross-encoder/ms-marco-MiniLM-L-6-v2
    "tinybert-l2": (2, 128, 2, 512),  # cross-encoder/ms-marco-TinyBERT-L-2-v2
}


def build_model(folder: Path, shape: str, seed: int = 0) -> Path:
    """A random-weight BERT cross-encoder of `shape` with the offline WordPiece tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from shortlist.retrieve.encoder import default_model_path

    torch.manual_seed(seed)
    layers, hidden, heads, intermediate = SHAPES[shape]
    config = BertConfig(
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=512,
        num_labels=1,
    )
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(folder)
    return folder


def make_requests(n_requests: int, n_docs: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    return [
        {
            "model": "default",
            "query": text(4, 10),
            "documents": [text(20, 150) for _ in range(n_docs)],
        }
        for _ in range(n_requests)
    ]


def serve_child(args: argparse.Namespace) -> None:
    """The server process: build the reranker and run uvicorn until SIGTERM."""
    import uvicorn

    from shortlist.serve.app import ServeConfig, create_app

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from shortlist.rerank.registry import load_reranker

    spec = args.rerank
    if spec is None:
        work = Path(tempfile.mkdtemp(prefix="shortlist-serve-load-"))
        folder = build_model(work / "model", args.shape)
        spec = f"cross-encoder:{folder}?backend={args.backend}"
        if args.batch_tokens:
            spec += f"&batch_tokens={args.batch_tokens}"
    reranker: Any = load_reranker(spec)
    reranker.score_pairs([("warm up", "the model once")])
    config = ServeConfig(
        batching=args.batching == "on",
        max_batch_tokens=args.max_batch_tokens,
        max_batch_pairs=4096,
        max_wait_ms=args.max_wait_ms,
        queue_size=1024,
    )
    app = create_app(config, {"default": reranker})
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


async def drive(
    url: str, requests: list[dict[str, Any]], clients: int, seconds: float
) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        for r in requests[:2]:  # warm-up, not measured
            (await http.post("/v2/rerank", json=r)).raise_for_status()
        started = time.perf_counter()
        deadline = started + seconds

        async def client(c: int) -> None:
            nonlocal errors
            i = c
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                resp = await http.post("/v2/rerank", json=requests[i % len(requests)])
                if resp.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1
                i += clients

        await asyncio.gather(*(client(c) for c in range(clients)))
        elapsed = time.perf_counter() - started
        metrics = (await http.get("/metrics")).text
    lat = sorted(latencies)
    return {
        "requests": len(lat),
        "errors": errors,
        "seconds": elapsed,
        "rps": len(lat) / elapsed,
        "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("nan"),
        "mean_batch_pairs": _mean_batch(metrics),
    }


def _mean_batch(metrics: str) -> float:
    total = count = 0.0
    for line in metrics.splitlines():
        if line.startswith("shortlist_batch_pairs_sum"):
            total = float(line.split()[-1])
        elif line.startswith("shortlist_batch_pairs_count"):
            count = float(line.split()[-1])
    return total / count if count else float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_server(
    args: argparse.Namespace, batching: str, requests: list[dict[str, Any]]
) -> dict[str, float]:
    import httpx

    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--batching",
        batching,
        "--port",
        str(port),
        "--batch-tokens",
        str(args.batch_tokens),
        "--max-batch-tokens",
        str(args.max_batch_tokens),
        "--max-wait-ms",
        str(args.max_wait_ms),
        "--threads",
        str(args.threads),
    ]
    cmd += ["--shape", args.shape, "--backend", args.backend]
    if args.rerank:
        cmd += ["--rerank", args.rerank]
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("benchmark server did not start")
            time.sleep(0.2)
        return asyncio.run(drive(url, requests, args.clients, args.seconds))
    finally:
        proc.terminate()
        proc.wait(timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--docs", type=int, default=50, help="documents per request")
    parser.add_argument("--rerank", default=None, help="a reranker spec (needs the registry)")
    parser.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="minilm-l6",
        help="shape of the default random-weight cross-encoder",
    )
    parser.add_argument(
        "--batch-tokens",
        type=int,
        default=0,
        help="padded tokens per forward pass of the default scorer (0: the library default)",
    )
    parser.add_argument("--backend", default="torch", help="backend of the default scorer")
    parser.add_argument(
        "--max-batch-tokens",
        type=int,
        default=65536,
        help="server: token budget of one cross-request batch",
    )
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batching", choices=["on", "off"], default="on", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        serve_child(args)
        return 0
    requests = make_requests(64, args.docs)
    results = {}
    for mode in ("on", "off"):
        results[mode] = run_server(args, mode, requests)
        r = results[mode]
        print(
            f"batching {mode:>3}: {r['requests']:5d} requests in {r['seconds']:.1f} s  "
            f"{r['rps']:.2f} req/s  p50 {r['p50_ms']:.0f} ms  p99 {r['p99_ms']:.0f} ms  "
            f"mean batch {r['mean_batch_pairs']:.0f} pairs  errors {r['errors']}",
            flush=True,
        )
    on, off = results["on"], results["off"]
    ratio = on["rps"] / off["rps"] if off["rps"] else float("nan")
    print(f"throughput on/off: {ratio:.2f}x   p99 on/off: {on['p99_ms'] / off['p99_ms']:.2f}x")
    if args.json is not None:
        payload = {"args": {k: v for k, v in vars(args).items() if k != "json"}, **results}
        args.json.write_text(json.dumps({**payload, "ratio": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
