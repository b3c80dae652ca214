"""File-system helpers shared by every on-disk structure (BM25, vectors, generations)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def link_or_copy(src: Path, dst: Path) -> None:
    """Hardlink `src` to `dst`, or copy it where hardlinks are impossible.

    Immutable segment files are shared between index generations this way, so a
    write costs only what changed. Raises `OSError` when `src` cannot be read.
    """
    try:
        os.link(src, dst)
    except OSError:  # another file system, or one without hardlinks
        shutil.copy2(src, dst)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (new names, renames) durable; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
