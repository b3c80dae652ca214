"""The file table of a generation: the size and sha256 of every file, recorded in the
index manifest at commit time (`"files": {relative path: {"bytes": n, "sha256": hex}}`).

Opening an index compares sizes (one `stat` per file), so a truncated, emptied or missing
file is reported as damage before anything reads it; `shortlist check` compares the
checksums too. Manifests written before the table existed have none, and are read as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shortlist._fs import sha256_of_file
from shortlist._ondisk import damage_as
from shortlist.errors import IndexDamagedError
from shortlist.store.generations import INCOMPLETE

MANIFEST = "manifest.json"
_NOT_TABLED = {MANIFEST, INCOMPLETE}


def _data_files(gen: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(gen):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(gen).as_posix()
            if rel not in _NOT_TABLED:
                yield rel, path


def file_table(
    gen: Path, previous: Path | None = None, previous_table: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every data file under `gen` (all but the manifest and marker).

    A file that is a hardlink of the same path in the `previous` generation (segments
    are shared that way and never change) reuses its checksum from `previous_table`,
    so a small write does not re-hash a large index.
    """
    table: dict[str, dict[str, Any]] = {}
    for rel, path in _data_files(gen):
        st = path.stat()
        digest = None
        old = (previous_table or {}).get(rel)
        if previous is not None and isinstance(old, Mapping):
            try:
                pst = (previous / rel).stat()
            except OSError:
                pst = None
            if (
                pst is not None
                and (pst.st_ino, pst.st_dev) == (st.st_ino, st.st_dev)
                and old.get("bytes") == st.st_size
                and isinstance(old.get("sha256"), str)
            ):
                digest = old["sha256"]
        table[rel] = {"bytes": st.st_size, "sha256": digest or sha256_of_file(path)}
    return table


def _table_of(gen: Path, manifest: Mapping[str, Any]) -> dict[str, tuple[int, str]] | None:
    files = manifest.get("files")
    if files is None:
        return None
    with damage_as(gen / MANIFEST):
        return {str(rel): (int(e["bytes"]), str(e["sha256"])) for rel, e in files.items()}


def check_file_sizes(gen: Path, manifest: Mapping[str, Any]) -> None:
    """Raise `IndexDamagedError` for the first tabled file that is missing or whose size
    changed since the commit. A no-op for manifests without a file table."""
    table = _table_of(gen, manifest)
    for problem in _size_problems(gen, table or {}):
        raise IndexDamagedError(*problem)


def _size_problems(gen: Path, table: Mapping[str, tuple[int, str]]) -> Iterator[tuple[Path, str]]:
    for rel, (size, _sha) in table.items():
        path = gen / rel
        try:
            found = path.stat().st_size if path.is_file() else None
        except OSError:
            found = None
        if found is None:
            yield path, "the file is missing"
        elif found != size:
            what = "emptied" if found == 0 else "truncated" if found < size else "grown"
            yield path, f"{what}: {found} bytes, {size} when written"


@dataclass(frozen=True)
class FileProblem:
    """One damaged file: its path and what is wrong."""

    path: Path
    problem: str


def verify_files(
    gen: Path, manifest: Mapping[str, Any], cache: dict[tuple[int, int, int], str] | None = None
) -> tuple[list[FileProblem], int] | None:
    """Every problem with the tabled files of `gen` (missing, size, checksum) and the
    number of files verified; None when the manifest has no table. `cache` maps
    (device, inode, size) to sha256, so files shared by generations are hashed once."""
    table = _table_of(gen, manifest)
    if table is None:
        return None
    problems = [FileProblem(p, why) for p, why in _size_problems(gen, table)]
    bad = {p.path for p in problems}
    for rel, (_size, sha) in table.items():
        path = gen / rel
        if path in bad:
            continue
        st = path.stat()
        key = (st.st_dev, st.st_ino, st.st_size)
        found = cache.get(key) if cache is not None else None
        if found is None:
            try:
                found = sha256_of_file(path)
            except OSError as exc:
                problems.append(FileProblem(path, f"unreadable ({exc})"))
                continue
            if cache is not None:
                cache[key] = found
        if found != sha:
            problems.append(FileProblem(path, "checksum differs from the one recorded at commit"))
    return problems, len(table)
