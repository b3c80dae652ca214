"""Progress reporting for long stages (chunking, BM25, encoding, writing), chosen at the edge.

A `Progress` opens one `Stage` per step of a job. The library only calls `stage()` and
`advance()`; the CLI picks how that is shown:

- `BarProgress`: a tqdm bar per stage, with count, rate and ETA (for a terminal);
- `LineProgress`: one line per finished stage, with count, time and rate (for logs
  and pipes, where a bar's carriage returns are noise);
- `NoProgress`: nothing.

`progress_for(stream)` picks the bar for a terminal and lines otherwise. Every
implementation writes to the stream it is given (the CLI gives stderr), never to stdout,
so `--json` output stays machine-readable.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Protocol, TextIO


class Stage(Protocol):
    """One step of a job; a context manager. `advance(n)` counts `n` more items done."""

    def advance(self, n: int = 1) -> None: ...

    def __enter__(self) -> Stage: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Progress(Protocol):
    def stage(self, name: str, total: int | None = None, unit: str = "items") -> Stage:
        """A stage called `name` over `total` items (None: unknown)."""
        ...


class _NullStage:
    def advance(self, n: int = 1) -> None:
        pass

    def __enter__(self) -> _NullStage:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class NoProgress:
    """Reports nothing."""

    def stage(self, name: str, total: int | None = None, unit: str = "items") -> Stage:
        return _NullStage()


class _LineStage:
    def __init__(self, stream: TextIO, name: str, total: int | None, unit: str) -> None:
        self._stream = stream
        self._name = name
        self._unit = unit
        self.done = 0
        self._t0 = time.perf_counter()

    def advance(self, n: int = 1) -> None:
        self.done += n

    def __enter__(self) -> _LineStage:
        self._t0 = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            return
        elapsed = time.perf_counter() - self._t0
        line = f"{self._name}: {self.done} {self._unit} in {elapsed:.1f}s"
        if self.done and elapsed > 0:
            line += f" ({self.done / elapsed:.1f} {self._unit}/s)"
        self._stream.write(line + "\n")
        self._stream.flush()


class LineProgress:
    """One line per finished stage on `stream`: `NAME: N UNIT in Ts (R UNIT/s)`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def stage(self, name: str, total: int | None = None, unit: str = "items") -> Stage:
        return _LineStage(self._stream, name, total, unit)


class _BarStage:
    def __init__(self, stream: TextIO, name: str, total: int | None, unit: str) -> None:
        self._args: dict[str, Any] = dict(
            desc=name, total=total, unit=f" {unit}", file=stream, dynamic_ncols=True, leave=True
        )
        self._bar: Any = None

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def __enter__(self) -> _BarStage:
        from tqdm import tqdm

        self._bar = tqdm(**self._args)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()


class BarProgress:
    """A tqdm bar per stage on `stream` (count, rate and ETA when the total is known)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def stage(self, name: str, total: int | None = None, unit: str = "items") -> Stage:
        return _BarStage(self._stream, name, total, unit)


def progress_for(stream: TextIO | None) -> Progress:
    """Bars on a terminal, one line per stage otherwise, nothing without a stream."""
    if stream is None:
        return NoProgress()
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return BarProgress(stream)
    return LineProgress(stream)
