"""Keeping an index in step with a folder: re-read only the files that changed.

`sync_folder` compares the SHA-256 of every document file of a folder with the
``sha256`` the folder reader recorded in the index (`shortlist.corpus.readers`: every
passage of a file read from a folder carries ``root``, the folder's absolute path, and
``sha256``), then in one new index generation re-reads and re-encodes the files that
are new or whose bytes changed, and removes the passages of files that are gone. An
unchanged folder reads each file once to hash it and encodes nothing: no generation is
written. Only documents read from this folder are compared, so an index may hold
other sources too; a new file whose id another source already uses is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shortlist.corpus.readers import OnBad, file_sha256, folder_files, read_folder_files
from shortlist.errors import CorpusFormatError, InvalidInputError
from shortlist.progress import Progress
from shortlist.store.index import Index


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What a folder's files are against the index: ids, sorted."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What `sync_folder` did. ``failed`` are new or changed files that could not be
    read (skipped under ``skip_bad``; a changed file keeps its old passages)."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: int
    failed: tuple[str, ...]
    passages: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "unchanged": self.unchanged,
            "failed": len(self.failed),
            "added_passages": self.passages,
        }


def plan_sync(current: Mapping[str, str], indexed: Mapping[str, Any]) -> SyncPlan:
    """Compare file hashes (id -> sha256) with the hashes recorded in the index."""
    return SyncPlan(
        added=tuple(sorted(i for i in current if i not in indexed)),
        changed=tuple(sorted(i for i in current if i in indexed and indexed[i] != current[i])),
        removed=tuple(sorted(i for i in indexed if i not in current)),
        unchanged=tuple(sorted(i for i in current if i in indexed and indexed[i] == current[i])),
    )


def sync_folder(
    index: Index,
    folder: str | Path,
    *,
    format: str | None = None,
    skip_bad: bool = False,
    on_bad: OnBad | None = None,
    on_note: OnBad | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Bring the index's documents from ``folder`` in line with the folder's files.

    Raises `CorpusFormatError` when ``folder`` is not a directory or a file cannot be
    read (unless ``skip_bad``), and `InvalidInputError` when a new file's id is already
    indexed from another source. Nothing is written when nothing changed.
    """
    root = Path(folder)
    if not root.is_dir():
        raise CorpusFormatError(
            "--sync keeps an index in step with a folder; pass a folder, not a file",
            path=str(root),
        )
    everything = index.document_metadata()
    key = str(root.resolve())
    indexed = {i: md.get("sha256") for i, md in everything.items() if md.get("root") == key}
    current: dict[str, str] = {}
    for doc_id, file in folder_files(root, format):
        try:
            current[doc_id] = file_sha256(file)
        except OSError:
            current[doc_id] = ""  # unreadable: the reader reports it
    plan = plan_sync(current, indexed)
    foreign = [i for i in plan.added if i in everything]
    if foreign:
        raise InvalidInputError(
            f"{len(foreign)} new file(s) of {root} have ids already in the index from another "
            f"source (first: {foreign[0]!r}); delete those documents, or sync into an "
            "index built from this folder"
        )
    wanted = sorted(plan.added + plan.changed)
    docs = list(
        read_folder_files(
            root, wanted, format=format, skip_bad=skip_bad, on_bad=on_bad, on_note=on_note
        )
    )
    read = {d.id for d in docs}
    passages = index.update(docs, delete=plan.removed, progress=progress)
    return SyncReport(
        added=tuple(i for i in plan.added if i in read),
        changed=tuple(i for i in plan.changed if i in read),
        removed=plan.removed,
        unchanged=len(plan.unchanged),
        failed=tuple(i for i in wanted if i not in read),
        passages=passages,
    )
