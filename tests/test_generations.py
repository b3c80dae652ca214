"""Generations and reader pins: a writer never removes a generation a reader holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shortlist.store.generations import (
    current_generation_name,
    generations,
    pinned_generations,
)
from shortlist.store.index import Index
from shortlist.types import Document

DOCS = [
    Document("cats", "Cats are small domesticated carnivorous mammals that purr."),
    Document("dogs", "Dogs are loyal domesticated animals descended from wolves."),
    Document("python", "Python is a programming language with dynamic typing."),
    Document("rust", "Rust is a systems programming language focused on memory safety."),
]


def _gen_names(root: Path) -> list[str]:
    return [p.name for _n, p in generations(root)]


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    Index.create(tmp_path / "idx", DOCS, dense=False).close()
    return tmp_path / "idx"


def test_generation_properties_and_current_name(root: Path) -> None:
    with Index.open(root) as index:
        assert index.generation_name == current_generation_name(root) == "gen-000001"
        assert index.generation == 1
        index.add([Document("go", "Go has goroutines.")])
        assert index.generation_name == current_generation_name(root) == "gen-000002"
        assert index.generation == 2
    assert current_generation_name(root.parent / "nothing") is None


def test_a_pinned_generation_survives_writes_until_closed(root: Path) -> None:
    reader = Index.open(root)
    writer = Index.open(root)
    writer.delete(["cats"])
    writer.delete(["dogs"])
    writer.delete(["python"])
    # the reader's generation is still on disk and still answers, texts included
    assert "gen-000001" in _gen_names(root)
    hits = reader.search("domesticated", k=5, mode="bm25")
    assert {h.doc_id for h in hits} == {"cats", "dogs"} and all(h.text for h in hits)
    reader.close()
    reader.close()  # idempotent
    writer.add([Document("go", "Go has goroutines.")])
    assert _gen_names(root) == ["gen-000004", "gen-000005"]
    assert pinned_generations(root) == {"gen-000005"}  # the writer's own pin


def test_unpinned_old_generations_are_pruned(root: Path) -> None:
    index = Index.open(root)
    for i in range(4):
        index.add([Document(f"n{i}", f"text number {i}")])
    assert _gen_names(root) == ["gen-000004", "gen-000005"]
    index.close()
    assert pinned_generations(root) == set()
    assert not list((root / "readers").glob("*.lease"))


PIN_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from shortlist.store.index import Index
    index = Index.open(sys.argv[1])
    print(index.generation_name, flush=True)
    if sys.argv[2] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.readline()  # wait until the parent has written
    hits = index.search("domesticated", k=5, mode="bm25")
    print(",".join(sorted(h.doc_id for h in hits)), flush=True)
    """
)


def test_a_reader_in_another_process_keeps_its_generation(root: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PIN_SCRIPT, str(root), "wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdin is not None
            assert proc.stdout.readline().strip() == "gen-000001"
            with Index.open(root) as writer:
                for doc_id in ("cats", "dogs", "python"):
                    writer.delete([doc_id])
            assert "gen-000001" in pinned_generations(root)
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "cats,dogs"
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    # the reader exited: its lease is gone and the next write prunes its generation
    assert pinned_generations(root) == set()
    with Index.open(root) as writer:
        writer.add([Document("go", "Go has goroutines.")])
    assert _gen_names(root) == ["gen-000004", "gen-000005"]


def test_a_killed_readers_lease_is_stale(root: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PIN_SCRIPT, str(root), "die"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert len(list((root / "readers").glob("*.lease"))) == 1  # left behind by the dead reader
    assert pinned_generations(root) == set()  # ... but its lock died with it
    assert not list((root / "readers").glob("*.lease"))
    with Index.open(root) as writer:
        writer.delete(["cats"])
        writer.delete(["dogs"])
    assert _gen_names(root) == ["gen-000002", "gen-000003"]


def test_opening_a_plain_folder_creates_nothing_in_it(tmp_path: Path) -> None:
    from shortlist.errors import IndexNotFoundError

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(IndexNotFoundError):
        Index.open(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_forked_child_closing_its_copy_keeps_the_parents_pin(root: Path) -> None:
    index = Index.open(root)
    pid = os.fork()
    if pid == 0:  # the child: drop the inherited lease, as its exit would
        try:
            index.close()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pinned_generations(root) == {"gen-000001"}
    index.close()
    assert pinned_generations(root) == set()


def test_damage_errors_survive_pickling() -> None:
    import pickle

    from shortlist.errors import IndexCompatibilityError, IndexDamagedError

    err = IndexDamagedError(Path("/data/idx/gen-000004/bm25/manifest.json"), "the file is missing")
    assert isinstance(err, IndexCompatibilityError) and err.exit_code == 3
    assert err.index_dir == Path("/data/idx")
    assert "shortlist repair /data/idx" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert (str(again), again.path, again.problem) == (str(err), err.path, err.problem)
