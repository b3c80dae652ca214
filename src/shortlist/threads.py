"""Intra-op thread counts for torch, ONNX Runtime and OpenVINO, set at the program's edge.

Why this exists: a model runtime left at its defaults sizes its thread pool to every
core of the machine and keeps idle workers spinning. When another busy process shares
the cores, each parallel operator waits for its slowest worker, which the scheduler has
just preempted; measured here, encoding one query went from about 18 ms to about 800 ms
that way. The command line and the server therefore pick the count once (`--threads`,
default `default_threads()`: the physical cores this process may run on) and hand it to
every runtime; the library itself never changes thread settings on import.

`apply_threads` is process-wide (torch's pool and the OpenMP/BLAS environment are
process-wide), so only the CLI and the server call it. ONNX Runtime sessions and
OpenVINO compiled models take the count per model (`num_threads=` of `load_encoder`
and `Index.open`); their idle workers are told not to spin.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

# Read by OpenMP (torch's CPU pool), MKL and OpenBLAS when they start: set before they load.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cpus() -> list[int]:
    """The logical CPUs this process may run on (its affinity mask where the OS has one)."""
    getter = getattr(os, "sched_getaffinity", None)
    if getter is not None:
        return sorted(getter(0))
    return list(range(os.cpu_count() or 1))


def physical_cores(cpus: list[int], sys_cpu: Path = Path("/sys/devices/system/cpu")) -> int:
    """How many distinct physical cores `cpus` cover (SMT siblings count once).

    Read from Linux's `topology/{physical_package_id,core_id}`; where that is not
    readable, every logical CPU counts as a core.
    """
    cores: set[tuple[str, str]] = set()
    for cpu in cpus:
        topo = sys_cpu / f"cpu{cpu}" / "topology"
        try:
            package = (topo / "physical_package_id").read_text().strip()
            core = (topo / "core_id").read_text().strip()
        except OSError:
            return max(1, len(cpus))
        cores.add((package, core))
    return max(1, len(cores))


def default_threads(environ: Mapping[str, str] | None = None) -> int:
    """`OMP_NUM_THREADS` when the user set it to a positive integer, else the physical
    cores available to this process."""
    env = os.environ if environ is None else environ
    value = env.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return physical_cores(available_cpus())


def apply_threads(n: int, environ: MutableMapping[str, str] | None = None) -> None:
    """Use `n` intra-op threads in this process: the OpenMP/MKL/OpenBLAS environment for
    libraries not loaded yet (and `OMP_WAIT_POLICY=PASSIVE` unless already set), and
    `torch.set_num_threads` when torch is already loaded (once loaded, torch ignores the
    environment). Process-wide: call it at the edge."""
    if n < 1:
        from shortlist.errors import InvalidInputError

        raise InvalidInputError(f"--threads must be >= 1, got {n}")
    env = os.environ if environ is None else environ
    for name in THREAD_ENV_VARS:
        env[name] = str(n)
    # Idle OpenMP workers sleep instead of spinning (unless the user chose otherwise):
    # spinning workers are what steal the cores from a preempted one under contention.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
