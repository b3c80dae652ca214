"""Fault injection: every file of a generation damaged every way, a full disk during
writes, and concurrent writers. Damage is always reported as damage (exit 3, the file
named, never a traceback or "Aborted."), `check` finds it, `repair` goes back to the
newest intact generation, and nothing is ever lost.

The file list is the real one of a small index (a coverage test keeps it complete).
Three generations are built: index (gen 1), add (gen 2), delete (gen 3, live). Gen 2 is
kept as the previous generation and shares the unchanged segment files with gen 3 by
hardlink, so damage to a shared file damages both and `repair` must say so and change
nothing; damage to a file of gen 3 alone is repaired by going back to gen 2.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from clirun import CliResult, run_cli
from shortlist.store.generations import current_generation_name, generations
from shortlist.store.health import check_index
from shortlist.store.index import Index
from shortlist.types import Document

DOCS = [
    Document(
        f"d{i}",
        f"document {i} is about topic {i % 5}: alpha beta gamma delta words {i} " * 3,
        metadata={"topic": str(i % 5)},
    )
    for i in range(30)
]
QUERIES = ["alpha topic", "document 3", "words 25 delta", "document 12"]
LIVE = "gen-000003"

# Every file of a generation, by role; the segment folders of BM25 have random names,
# so files are given as globs relative to the generation. (relative glob, dense only?)
BM25_FILES = ["deleted.npy", "manifest.json"] + [
    f"seg-{i}/{name}"
    for i in (1, 2)
    for name in (
        "doc_len.npy",
        "post_doc.npy",
        "post_tf.npy",
        "rows.npy",
        "term_ptr.npy",
        "terms.json",
    )
]
DOCS_FILES = ["deleted.npy", "docstore.json"] + [
    f"seg-00000{i}-*.{ext}" for i in (1, 2) for ext in ("jsonl", "keys.json", "offsets.npy")
]
SPARSE_FILES = (
    ["CURRENT", "manifest.json"]
    + [f"bm25/{f}" for f in BM25_FILES]
    + [f"docs/{f}" for f in DOCS_FILES]
)
VECTOR_FILES = [
    "vectors/manifest.json",
    "vectors/deleted-*.npy",
    "vectors/seg-1.vectors.npy",
    "vectors/seg-1.rows.npy",
    "vectors/seg-2.vectors.npy",
    "vectors/seg-2.rows.npy",
]
FAULTS = ["truncate", "zero", "delete", "flip"]


# ---- building the pristine indexes ------------------------------------------------


def _build(root: Path, *, dense: bool) -> dict[str, Any]:
    """Three generations; returns the answers of gen 2 and gen 3 to QUERIES."""
    Index.create(root, DOCS[:20], dense=dense, encoder="hashing:64").close()
    with Index.open(root) as index:
        index.add(DOCS[20:])
    gen2 = _answers(root)
    with Index.open(root) as index:
        index.delete(["d3"])
    return {"gen-000002": gen2, LIVE: _answers(root)}


def _answers(root: Path) -> list[Any]:
    out = []
    for q in QUERIES:
        result = run_cli("search", q, "--index", str(root), "--json", "-k", "5")
        assert result.exit_code == 0, result.stderr
        out.append([(h["id"], round(h["score"], 5)) for h in json.loads(result.stdout)["results"]])
    return out


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("pristine")
    sparse = base / "sparse"
    dense = base / "dense"
    return {
        "sparse": (sparse, _build(sparse, dense=False)),
        "dense": (dense, _build(dense, dense=True)),
    }


def _copy(pristine: dict[str, Any], kind: str, dest: Path, *, legacy: bool) -> tuple[Path, Any]:
    source, answers = pristine[kind]
    root = dest / kind
    # copytree would break the hardlinks between generations; `cp -a` keeps them.
    os.makedirs(dest, exist_ok=True)
    rc = os.spawnlp(os.P_WAIT, "cp", "cp", "-a", str(source), str(root))
    assert rc == 0
    if legacy:  # an index written before manifests recorded their files
        for _n, gen in generations(root):
            manifest = json.loads((gen / "manifest.json").read_text())
            manifest.pop("files", None)
            (gen / "manifest.json").write_text(json.dumps(manifest))
    return root, answers


def _resolve(root: Path, role: str) -> Path:
    """The real file for a role like `bm25/seg-2/rows.npy` or `docs/seg-000001-*.jsonl`."""
    if role == "CURRENT":
        return root / "CURRENT"
    gen = root / LIVE
    parts = role.split("/")
    if parts[0] == "bm25" and parts[1].startswith("seg-") and len(parts) == 3:
        segs = sorted(p for p in (gen / "bm25").iterdir() if p.is_dir())
        return segs[int(parts[1][4:]) - 1] / parts[2]
    if parts[0] == "vectors" and parts[1].startswith("seg-") and parts[1][5] == ".":
        n, suffix = int(parts[1][4]), parts[1][6:]
        segs = sorted((gen / "vectors").glob(f"seg-*.{suffix}"))
        return segs[n - 1]
    (match,) = list(gen.glob(role))
    return match


def _damage(path: Path, fault: str) -> None:
    if fault == "delete":
        path.unlink()
        return
    data = path.read_bytes()
    with open(path, "r+b") as fh:  # in place, as a crash or a bad disk would: same inode
        if fault == "truncate":
            fh.truncate(len(data) // 2)
        elif fault == "zero":
            fh.truncate(0)
        else:  # flip: one byte in the middle, same size
            fh.seek(len(data) // 2)
            fh.write(bytes([data[len(data) // 2] ^ 0xFF]))


def _inventory(root: Path) -> dict[str, int]:
    """Every data file and its size (CURRENT, which repair rewrites, aside); a generation
    moved aside by repair keeps its name."""
    out = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith("readers/") and rel not in (".lock", "CURRENT"):
            out[rel.replace(".damaged", "")] = path.stat().st_size
    return out


def _clean(*results: CliResult) -> None:
    for r in results:
        for stream in (r.stdout, r.stderr):
            assert "Traceback" not in stream
            assert "Aborted" not in stream
        assert r.exit_code != 130, r.stderr


def _shared_with_previous(root: Path, path: Path) -> bool:
    """Whether `path` (in the live generation) is the same inode as gen 2's file."""
    if path.name == "CURRENT":
        return False
    twin = root / "gen-000002" / path.relative_to(root / LIVE)
    return twin.exists() and os.path.samefile(twin, path)


