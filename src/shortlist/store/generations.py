"""Atomic generations: how an index directory changes without ever being half-written.

Layout::

    INDEX_DIR/
      CURRENT        one line: the name of the live generation, e.g. "gen-000003"
      .lock          held (flock) by the single writer
      gen-000003/    the live generation: manifest.json plus its data files
      gen-000002/    the previous one, kept so readers that opened it keep working

A writer builds the next generation in a fresh directory (hardlinking the immutable
files it keeps), fsyncs it, and only then replaces CURRENT with `os.replace`, which
is atomic on POSIX. A crash at any point before that replace leaves CURRENT naming
the old, complete generation; the orphan directory is removed by the next writer.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from shortlist._fs import fsync_dir, link_or_copy

__all__ = [
    "begin_generation",
    "commit_generation",
    "current_generation",
    "fsync_dir",
    "fsync_tree",
    "link_or_copy",
    "writer_lock",
]

CURRENT = "CURRENT"
_GEN_RE = re.compile(r"^gen-(\d{6})$")


def fsync_tree(path: Path) -> None:
    """fsync every file and directory below `path` (data must be durable before the switch)."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(root))


def current_generation(root: Path) -> Path | None:
    """The live generation directory, or None when `root` holds no committed index."""
    try:
        name = (root / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not _GEN_RE.match(name):
        return None
    gen = root / name
    return gen if gen.is_dir() else None


def _generations(root: Path) -> list[tuple[int, Path]]:
    out = []
    for p in root.iterdir() if root.is_dir() else []:
        m = _GEN_RE.match(p.name)
        if m and p.is_dir():
            out.append((int(m.group(1)), p))
    return sorted(out)


@contextlib.contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """Exclusive lock for writers of one index (readers never lock)."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def begin_generation(root: Path) -> Path:
    """Create and return the directory for the next generation (call under `writer_lock`).

    Orphans left by interrupted writers (generations newer than CURRENT) are removed.
    """
    live = current_generation(root)
    gens = _generations(root)
    for _n, path in gens:
        if live is None or path.name > live.name:
            shutil.rmtree(path, ignore_errors=True)
    number = max((n for n, p in gens if p.exists()), default=0) + 1
    new = root / f"gen-{number:06d}"
    new.mkdir(parents=True)
    return new


def commit_generation(root: Path, gen: Path, keep: int = 2) -> None:
    """Make `gen` the live generation atomically, then drop all but the newest `keep`."""
    fsync_tree(gen)
    tmp = root / f"{CURRENT}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(gen.name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / CURRENT)
    fsync_dir(root)
    for _n, path in _generations(root)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
