"""First-use cost of each dense encoder backend: export/calibration (cold cache) and load
(cached), each in a fresh Python process, as a new user or a fresh CI run sees it.

For every backend, one process loads `default?backend=B` with an empty cache folder
(export, int8 quantization or calibration happen here), then a second process loads it
again from the now-filled folder. Each process reports the seconds spent importing
shortlist's encoder module, in `load_encoder` and in the first `encode` of one query;
the wall time includes the interpreter start. Nothing is cached across backends, and
the cache folders are removed at the end unless `--keep` is given.

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/encoder_first_use.py \
        [--backends torch onnx onnx-int8 openvino openvino-int8] [--threads 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from shortlist.retrieve.encoders import load_encoder
from shortlist.threads import apply_threads
apply_threads({threads})
t1 = time.perf_counter()
encoder = load_encoder({spec!r}, cache_dir=__import__("pathlib").Path({cache!r}))
t2 = time.perf_counter()
encoder.encode(["how do I configure the network interface?"])
t3 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "load": t2 - t1, "first_encode": t3 - t2,
                  "backend": getattr(encoder, "backend", "torch")}}))
"""


def _measure(spec: str, cache: Path, threads: int) -> dict[str, float]:
    code = _CHILD.format(spec=spec, cache=str(cache), threads=threads)
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=os.environ
    )
    wall = time.perf_counter() - start
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["torch", "onnx", "onnx-int8", "openvino", "openvino-int8"],
        help="backend names, or 'DEFAULT' for the spec 'default' with no ?backend=",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="keep the caches under DIR")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    root = args.keep or Path(tempfile.mkdtemp(prefix="shortlist-first-use-"))
    print(f"threads={args.threads} cache root={root}")
    print(
        f"{'spec':<30} {'cache':<6} {'wall s':>7} {'import':>7} {'load':>7} {'encode':>7}",
        flush=True,
    )
    try:
        for backend in args.backends:
            spec = "default" if backend == "DEFAULT" else f"default?backend={backend}"
            cache = root / backend
            shutil.rmtree(cache, ignore_errors=True)
            for state in ("cold", "cached"):
                r = _measure(spec, cache, args.threads)
                print(
                    f"{spec:<30} {state:<6} {r['wall']:>7.1f} {r['import']:>7.1f} "
                    f"{r['load']:>7.1f} {r['first_encode']:>7.2f}  ({r['backend']})",
                    flush=True,
                )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