# ---- the matrix ---------------------------------------------------------------------

CASES = [("sparse", f) for f in SPARSE_FILES] + [("dense", f) for f in VECTOR_FILES]


# Without checksums the loaders' own checks must find the damage: the same matrix
# again, slow-marked (the regression tests below keep those checks in the default run).
@pytest.mark.parametrize(
    "legacy",
    [False, pytest.param(True, marks=pytest.mark.slow)],
    ids=["checksums", "legacy"],
)
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize(("kind", "role"), CASES, ids=[f"{k}:{r}" for k, r in CASES])
def test_damaged_file(
    pristine: dict[str, Any], tmp_path: Path, kind: str, role: str, fault: str, legacy: bool
) -> None:
    root, answers = _copy(pristine, kind, tmp_path, legacy=legacy)
    path = _resolve(root, role)
    shared = fault != "delete" and _shared_with_previous(root, path)
    rel = path.relative_to(root).as_posix()
    _damage(path, fault)

    search = run_cli("search", QUERIES[0], "--index", str(root), "--json")
    check = run_cli("check", str(root))
    _clean(search, check)
    detectable = fault != "flip" or not legacy
    if fault != "flip":
        # opening a damaged index is exit 3 with the file named (for a flipped byte,
        # only the checksums of `check` can tell, unless the flip breaks parsing)
        assert search.exit_code == 3, search.stderr
        assert rel in search.stderr and "shortlist repair" in search.stderr
    elif search.exit_code != 0:
        assert search.exit_code == 3 and "index damaged" in search.stderr
    if detectable:
        assert check.exit_code == 3
        assert rel in check.stdout or (role == "CURRENT" and "CURRENT: damaged" in check.stdout)
    elif check.exit_code == 0:
        return  # an undetectable flip in an index without checksums: nothing to repair

    before = _inventory(root)
    repair = run_cli("repair", str(root))
    _clean(repair)
    assert _inventory(root) == before  # repair never deletes or changes a data file
    if shared:
        # gen 2 shares the damaged file: no intact generation, nothing changed
        assert repair.exit_code == 3 and "no other generation is intact" in repair.stderr
        assert current_generation_name(root) == (LIVE if role != "CURRENT" else None)
        return
    assert repair.exit_code == 0, repair.stderr
    restored = current_generation_name(root)
    # CURRENT itself damaged: the live generation is intact and comes back
    assert restored == (LIVE if role == "CURRENT" else "gen-000002")
    assert check_index(root).healthy
    search_again = run_cli("search", QUERIES[0], "--index", str(root), "--json", "-k", "5")
    _clean(search_again)
    hits = [(h["id"], round(h["score"], 5)) for h in json.loads(search_again.stdout)["results"]]
    assert hits == answers[restored][0]


