"""File-system helpers shared by every on-disk structure (BM25, vectors, generations,
exported models): hardlinks, durable renames, atomic folders and streamed file hashes."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


def hash_file_into(digest: Any, path: Path) -> None:
    """Feed the bytes of the file at `path` into `digest` (a `hashlib` object), streamed
    in 1 MiB blocks so a multi-GB weight file never sits in memory."""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def sha256_of_file(path: Path) -> str:
    """Hex sha256 of one file's bytes (streamed)."""
    digest = hashlib.sha256()
    hash_file_into(digest, path)
    return digest.hexdigest()


def publish_dir(final_dir: Path, build: Callable[[Path], None], *, marker: str) -> bool:
    """Create the folder `final_dir` atomically: `build(tmp)` fills a temporary sibling
    folder, which is then renamed to `final_dir`. A crash never leaves half a folder.

    Returns False when `final_dir/marker` already existed (nothing built), True otherwise.
    A concurrent writer that wins the rename race is accepted when its `marker` exists.
    """
    if (final_dir / marker).is_file():
        return False
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=final_dir.parent))
    try:
        build(tmp)
        try:
            os.replace(tmp, final_dir)
        except OSError:
            if not (final_dir / marker).is_file():  # not a concurrent writer winning
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def replace_dir(target: Path, build: Callable[[Path], None], *, mode: int | None = None) -> Path:
    """Write the folder `target` as a whole: `build(tmp)` fills a temporary sibling folder,
    which then takes `target`'s place (an existing `target` is removed first). A failed or
    interrupted build leaves `target` as it was and no temporary folder behind.

    `mode` sets the folder's permissions (temporary folders are created 0700). Returns
    `target`. Unlike `publish_dir`, an existing folder is replaced, not kept.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
