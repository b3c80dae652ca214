"""The exception hierarchy. Every error raised on purpose by shortlist is a `ShortlistError`.

The CLI maps these to exit codes and one-line messages (`shortlist.cli`), the HTTP
server to status codes with a JSON body (`shortlist.serve`).
"""

from __future__ import annotations

import re
from pathlib import Path


class ShortlistError(Exception):
    """Base class of all shortlist errors."""

    exit_code = 1
    http_status = 500


class InvalidInputError(ShortlistError, ValueError):
    """Bad input from the user: a malformed file, an empty query, an unknown option."""

    exit_code = 2
    http_status = 422


class CorpusFormatError(InvalidInputError):
    """A corpus, qrels, query or run file that cannot be read. Names the file and line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line


class SpecError(InvalidInputError):
    """An unknown or malformed reranker / pipeline spec string."""


class IndexNotFoundError(ShortlistError):
    """No index at the given path."""

    exit_code = 3
    http_status = 404


class IndexCompatibilityError(ShortlistError):
    """An index written by another format version or with another model."""

    exit_code = 3
    http_status = 409


class IndexDamagedError(IndexCompatibilityError):
    """A file of an index is missing, truncated, empty or unreadable.

    The message names the damaged file and, when the file lies inside an index
    generation, the `shortlist check` and `shortlist repair` commands for that index.
    (A subclass of `IndexCompatibilityError`: code that rebuilds an index it cannot
    use rebuilds a damaged one too.)
    """

    exit_code = 3
    http_status = 503

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        index_dir: str | Path | None = None,
        fix: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.problem = problem
        self.index_dir = Path(index_dir) if index_dir is not None else _index_dir_of(self.path)
        self._fix = fix
        if fix is not None:
            super().__init__(f"index damaged: {self.path}: {problem}" + (f"; {fix}" if fix else ""))
            return
        if self.index_dir is not None:
            fix = (
                f"run `shortlist check {self.index_dir}` for a full report, and "
                f"`shortlist repair {self.index_dir}` to go back to the newest intact generation"
            )
        else:
            fix = "rebuild the index"
        super().__init__(f"index damaged: {self.path}: {problem}; {fix}")

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from its fields, so it survives pickling (e.g. across processes).
        return (_damaged, (self.path, self.problem, self.index_dir, self._fix))


def _damaged(
    path: Path, problem: str, index_dir: Path | None, fix: str | None
) -> IndexDamagedError:
    return IndexDamagedError(path, problem, index_dir=index_dir, fix=fix)


_GENERATION_DIR = re.compile(r"^gen-\d{6}$")


def _index_dir_of(path: Path) -> Path | None:
    """The index folder holding `path`: the parent of its `gen-NNNNNN` ancestor."""
    for parent in (path, *path.parents):
        if _GENERATION_DIR.match(parent.name):
            return parent.parent
    return None


class IndexWriteError(ShortlistError, OSError):
    """A new index generation could not be written (disk full, permissions, I/O error).

    The write is abandoned and the index stays as it was; the message says which
    generation is still live. An `OSError`, so code catching I/O errors still does."""

    exit_code = 1
    http_status = 500


class ModelLoadError(ShortlistError):
    """A model could not be found or loaded."""

    exit_code = 4
    http_status = 503


class ProviderError(ShortlistError):
    """A hosted reranking API failed."""

    exit_code = 5
    http_status = 502

    def __init__(self, message: str, *, provider: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


class ProviderAuthError(ProviderError):
    """The provider rejected the API key (HTTP 401/403)."""


class ProviderRateLimitError(ProviderError):
    """The provider kept answering 429 after all retries."""


class ProviderTimeoutError(ProviderError):
    """The provider did not answer in time."""


class MissingDependencyError(ShortlistError, ImportError):
    """An optional dependency is not installed. The message names the extra to install."""

    exit_code = 6

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"{package} is required{what}; install it from a shortlist checkout with: "
            f"pip install -e '.[{extra}]'"
        )
        self.package = package
        self.extra = extra