def test_the_matrix_covers_every_file_of_a_generation(pristine: dict[str, Any]) -> None:
    for kind, roles in (("sparse", SPARSE_FILES), ("dense", SPARSE_FILES + VECTOR_FILES)):
        root, _answers = pristine[kind]
        covered = {_resolve(root, r) for r in roles}
        real = {p for p in (root / LIVE).rglob("*") if p.is_file()} | {root / "CURRENT"}
        assert covered == real


# ---- a full disk --------------------------------------------------------------------


class _Disk:
    """Bytes left on a simulated disk; writes beyond them fail with ENOSPC."""

    def __init__(self, budget: float) -> None:
        self.left = budget
        self.written = 0


class _LimitedFile:
    def __init__(self, fh: Any, disk: _Disk) -> None:
        self._fh = fh
        self._disk = disk

    def write(self, data: Any) -> int:
        n = len(memoryview(data).cast("B")) if not isinstance(data, str) else len(data)
        if n > self._disk.left:
            self._disk.left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._disk.left -= n
        self._disk.written += n
        written: int = self._fh.write(data)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def __enter__(self) -> _LimitedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


def _full_disk(monkeypatch: pytest.MonkeyPatch, under: Path, budget: float) -> _Disk:
    disk = _Disk(budget)
    real_open = builtins.open

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = real_open(file, mode, *args, **kwargs)
        writing = any(c in mode for c in "wax+")
        if writing and str(Path(os.fsdecode(file)).resolve()).startswith(str(under.resolve())):
            return _LimitedFile(fh, disk)
        return fh

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    return disk


NEW = [Document(f"new{i}", f"alpha freshly added document number {i} " * 8) for i in range(40)]


