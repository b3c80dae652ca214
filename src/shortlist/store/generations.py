"""Atomic generations: how an index directory changes without ever being half-written.

Layout::

    INDEX_DIR/
      CURRENT        one line: the name of the live generation, e.g. "gen-000003"
      .lock          held (flock) by the single writer
      gen-000003/    the live generation: manifest.json plus its data files
      gen-000002/    the previous one, kept so readers that opened it keep working
      readers/       one lease file per open reader (see "Reader pins" below)

A writer builds the next generation in a fresh directory (hardlinking the immutable
files it keeps) that holds an `.incomplete` marker while it is written. It fsyncs the
directory and only then replaces CURRENT with `os.replace`, which is atomic on POSIX,
and removes the marker. A crash at any point before that replace leaves CURRENT naming the old,
complete generation. The next writer removes only directories it can prove are such
leftovers: newer than CURRENT and still marked. Without a readable CURRENT nothing is
removed at all: the folder is damaged, and `shortlist repair` decides what is live.

Reader pins. A reader that keeps a generation open (a server, a long-running process)
holds a lease on it: a file `readers/<generation>.<pid>.<token>.lease` locked with
`flock` for as long as the reader lives. A writer's cleanup never removes a generation
with a held lease. A crashed reader's lock is released by the kernel, so its lease file
is detectably stale (a non-blocking lock on it succeeds) and the writer removes it.
Readers read CURRENT and take the lease under a short registry lock that the writer's
cleanup also holds, so a generation cannot be removed between a reader choosing it and
pinning it. A reader that cannot write to the folder (read-only media) opens unpinned.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from shortlist._fs import fsync_dir, link_or_copy

__all__ = [
    "CURRENT",
    "INCOMPLETE",
    "Lease",
    "begin_generation",
    "commit_generation",
    "current_generation",
    "current_generation_name",
    "describe_current",
    "folder_state",
    "fsync_dir",
    "fsync_tree",
    "generation_number",
    "generations",
    "link_or_copy",
    "pin_current",
    "pin_generation",
    "pinned_generations",
    "write_current",
    "writer_lock",
]

CURRENT = "CURRENT"
INCOMPLETE = ".incomplete"
"""Marker inside a generation directory while a writer is still filling it."""
READERS = "readers"
_REGISTRY_LOCK = "registry.lock"
_LEASE_SUFFIX = ".lease"
_TRASH_PREFIX = ".deleting-"
_GEN_RE = re.compile(r"^gen-(\d{6})$")
EXTERNAL_POINTER = "store.json"
"""A folder holding this file points at an external store (`shortlist.store.milvus`)
instead of holding generations."""


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


def generation_number(name: str) -> int | None:
    """6-digit number of a generation directory name ("gen-000003" -> 3), else None."""
    m = _GEN_RE.match(name)
    return int(m.group(1)) if m else None


def current_generation_name(root: Path) -> str | None:
    """The name CURRENT holds ("gen-000003"), or None when it is missing or not a
    generation name. Cheap (one small read): a server polls it between requests."""
    try:
        name = (Path(root) / CURRENT).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return name if _GEN_RE.match(name) else None


def current_generation(root: Path) -> Path | None:
    """The live generation directory, or None when `root` holds no committed index."""
    name = current_generation_name(root)
    if name is None:
        return None
    gen = Path(root) / name
    return gen if gen.is_dir() else None


def generations(root: Path) -> list[tuple[int, Path]]:
    """Every `gen-NNNNNN` directory under `root`, oldest first."""
    out = []
    try:
        entries = list(Path(root).iterdir())
    except OSError:
        return []
    for p in entries:
        n = generation_number(p.name)
        if n is not None and p.is_dir():
            out.append((n, p))
    return sorted(out)


@contextlib.contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """Exclusive lock for writers of one index (readers never take it)."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# ---- reader pins -------------------------------------------------------------------


