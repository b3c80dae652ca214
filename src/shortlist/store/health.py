"""`check` and `repair` for an index folder: find damage, and go back to the newest
intact generation without deleting anything.

A generation is *intact* when its manifest reads, every file in its file table has the
recorded size and sha256 (see `files`), and every component loads and every stored
passage parses. Generations from before file tables existed are checked for
readability only. A generation still marked `.incomplete` by a writer is never a
candidate for `repair`: its write was never acknowledged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from shortlist._ondisk import read_manifest
from shortlist.errors import (
    IndexCompatibilityError,
    IndexDamagedError,
    IndexNotFoundError,
    InvalidInputError,
    ShortlistError,
)
from shortlist.store.files import FileProblem, verify_files
from shortlist.store.generations import (
    CURRENT,
    EXTERNAL_POINTER,
    INCOMPLETE,
    current_generation_name,
    describe_current,
    folder_state,
    generations,
    write_current,
    writer_lock,
)

Status = Literal["intact", "damaged", "incomplete", "incompatible"]
_READ_BATCH = 4096


@dataclass(frozen=True)
class GenerationReport:
    """The state of one generation folder."""

    name: str
    status: Status
    problems: tuple[FileProblem, ...] = ()
    files_verified: int | None = None  # None: the manifest has no file table
    documents: int | None = None
    passages: int | None = None

    def to_dict(self, root: Path) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "problems": [_problem_dict(p, root) for p in self.problems],
            "files_verified": self.files_verified,
            "documents": self.documents,
            "passages": self.passages,
        }


@dataclass(frozen=True)
class CheckReport:
    """`check_index`'s answer: what CURRENT names, and every generation's state."""

    index: Path
    current: str | None
    current_problem: str | None
    generations: tuple[GenerationReport, ...] = field(default_factory=tuple)

    @property
    def current_report(self) -> GenerationReport | None:
        return next((g for g in self.generations if g.name == self.current), None)

    @property
    def healthy(self) -> bool:
        report = self.current_report
        return (
            self.current_problem is None
            and report is not None
            and report.status not in ("damaged", "incompatible")
        )

    @property
    def restorable(self) -> GenerationReport | None:
        """The newest intact generation other than the current one."""
        return next(
            (g for g in self.generations if g.status == "intact" and g.name != self.current),
            None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": str(self.index),
            "healthy": self.healthy,
            "current": self.current,
            "current_problem": self.current_problem,
            "generations": [g.to_dict(self.index) for g in self.generations],
        }


@dataclass(frozen=True)
class RepairResult:
    """What `repair_index` did: `restored` is the generation CURRENT now names (None
    when nothing changed), `set_aside` where the damaged generation was moved."""

    index: Path
    changed: bool
    current: str
    previous: str | None
    set_aside: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": str(self.index),
            "changed": self.changed,
            "current": self.current,
            "previous": self.previous,
            "set_aside": self.set_aside,
            "message": self.message,
        }


def _problem_dict(p: FileProblem, root: Path) -> dict[str, str]:
    return {"file": _rel(p.path, root), "problem": p.problem}


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _require_index(root: Path) -> None:
    if (root / EXTERNAL_POINTER).is_file():
        raise InvalidInputError(
            f"{root} points at an external store ({EXTERNAL_POINTER}), which keeps its own "
            "files and checks its own integrity; `check` and `repair` apply to local "
            "indexes. Open it (e.g. `shortlist search ... --index DIR`) to check that it "
            "answers"
        )
    state = folder_state(root)
    if state in ("missing", "file", "empty", "foreign"):
        raise IndexNotFoundError(
            f"no shortlist index at {root}"
            + (" (it is a file)" if state == "file" else "")
            + f"; build one with `shortlist index SOURCE --index {root}`"
        )


def check_index(root: str | Path) -> CheckReport:
    """Verify every generation of the index at `root` (files, checksums, readability).

    Raises `IndexNotFoundError` when `root` holds no shortlist index at all.
    """
    root = Path(root)
    _require_index(root)
    cache: dict[tuple[int, int, int], str] = {}
    reports = tuple(verify_generation(p, cache) for _n, p in reversed(generations(root)))
    return CheckReport(root, current_generation_name(root), describe_current(root), reports)


def verify_generation(
    gen: Path, cache: dict[tuple[int, int, int], str] | None = None
) -> GenerationReport:
    """Check one generation folder; never raises for damage, it reports it."""
    from shortlist.store.index import FORMAT, FORMAT_VERSION, MANIFEST, Index

    problems: list[FileProblem] = []
    verified: int | None = None
    try:
        manifest = read_manifest(
            gen / MANIFEST, fmt=FORMAT, version=FORMAT_VERSION, what="shortlist index"
        )
    except IndexNotFoundError:
        problems.append(FileProblem(gen / MANIFEST, "the file is missing"))
    except IndexDamagedError as exc:
        problems.append(FileProblem(exc.path, exc.problem))
    except IndexCompatibilityError as exc:
        # Another format version is not damage: repair must not "fix" it by going back.
        problem = FileProblem(gen / MANIFEST, str(exc))
        return GenerationReport(gen.name, "incompatible", (problem,))
    else:
        checked = verify_files(gen, manifest, cache)
        if checked is not None:
            found, verified = checked
            problems += found
    documents = passages = None
    if not problems:
        try:
            index = Index._load(gen.parent, gen, None, None)
            for _ in _read_every_passage(index):
                pass
            documents, passages = index.num_documents, index.num_passages
        except IndexDamagedError as exc:
            problems.append(FileProblem(exc.path, exc.problem))
        except ShortlistError as exc:
            problems.append(FileProblem(gen, str(exc)))
    status: Status = "damaged" if problems else "intact"
    if (gen / INCOMPLETE).exists() and gen.name != current_generation_name(gen.parent):
        status = "incomplete"
    return GenerationReport(gen.name, status, tuple(problems), verified, documents, passages)


def _read_every_passage(index: Any) -> Iterator[object]:
    docs = index._docs
    for start in range(0, docs.next_row, _READ_BATCH):
        yield from docs.get(np.arange(start, min(start + _READ_BATCH, docs.next_row)))


def repair_index(root: str | Path) -> RepairResult:
    """Point CURRENT at the newest intact generation when the current one is damaged or
    CURRENT is unusable. Deletes nothing: a damaged current generation is renamed to
    `gen-NNNNNN.damaged` beside it (so no writer's cleanup removes it).

    Raises `IndexNotFoundError` when `root` holds no index, and `IndexDamagedError`
    when no intact generation is left to go back to (then nothing is changed).
    """
    root = Path(root)
    _require_index(root)
    with writer_lock(root):
        report = check_index(root)
        current = report.current
        if report.healthy:
            assert current is not None
            return RepairResult(
                root, False, current, current, None, f"{root} is healthy ({current}); nothing to do"
            )
        cur = report.current_report
        if report.current_problem is None and cur is not None and cur.status == "incompatible":
            raise IndexCompatibilityError(
                f"{cur.problems[0].problem} (repair changes nothing: the index is not damaged)"
            )
        target = report.restorable
        why = _why(report)
        if target is None:
            raise IndexDamagedError(
                root / (current or CURRENT),
                f"{why}, and no other generation is intact; nothing was changed. Rebuild "
                f"the index with `shortlist index SOURCE --index {root} --overwrite`",
                fix="",
            )
        set_aside = None
        if current is not None and (root / current).is_dir():
            set_aside = _set_aside(root, current)
        write_current(root, target.name)
    what = f"{target.documents} documents, {target.passages} passages, verified"
    message = f"CURRENT now names {target.name} ({what}); before, {why}."
    if set_aside is not None:
        message += (
            f" The damaged {current} was moved to {set_aside}; shortlist never removes it,"
            " delete it yourself once you no longer need it."
        )
    return RepairResult(root, True, target.name, current, set_aside, message)


def _why(report: CheckReport) -> str:
    if report.current_problem is not None:
        return f"CURRENT was unusable ({report.current_problem})"
    cur = report.current_report
    assert cur is not None and cur.problems
    first = cur.problems[0]
    more = f" (and {len(cur.problems) - 1} more problems)" if len(cur.problems) > 1 else ""
    return f"{cur.name} was damaged: {_rel(first.path, report.index)}: {first.problem}{more}"


def _set_aside(root: Path, name: str) -> str:
    target = root / f"{name}.damaged"
    n = 1
    while target.exists():
        n += 1
        target = root / f"{name}.damaged-{n}"
    (root / name).rename(target)
    return target.name