@pytest.fixture(scope="module")
def add_bytes(pristine: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> int:
    """How many bytes adding NEW to the dense index writes."""
    root, _ = _copy(pristine, "dense", tmp_path_factory.mktemp("measure"), legacy=False)
    with pytest.MonkeyPatch.context() as mp:
        disk = _full_disk(mp, root, float("inf"))
        with Index.open(root) as index:
            index.add(NEW)
    assert disk.written > 1000
    return disk.written


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_a_full_disk_during_a_write_changes_nothing(
    pristine: dict[str, Any],
    add_bytes: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fraction: float,
) -> None:
    from shortlist.errors import IndexWriteError

    total = add_bytes
    root, answers = _copy(pristine, "dense", tmp_path / "full", legacy=False)
    listing = sorted(p.name for p in root.iterdir())
    with Index.open(root) as index:
        with monkeypatch.context() as mp:
            _full_disk(mp, root, int(total * fraction))
            with pytest.raises(IndexWriteError, match="No space left") as info:
                index.add(NEW)
        assert isinstance(info.value, OSError)
        assert f"unchanged ({LIVE})" in str(info.value)
        # the object and the folder both still answer from the previous generation
        assert index.generation_name == LIVE
        assert [
            [(h.id, round(h.score, 5)) for h in index.search(q, k=5, mode="hybrid")]
            for q in QUERIES
        ] == answers[LIVE]
    assert current_generation_name(root) == LIVE
    assert sorted(p.name for p in root.iterdir()) == listing  # the new generation is gone
    assert _answers(root) == answers[LIVE]
    assert check_index(root).healthy
    with Index.open(root) as index:  # space again: the same write succeeds
        index.add(NEW)
    assert run_cli("check", str(root)).exit_code == 0


def test_a_full_disk_is_one_line_from_the_cli(
    pristine: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, answers = _copy(pristine, "sparse", tmp_path, legacy=False)
    corpus = tmp_path / "new.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in NEW))
    with monkeypatch.context() as mp:
        _full_disk(mp, root, 100)
        result = run_cli("add", str(corpus), "--index", str(root))
    _clean(result)
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr and LIVE in result.stderr
    assert _answers(root) == answers[LIVE]


# ---- concurrent writers --------------------------------------------------------------


def test_a_concurrent_writer_is_refused_and_nothing_is_lost(
    pristine: dict[str, Any], tmp_path: Path
) -> None:
    root, _ = _copy(pristine, "sparse", tmp_path, legacy=False)
    slow = Index.open(root)  # opened before another writer commits
    corpus = tmp_path / "one.jsonl"
    corpus.write_text(json.dumps({"id": "other", "text": "written by another process"}) + "\n")
    assert run_cli("add", str(corpus), "--index", str(root)).exit_code == 0
    from shortlist.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="another writer"):
        slow.add([Document("mine", "written by the slow writer")])
    slow.close()
    with Index.open(root) as index:
        assert index.passages(["other#0"])[0] is not None
        assert index.passages(["mine#0"]) == [None]
    assert run_cli("check", str(root)).exit_code == 0


# ---- helpers used above must themselves be sound ------------------------------------


def test_damage_helpers_change_what_they_say(tmp_path: Path) -> None:
    f = tmp_path / "f"
    for fault, expect in (("truncate", b"01234"), ("zero", b""), ("flip", b"01234\xca6789")):
        f.write_bytes(b"0123456789")
        _damage(f, fault)
        assert f.read_bytes() == expect
    _damage(f, "delete")
    assert not f.exists()


# ---- the reproductions of issue #15 ("Critical 3" and "Damage") ------------------------


def _corpus(tmp_path: Path, docs: list[Document] = DOCS) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in docs))
    return path


def test_current_missing_is_damage_and_index_does_not_destroy_generations(
    pristine: dict[str, Any], tmp_path: Path
) -> None:
    root, answers = _copy(pristine, "sparse", tmp_path, legacy=False)
    (root / "CURRENT").unlink()
    before = _inventory(root)
    search = run_cli("search", "alpha", "--index", str(root))
    _clean(search)
    assert search.exit_code == 3
    assert "damaged" in search.stderr and f"shortlist repair {root}" in search.stderr
    assert "build one" not in search.stderr
    # following the old advice: building a new index there is refused, nothing changes
    build = run_cli("index", str(_corpus(tmp_path)), "--index", str(root), "--no-dense")
    _clean(build)
    assert build.exit_code == 3 and "--overwrite" in build.stderr
    assert _inventory(root) == before
    repair = run_cli("repair", str(root))
    assert repair.exit_code == 0 and LIVE in repair.stdout
    assert _answers(root) == answers[LIVE]


def test_index_into_a_foreign_folder_with_a_gen_folder(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    (root / "gen-000007").mkdir(parents=True)
    (root / "gen-000007" / "thesis.tex").write_text("years of work")
    (root / "notes.txt").write_text("mine too")
    corpus = _corpus(tmp_path)
    refused = run_cli("index", str(corpus), "--index", str(root), "--no-dense")
    _clean(refused)
    assert refused.exit_code == 2 and "not empty" in refused.stderr
    assert sorted(p.name for p in root.iterdir()) == ["gen-000007", "notes.txt"]
    # with --overwrite it builds beside them, and no later write ever removes them
    built = run_cli("index", str(corpus), "--index", str(root), "--no-dense", "--overwrite")
    assert built.exit_code == 0, built.stderr
    assert current_generation_name(root) == "gen-000008"
    for doc_id in ("d1", "d2", "d3"):
        assert run_cli("delete", doc_id, "--index", str(root)).exit_code == 0
    assert (root / "gen-000007" / "thesis.tex").read_text() == "years of work"
    assert (root / "notes.txt").read_text() == "mine too"


def test_index_into_an_empty_folder_or_a_crashed_first_write_needs_no_overwrite(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        run_cli("index", str(_corpus(tmp_path)), "--index", str(empty), "--no-dense").exit_code == 0
    )
    crashed = tmp_path / "crashed"  # what a kill -9 during the very first build leaves
    (crashed / "gen-000001").mkdir(parents=True)
    (crashed / "gen-000001" / ".incomplete").write_text("")
    (crashed / ".lock").write_text("")
    result = run_cli("index", str(_corpus(tmp_path)), "--index", str(crashed), "--no-dense")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("kind", "role"),
    [("dense", "vectors/seg-1.vectors.npy"), ("sparse", "docs/seg-000001-*.offsets.npy")],
)
@pytest.mark.parametrize("legacy", [False, True], ids=["checksums", "legacy"])
def test_zero_byte_arrays_are_not_aborted(
    pristine: dict[str, Any], tmp_path: Path, kind: str, role: str, legacy: bool
) -> None:
    root, _ = _copy(pristine, kind, tmp_path, legacy=legacy)
    path = _resolve(root, role)
    path.write_bytes(b"")
    result = run_cli("search", "alpha", "--index", str(root))
    _clean(result)
    assert result.exit_code == 3
    assert path.relative_to(root).as_posix() in result.stderr


