"""Reading the files of an on-disk structure (index manifests, arrays, JSON) so that any
damage surfaces as one `IndexDamagedError` naming the file, never as numpy's `EOFError`,
a `JSONDecodeError` or a `KeyError` deep in a loader."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from shortlist.errors import IndexCompatibilityError, IndexDamagedError, IndexNotFoundError

T = TypeVar("T")

# What a loader can raise on a file that is truncated, zeroed or rewritten with garbage.
DAMAGE = (OSError, ValueError, EOFError, KeyError, IndexError, TypeError, AttributeError)


def read_manifest(path: Path, *, fmt: str, version: int, what: str) -> dict[str, Any]:
    """The JSON object in the manifest at `path`, checked to declare `fmt` at `version`.

    The version is read from `format_version` (or `version`, written by older releases).

    Raises:
        IndexNotFoundError: there is no file at `path`.
        IndexDamagedError: the file is unreadable or not a JSON object.
        IndexCompatibilityError: it declares another format or version.
    """
    if not path.is_file():
        raise IndexNotFoundError(f"no {what} at {path.parent} ({path.name} missing)")
    manifest = load_json(path)
    if not isinstance(manifest, dict):
        raise IndexDamagedError(path, "not a JSON object")
    declared = manifest.get("format_version", manifest.get("version"))
    if manifest.get("format") != fmt or declared != version:
        raise IndexCompatibilityError(
            f"{path.parent} holds {what} format {manifest.get('format')!r} version "
            f"{declared!r}; this shortlist reads {fmt!r} version {version}. "
            "Rebuild it with `shortlist index ... --overwrite`."
        )
    return manifest


def load_json(path: Path) -> Any:
    """Parse the JSON file at `path`; `IndexDamagedError` when missing or unparsable."""
    with damage_as(path):
        return json.loads(_read_bytes(path).decode("utf-8"))


def load_npy(
    path: Path, *, mmap: bool = False, ndim: int | None = None, integer: bool = False
) -> np.ndarray:
    """Load the .npy array at `path` (memory-mapped read-only with `mmap`).

    `ndim` and `integer` check its shape and dtype kind. Raises `IndexDamagedError`
    when the file is missing, empty, truncated, or holds something else.
    """
    mode: Literal["r"] | None = "r" if mmap else None
    with damage_as(path):
        if path.stat().st_size == 0:
            raise ValueError("the file is empty (0 bytes)")
        array = np.load(path, mmap_mode=mode, allow_pickle=False)
    if not isinstance(array, np.ndarray):
        raise IndexDamagedError(path, "not a single numpy array")
    if ndim is not None and array.ndim != ndim:
        raise IndexDamagedError(path, f"expected a {ndim}-d array, found shape {array.shape}")
    if integer and array.dtype.kind not in "iu":
        raise IndexDamagedError(path, f"expected integers, found dtype {array.dtype}")
    return array


def guarded(path: Path, load: Callable[[], T]) -> T:
    """`load()`, with anything a damaged file can raise turned into `IndexDamagedError`."""
    with damage_as(path):
        return load()


@contextmanager
def damage_as(path: Path) -> Iterator[None]:
    """Turn the exceptions of reading damaged data into `IndexDamagedError(path)`."""
    try:
        yield
    except IndexDamagedError:
        raise
    except FileNotFoundError:
        raise IndexDamagedError(path, "the file is missing") from None
    except NotADirectoryError as exc:
        raise IndexDamagedError(path, f"a file stands where a folder belongs ({exc})") from exc
    except IsADirectoryError:
        raise IndexDamagedError(path, "a folder stands where a file belongs") from None
    except UnicodeDecodeError as exc:
        raise IndexDamagedError(path, f"not UTF-8 text ({exc.reason})") from exc
    except EOFError as exc:
        raise IndexDamagedError(path, f"the file is truncated ({exc or 'no data'})") from exc
    except DAMAGE as exc:
        raise IndexDamagedError(path, f"{type(exc).__name__}: {exc}") from exc


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()
