"""What an evaluation ran on: date, versions, models, command line and the machine's CPU.

Latency numbers mean little without the machine they came from, and quality numbers
little without the exact models; the report and the JSON carry this block with them.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SIMD_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
"""The CPU flags that change how fast encoders and rerankers run (vector and matrix units)."""


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The CPU's model name and its `SIMD_FLAGS`, read from `cpuinfo` (Linux); elsewhere
    the platform's processor string and no flags."""
    model, flags = "", set[str]()
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return {
        "model": model or platform.processor() or platform.machine(),
        "flags": [f for f in SIMD_FLAGS if f in flags],
        "logical_cpus": os.cpu_count(),
    }


def run_metadata(
    command: Sequence[str],
    models: Mapping[str, Any],
    *,
    date: str,
    threads: int | None = None,
) -> dict[str, Any]:
    """The metadata block of an evaluation: `command` is the argv that ran it; `models`
    maps a role ("dense encoder", "reranker SPEC") to its identity (see
    `Harness.models`); `date` is when it ran (UTC, ISO 8601)."""
    from shortlist import __version__

    out: dict[str, Any] = {
        "date": date,
        "shortlist_version": __version__,
        "command": shlex.join(command),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_info(),
        "threads": threads,
        "models": dict(models),
    }
    torch = sys.modules.get("torch")  # only report torch when the run loaded it
    if torch is not None:
        out["torch"] = str(getattr(torch, "__version__", ""))
    return out