@pytest.mark.parametrize(
    ("kind", "role"),
    [
        ("dense", "vectors/seg-2.vectors.npy"),
        ("sparse", "docs/seg-000002-*.jsonl"),
        ("sparse", "bm25/seg-2/post_doc.npy"),
    ],
)
def test_half_truncated_files_are_damage(
    pristine: dict[str, Any], tmp_path: Path, kind: str, role: str
) -> None:
    root, _ = _copy(pristine, kind, tmp_path, legacy=True)
    path = _resolve(root, role)
    _damage(path, "truncate")
    result = run_cli("search", "alpha", "--index", str(root))
    _clean(result)
    assert result.exit_code == 3 and path.relative_to(root).as_posix() in result.stderr


@pytest.mark.parametrize("legacy", [False, True], ids=["checksums", "legacy"])
@pytest.mark.parametrize("array", ["post_doc", "term_ptr", "rows"])
def test_bad_postings_are_damage(
    pristine: dict[str, Any], tmp_path: Path, legacy: bool, array: str
) -> None:
    import numpy as np

    root, _ = _copy(pristine, "sparse", tmp_path, legacy=legacy)
    path = _resolve(root, f"bm25/seg-2/{array}.npy")
    good = np.load(path)
    bad = good[::-1].copy() if array != "post_doc" else np.full_like(good, 10**6)
    path.unlink()  # a new file of the same size: only the range checks can tell
    np.save(path, bad)
    result = run_cli("search", "alpha", "--index", str(root))
    _clean(result)
    assert result.exit_code == 3 and path.relative_to(root).as_posix() in result.stderr