@contextlib.contextmanager
def _registry_lock(root: Path) -> Iterator[Path]:
    """Short exclusive lock over `readers/`: pinning and pruning never interleave."""
    import fcntl

    readers = root / READERS
    readers.mkdir(exist_ok=True)
    fd = os.open(readers / _REGISTRY_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield readers
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _release_lease(fd: int, path: str, owner: int) -> None:
    # Unlink before unlocking: a writer never sees a stale file that is still ours. A
    # forked child that inherited the lease only closes its copy of the descriptor: the
    # lock and the file stay with the parent.
    if os.getpid() == owner:
        with contextlib.suppress(OSError):
            os.unlink(path)
    with contextlib.suppress(OSError):
        os.close(fd)


class Lease:
    """A held pin on one generation. `release()` (idempotent) lets writers remove it;
    a lease that is garbage-collected, or whose process dies, is released too."""

    def __init__(self, generation: str, fd: int, path: Path) -> None:
        self.generation = generation
        self.path = path
        self._finalizer = weakref.finalize(self, _release_lease, fd, str(path), os.getpid())

    @property
    def held(self) -> bool:
        return self._finalizer.alive

    def release(self) -> None:
        self._finalizer()


def _take_lease(readers: Path, name: str) -> Lease:
    import fcntl

    path = readers / f"{name}.{os.getpid()}.{secrets.token_hex(6)}{_LEASE_SUFFIX}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return Lease(name, fd, path)


def pin_current(root: Path) -> tuple[str | None, Lease | None]:
    """Read CURRENT and pin the generation it names, atomically with respect to writers'
    cleanup. Returns (name or None when CURRENT is missing or unreadable, lease or None
    when the folder cannot be written, e.g. read-only media)."""
    root = Path(root)
    if current_generation_name(root) is None:
        return None, None  # not an index: create nothing in the folder
    try:
        with _registry_lock(root) as readers:
            name = current_generation_name(root)
            if name is None or not (root / name).is_dir():
                return name, None
            return name, _take_lease(readers, name)
    except OSError:
        return current_generation_name(root), None


def pin_generation(root: Path, name: str) -> Lease | None:
    """Pin generation `name` (a writer pins what it just committed); None where the
    folder cannot be written."""
    try:
        with _registry_lock(Path(root)) as readers:
            return _take_lease(readers, name)
    except OSError:
        return None


def _scan_leases(readers: Path) -> set[str]:
    """Generations with a held lease; stale leases (their holder died) are removed.
    Call with the registry lock held."""
    import fcntl

    pinned: set[str] = set()
    try:
        entries = list(readers.iterdir())
    except OSError:
        return pinned
    for path in entries:
        if not path.name.endswith(_LEASE_SUFFIX):
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pinned.add(path.name.split(".", 1)[0])
        except OSError:
            pinned.add(path.name.split(".", 1)[0])  # cannot tell: treat as held
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        finally:
            os.close(fd)
    return pinned


def pinned_generations(root: Path) -> set[str]:
    """Names of the generations some live reader holds a lease on."""
    root = Path(root)
    if not (root / READERS).is_dir():
        return set()
    try:
        with _registry_lock(root) as readers:
            return _scan_leases(readers)
    except OSError:
        return set()


# ---- what a folder holds ---------------------------------------------------------

FolderState = Literal["missing", "file", "empty", "index", "damaged", "foreign"]


def _ignorable(entry: Path) -> bool:
    """Entries a writer leaves that hold no data: locks, leases, an unfinished CURRENT
    switch, an interrupted cleanup, a generation still marked incomplete."""
    name = entry.name
    if name in (".lock", READERS, f"{CURRENT}.tmp") or name.startswith(_TRASH_PREFIX):
        return True
    return generation_number(name) is not None and (entry / INCOMPLETE).is_file()


def folder_state(root: Path) -> FolderState:
    """What `root` holds, for deciding whether a new index may be built there:

    - "missing" / "file": no folder, or a file in its place;
    - "empty": nothing, or only what an interrupted first write left behind;
    - "index": a readable CURRENT naming an existing generation;
    - "damaged": no usable CURRENT, but shortlist generations or a CURRENT file;
    - "foreign": other files, not written by shortlist.
    """
    root = Path(root)
    if not root.exists():
        return "missing"
    if not root.is_dir():
        return "file"
    if current_generation(root) is not None:
        return "index"
    entries = [p for p in root.iterdir() if not _ignorable(p)]
    if not entries:
        return "empty"
    for p in entries:
        if p.name == CURRENT:
            return "damaged"
        n = generation_number(p.name[:10])
        if n is not None and p.is_dir() and _written_by_shortlist(p):
            return "damaged"
    return "foreign"


def describe_current(root: Path) -> str | None:
    """What is wrong with CURRENT (missing, garbled, naming a missing generation), or
    None when it names an existing generation."""
    root = Path(root)
    path = root / CURRENT
    try:
        text = path.read_bytes().decode("utf-8").strip()
    except FileNotFoundError:
        held = [p.name for _n, p in generations(root)]
        where = f", though the folder holds {', '.join(held)}" if held else ""
        return f"the file is missing{where}"
    except (OSError, UnicodeDecodeError) as exc:
        return f"the file is unreadable ({exc})"
    if not _GEN_RE.match(text):
        return f"holds {text[:40]!r}, not a generation name"
    if not (root / text).is_dir():
        return f"names {text}, which is missing"
    return None


# ---- writing ---------------------------------------------------------------------


def _written_by_shortlist(gen: Path) -> bool:
    """A generation shortlist wrote: still marked by a writer, or with a manifest.json
    of a shortlist format. Anything else in a `gen-*` folder is never removed."""
    if (gen / INCOMPLETE).exists():
        return True
    try:
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and str(manifest.get("format", "")).startswith("shortlist")


def begin_generation(root: Path) -> Path:
    """Create and return the directory for the next generation (call under `writer_lock`).

    Leftovers of interrupted writers are removed only when provably so: newer than
    the generation CURRENT names, and still holding the `.incomplete` marker. Without
    a readable CURRENT nothing is removed. The new directory holds the marker until
    `commit_generation`.
    """
    root = Path(root)
    live = current_generation_name(root)
    live_n = generation_number(live) if live is not None else None
    gens = generations(root)
    for n, path in gens:
        if live_n is not None and n > live_n and (path / INCOMPLETE).is_file():
            shutil.rmtree(path, ignore_errors=True)
    # Numbers of generations set aside by `repair` (gen-NNNNNN.damaged) stay taken too.
    taken = [generation_number(p.name[:10]) for p in root.iterdir() if p.name.startswith("gen-")]
    number = max((n for n in taken if n is not None), default=0) + 1
    new = root / f"gen-{number:06d}"
    new.mkdir(parents=True)
    try:
        (new / INCOMPLETE).write_text(f"written by pid {os.getpid()}\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return new


def write_current(root: Path, name: str) -> None:
    """Point CURRENT at generation `name` atomically and durably."""
    tmp = root / f"{CURRENT}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / CURRENT)
    fsync_dir(root)


def commit_generation(root: Path, gen: Path, keep: int = 2) -> None:
    """Make `gen` the live generation atomically, then remove older generations.

    Kept: the newest `keep` generations up to `gen`, the one CURRENT named before this
    commit, every generation a reader has pinned, and anything shortlist did not
    write. Removal renames a generation away under the registry lock (so no reader
    can pin it meanwhile) and deletes it afterwards.
    """
    root = Path(root)
    previous = current_generation_name(root)
    fsync_tree(gen)
    write_current(root, gen.name)
    # After the switch: a crash before it leaves the marker, so the next writer can
    # prove the folder an orphan. A marker left in the live generation is harmless.
    with contextlib.suppress(OSError):
        (gen / INCOMPLETE).unlink()
    with contextlib.suppress(OSError):  # cleanup is best effort: the commit is done
        _prune(root, gen, previous, keep)


def _prune(root: Path, live: Path, previous: str | None, keep: int) -> None:
    live_n = generation_number(live.name)
    assert live_n is not None
    older = [(n, p) for n, p in generations(root) if n < live_n]
    keep_names = {p.name for _n, p in older[-(keep - 1) :]} if keep > 1 else set()
    if previous is not None:
        keep_names.add(previous)
    candidates = [p for _n, p in older if p.name not in keep_names and _written_by_shortlist(p)]
    trash: list[Path] = []
    try:
        with _registry_lock(root) as readers:
            pinned = _scan_leases(readers)
            for path in candidates:
                if path.name in pinned:
                    continue
                target = root / f"{_TRASH_PREFIX}{path.name}-{secrets.token_hex(4)}"
                with contextlib.suppress(OSError):
                    os.rename(path, target)
                    trash.append(target)
    except OSError:
        return
    # Leftovers of a cleanup that was interrupted are ours too.
    trash += [p for p in root.iterdir() if p.name.startswith(_TRASH_PREFIX) and p not in trash]
    for path in trash:
        shutil.rmtree(path, ignore_errors=True)
