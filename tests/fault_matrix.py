"""Tally the fault-injection matrix of `test_fault_injection.py` for a report: every file
of a generation x {truncate, zero, delete, flip} x {with checksums, legacy manifest},
counting exit codes of `search`, `check` and `repair`, tracebacks, and data loss (a data
file of the index removed or changed by `repair`).

Usage (from the repository root): python tests/fault_matrix.py
"""

from __future__ import annotations

import collections
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import test_fault_injection as t  # noqa: E402
from clirun import run_cli  # noqa: E402


def main() -> None:
    tally: collections.Counter[tuple[object, ...]] = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        pristine = {
            "sparse": (base / "s", t._build(base / "s", dense=False)),
            "dense": (base / "d", t._build(base / "d", dense=True)),
        }
        n = 0
        for legacy in (False, True):
            mode = "legacy" if legacy else "checksums"
            for kind, role in t.CASES:
                for fault in t.FAULTS:
                    n += 1
                    root, _ = t._copy(pristine, kind, base / f"case{n}", legacy=legacy)
                    path = t._resolve(root, role)
                    shared = fault != "delete" and t._shared_with_previous(root, path)
                    t._damage(path, fault)
                    runs = [
                        run_cli("search", t.QUERIES[0], "--index", str(root)),
                        run_cli("check", str(root)),
                    ]
                    tally[(mode, "cases")] += 1
                    tally[(mode, "search exit", runs[0].exit_code)] += 1
                    tally[(mode, "check exit", runs[1].exit_code)] += 1
                    if runs[1].exit_code == 3:
                        before = t._inventory(root)
                        runs.append(run_cli("repair", str(root)))
                        where = "shared with gen 2" if shared else "live generation only"
                        tally[(mode, "repair exit", runs[-1].exit_code, where)] += 1
                        tally[(mode, "data loss", t._inventory(root) != before)] += 1
                    crashed = any(
                        "Traceback" in s or "Aborted" in s
                        for r in runs
                        for s in (r.stdout, r.stderr)
                    )
                    tally[(mode, "traceback or Aborted", crashed)] += 1
    for key, count in sorted(tally.items(), key=str):
        print(f"{count:4d}  " + "  ".join(map(str, key)))


if __name__ == "__main__":
    main()