def test_index_pointing_at_a_file(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    for args in (
        ["search", "alpha", "--index", str(corpus)],
        ["add", str(corpus), "--index", str(corpus)],
        ["delete", "d1", "--index", str(corpus)],
        ["check", str(corpus)],
        ["repair", str(corpus)],
    ):
        result = run_cli(*args)
        _clean(result)
        assert result.exit_code == 3, (args, result.stderr)
        assert "is a file" in result.stderr
    result = run_cli("index", str(corpus), "--index", str(corpus), "--no-dense")
    assert result.exit_code == 2 and "not a directory" in result.stderr


def test_an_empty_input_file_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = run_cli("index", str(empty), "--index", str(tmp_path / "idx"), "--no-dense")
    _clean(result)
    assert result.exit_code == 2
    assert f"no documents found in {empty}" in result.stderr
    assert not (tmp_path / "idx").exists()


# ---- check and repair reports --------------------------------------------------------


def test_check_and_repair_json(pristine: dict[str, Any], tmp_path: Path) -> None:
    root, _ = _copy(pristine, "sparse", tmp_path, legacy=False)
    healthy = run_cli("check", str(root), "--json")
    assert healthy.exit_code == 0
    report = json.loads(healthy.stdout)
    assert report["healthy"] is True and report["current"] == LIVE
    assert [g["name"] for g in report["generations"]] == [LIVE, "gen-000002"]
    live = report["generations"][0]
    assert live["status"] == "intact" and live["documents"] == 29 and live["files_verified"] == 22
    nothing = run_cli("repair", str(root), "--json")
    assert nothing.exit_code == 0 and json.loads(nothing.stdout)["changed"] is False

    _damage(_resolve(root, "docs/docstore.json"), "flip")
    damaged = run_cli("check", str(root), "--json")
    assert damaged.exit_code == 3
    report = json.loads(damaged.stdout)
    assert report["healthy"] is False
    assert report["generations"][0]["problems"] == [
        {
            "file": f"{LIVE}/docs/docstore.json",
            "problem": "checksum differs from the one recorded at commit",
        }
    ]
    assert report["generations"][1]["status"] == "intact"
    fixed = run_cli("repair", str(root), "--json")
    assert fixed.exit_code == 0
    assert json.loads(fixed.stdout) | {"message": ""} == {
        "index": str(root),
        "changed": True,
        "current": "gen-000002",
        "previous": LIVE,
        "set_aside": f"{LIVE}.damaged",
        "message": "",
    }
    # the next write numbers past the generation set aside, and never removes it
    with Index.open(root) as index:
        index.add([Document("z", "zebra")])
        assert index.generation_name == "gen-000004"
        index.add([Document("y", "yak")])
    assert (root / f"{LIVE}.damaged" / "docs" / "docstore.json").is_file()
    assert run_cli("check", str(root)).exit_code == 0


def test_an_escaped_eoferror_is_not_reported_as_aborted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def truncated(*_a: Any, **_k: Any) -> None:
        raise EOFError("No data left in file")

    monkeypatch.setattr(Index, "open", truncated)
    with pytest.raises(EOFError, match="No data left"):
        run_cli("search", "x", "--index", str(tmp_path))


# ---- kill -9 after the switch (the steps before it: tests/test_index.py) ----------------

KILL_AFTER = """
import os, shutil, signal, sys
from shortlist.store import generations
from shortlist.store.index import Index
from shortlist.types import Document
point = sys.argv[2]
def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)
if point == "marker":  # CURRENT switched, the .incomplete marker not yet removed
    real = generations.write_current
    def switch(root, name):
        real(root, name); die()
    generations.write_current = switch
else:  # cleanup: an old generation renamed away, not yet deleted
    generations.shutil.rmtree = die
index = Index.open(sys.argv[1])
index.add([Document("late", "added just before the kill")])
print("finished")
"""


@pytest.mark.parametrize("point", ["marker", "cleanup"])
def test_kill_after_the_switch(pristine: dict[str, Any], tmp_path: Path, point: str) -> None:
    import subprocess
    import sys

    root, answers = _copy(pristine, "sparse", tmp_path, legacy=False)
    src = str(Path(__file__).resolve().parents[1] / "src")
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AFTER, str(root), point],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": src},
    )
    assert proc.returncode == -9, proc.stderr
    # the write was committed: its generation is live, and nothing is damaged
    assert current_generation_name(root) == "gen-000004"
    assert check_index(root).healthy
    with Index.open(root) as index:
        assert index.passages(["late#0"])[0] is not None
        if point == "cleanup":
            assert [p for p in root.iterdir() if p.name.startswith(".deleting-")]
        index.delete(["late"])  # the next writer finishes the interrupted cleanup
    assert not [p for p in root.iterdir() if p.name.startswith(".deleting-")]
    assert _answers(root) == answers[LIVE]
    assert run_cli("check", str(root)).exit_code == 0


def test_another_format_version_is_not_repaired_away(
    pristine: dict[str, Any], tmp_path: Path
) -> None:
    root, _ = _copy(pristine, "sparse", tmp_path, legacy=False)
    manifest_path = root / LIVE / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["format_version"] = 99  # e.g. written by a newer shortlist
    manifest_path.write_text(json.dumps(manifest))
    check = run_cli("check", str(root))
    assert check.exit_code == 3 and "version 99" in check.stdout
    assert "incompatible, not damaged" in check.stdout and "repair" not in check.stdout
    repair = run_cli("repair", str(root))
    _clean(check, repair)
    assert repair.exit_code == 3 and "not damaged" in repair.stderr
    assert current_generation_name(root) == LIVE
    assert not list(root.glob("*.damaged"))
