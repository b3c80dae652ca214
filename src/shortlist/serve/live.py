"""The served index, switched to each new generation while the server runs.

A writer (`shortlist add`/`delete`, `Index.add`) commits a new generation by replacing
the index's `CURRENT` file (see `shortlist.store.generations`). `LiveIndex` notices:

- `refresh()` reads `CURRENT` (one small file read; the server calls it every
  `poll_interval_s`, off the event loop) and, when it names a generation other than the
  one served, opens it and makes it the served one in a single reference swap.
- Each request takes a `lease()` on the generation served when it starts and keeps it
  until it ends, so a request never sees two generations, and requests already running
  when a switch happens finish on the old one. The old generation is closed (its reader
  pin released, so writers may delete it) when its last lease ends.
- A generation that fails to open (damaged, half-deleted) is logged once and skipped:
  the old one keeps answering until `CURRENT` names another generation.

Thread-safe: leases are taken from the event loop and from worker threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_log = logging.getLogger("shortlist.serve")

Opener = Callable[[Path], Any]
NameReader = Callable[[Path], "str | None"]


@dataclass
class _Served:
    index: Any
    users: int = 0
    retired: bool = False

    @property
    def name(self) -> str:
        return str(self.index.generation_name)

    @property
    def number(self) -> int:
        return int(self.index.generation)


@dataclass(frozen=True)
class Generation:
    """Which generation a request was answered from."""

    name: str
    number: int


class LiveIndex:
    """Owns the served `Index` and replaces it when the index folder gets a new generation.

    `open_index(root)` opens the live generation (default `Index.open`, which pins it);
    `current_name(root)` reads the name `CURRENT` holds (default
    `shortlist.store.generations.current_generation_name`). Both are parameters so tests
    can inject failures.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        open_index: Opener | None = None,
        current_name: NameReader | None = None,
        poll_interval_s: float = 0.1,
        num_threads: int | None = None,
    ) -> None:
        if current_name is None:
            from shortlist.store.generations import current_generation_name

            current_name = current_generation_name
        self.root = Path(root)
        self.num_threads = num_threads
        self.poll_interval_s = poll_interval_s
        self._opener: Opener | None = open_index
        self._current_name: NameReader = current_name
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._served = _Served(self._open(None))
        self._failed: str | None = None
        self._closed = False

    def _open(self, previous: Any | None) -> Any:
        """The live generation: `open_index(root)` when one was given, else `Index.open`,
        handing `previous`'s loaded encoder to the new generation so a switch never loads
        the model again (the identity check still runs)."""
        if self._opener is not None:
            return self._opener(self.root)
        from shortlist.store.index import Index

        encoder = previous.loaded_encoder if previous is not None else None
        return Index.open(self.root, encoder=encoder, num_threads=self.num_threads)

    @property
    def generation(self) -> Generation:
        """The generation new requests are answered from."""
        served = self._served
        return Generation(served.name, served.number)

    @contextmanager
    def lease(self) -> Iterator[tuple[Any, Generation]]:
        """The served index and its generation, kept open until the block ends."""
        with self._lock:
            served = self._served
            served.users += 1
        try:
            yield served.index, Generation(served.name, served.number)
        finally:
            with self._lock:
                served.users -= 1
                done = served.retired and served.users == 0
            if done:
                _close(served.index)

    def refresh(self) -> bool:
        """Switch to the generation `CURRENT` names, if it is new; True when it switched.

        Never raises for a generation that cannot be opened: that is logged (once per
        generation name) and the served one stays. Concurrent calls do not open twice.
        """
        if not self._refreshing.acquire(blocking=False):
            return False
        try:
            if self._closed:
                return False
            try:
                name = self._current_name(self.root)
            except OSError as exc:
                self._warn_once(f"<{exc.__class__.__name__}>", f"cannot read CURRENT: {exc}")
                return False
            if name is None or name == self._served.name or name == self._failed:
                return False
            try:
                fresh = self._open(self._served.index)
            except Exception as exc:  # whatever is wrong with it, the served one stays
                self._warn_once(name, f"cannot open generation {name}: {exc}")
                return False
            self._failed = None
            if fresh.generation_name == self._served.name:
                _close(fresh)  # CURRENT moved back (e.g. a repair) to what is served
                return False
            with self._lock:
                old = self._served
                self._served = _Served(fresh)
                old.retired = True
                done = old.users == 0
            if done:
                _close(old.index)
            _log.info("serving index generation %s of %s", fresh.generation_name, self.root)
            return True
        finally:
            self._refreshing.release()

    def close(self) -> None:
        """Stop switching; the served generation is closed when its last lease ends."""
        with self._refreshing:
            self._closed = True
            with self._lock:
                served = self._served
                served.retired = True
                done = served.users == 0
            if done:
                _close(served.index)

    def _warn_once(self, key: str, message: str) -> None:
        if key != self._failed:
            self._failed = key
            _log.warning("%s; still serving generation %s", message, self._served.name)


def _close(index: Any) -> None:
    close = getattr(index, "close", None)
    if close is not None:
        close()
