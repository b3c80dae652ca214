"""The persistent index: create/open/add/delete, search modes, filters, atomicity, compatibility."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shortlist.errors import IndexCompatibilityError, IndexNotFoundError, InvalidInputError
from shortlist.store.index import Index
from shortlist.types import Document

DOCS = [
    Document(
        "cats",
        "Cats are small domesticated carnivorous mammals that purr.",
        metadata={"lang": "en", "topic": "animals"},
    ),
    Document(
        "dogs",
        "Dogs are loyal domesticated animals descended from wolves.",
        metadata={"lang": "en", "topic": "animals"},
    ),
    Document(
        "python",
        "Python is a programming language with dynamic typing.",
        metadata={"lang": "en", "topic": "code"},
    ),
    Document(
        "rust",
        "Rust is a systems programming language focused on memory safety.",
        metadata={"lang": "en", "topic": "code"},
    ),
    Document(
        "katzen",
        "Katzen sind kleine Haustiere und schnurren gern.",
        metadata={"lang": "de", "topic": "animals"},
    ),
]
ENC = "hashing:64"


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index.create(tmp_path / "idx", DOCS, encoder=ENC)


def _ids(ranking) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.doc_id for h in ranking]


def test_create_open_roundtrip(index: Index, tmp_path: Path) -> None:
    reopened = Index.open(tmp_path / "idx")
    assert reopened.num_documents == 5
    for mode in ("bm25", "dense", "hybrid"):
        a = index.search("programming language memory safety", k=3, mode=mode)
        b = reopened.search("programming language memory safety", k=3, mode=mode)
        assert [(h.id, round(h.score, 5)) for h in a] == [(h.id, round(h.score, 5)) for h in b]
    assert _ids(reopened.search("memory safety", k=1, mode="bm25")) == ["rust"]


def test_hits_carry_text_metadata_and_first_stage(index: Index) -> None:
    r = index.search("domesticated animals", k=2, mode="bm25")
    assert [h.rank for h in r] == [1, 2]
    top = r[0]
    assert top.first_stage_rank == 1 and top.first_stage_score == top.score
    assert top.text and top.metadata["lang"] == "en"
    assert r.timings_ms["total"] >= r.timings_ms["retrieve.bm25"] >= 0
    d = r.to_dict()
    assert set(d) == {"query", "results", "timings_ms"}
    assert {
        "id",
        "doc_id",
        "rank",
        "score",
        "first_stage_rank",
        "first_stage_score",
        "text",
        "metadata",
    } <= set(d["results"][0])


def test_filters_equality_membership_and_k(index: Index) -> None:
    r = index.search("animals", k=5, mode="dense", filter={"topic": "animals"})
    assert sorted(_ids(r)) == ["cats", "dogs", "katzen"]
    r = index.search("language", k=5, mode="dense", filter={"lang": ["de", "en"], "topic": "code"})
    assert sorted(_ids(r)) == ["python", "rust"]
    assert len(index.search("anything", k=3, mode="dense", filter={"lang": "fr"})) == 0
    # bm25 under a filter still fills k from matching documents
    r = index.search("domesticated language", k=2, mode="bm25", filter={"topic": "code"})
    assert sorted(_ids(r)) == ["python", "rust"]


def test_add_and_delete_are_incremental_and_persisted(index: Index, tmp_path: Path) -> None:
    added = index.add([Document("go", "Go is a programming language with goroutines.")])
    assert added == 1
    assert _ids(index.search("goroutines", k=1, mode="bm25")) == ["go"]
    deleted, unknown = index.delete(["rust", "nope"])
    assert deleted == 1 and unknown == ["nope"]
    reopened = Index.open(tmp_path / "idx")
    assert reopened.num_documents == 5
    assert "rust" not in _ids(reopened.search("memory safety systems", k=5, mode="hybrid"))
    assert _ids(reopened.search("goroutines", k=1, mode="bm25")) == ["go"]


def test_incremental_equals_fresh_build(tmp_path: Path) -> None:
    inc = Index.create(tmp_path / "inc", DOCS[:2], encoder=ENC)
    inc.add(DOCS[2:])
    inc.delete(["dogs"])
    fresh = Index.create(tmp_path / "fresh", [d for d in DOCS if d.id != "dogs"], encoder=ENC)
    for q in ("programming language", "domesticated mammals purr", "Haustiere"):
        for mode in ("bm25", "dense", "hybrid"):
            a = [(h.doc_id, round(h.score, 4)) for h in inc.search(q, k=4, mode=mode)]
            b = [(h.doc_id, round(h.score, 4)) for h in fresh.search(q, k=4, mode=mode)]
            assert a == b, (q, mode)


def test_duplicates(index: Index) -> None:
    with pytest.raises(InvalidInputError, match="already in the index"):
        index.add([Document("cats", "new text")])
    assert index.num_documents == 5
    index.add([Document("cats", "Cats were replaced by zebras.")], on_duplicate="replace")
    assert _ids(index.search("zebras", k=1, mode="bm25")) == ["cats"]
    assert index.num_documents == 5
    with pytest.raises(InvalidInputError, match="twice"):
        index.add([Document("x", "a"), Document("x", "b")])


def test_document_grouping(tmp_path: Path) -> None:
    from shortlist.corpus.chunking import Chunker

    long_doc = Document("long", " ".join(f"alpha{i} beta gamma" for i in range(120)))
    idx = Index.create(
        tmp_path / "g",
        [long_doc, *DOCS],
        encoder=ENC,
        chunker=Chunker(size=50, overlap=10, unit="words"),
    )
    assert idx.num_passages > idx.num_documents
    passages = idx.search("beta gamma", k=3, mode="bm25")
    assert all(h.doc_id == "long" for h in passages)
    docs = idx.search("beta gamma", k=3, mode="hybrid", by="document")
    assert len({h.doc_id for h in docs}) == len(docs)
    assert [h.rank for h in docs] == list(range(1, len(docs) + 1))


def test_bad_queries_and_modes(index: Index, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        index.search("  ")
    with pytest.raises(InvalidInputError, match="mode"):
        index.search("x", mode="sparse")
    bm25_only = Index.create(tmp_path / "b", DOCS, dense=False)
    with pytest.raises(InvalidInputError, match="--no-dense"):
        bm25_only.search("x", mode="dense")
    assert _ids(bm25_only.search("memory safety", k=1, mode="bm25")) == ["rust"]


def test_open_errors(tmp_path: Path, index: Index) -> None:
    with pytest.raises(IndexNotFoundError, match="shortlist index"):
        Index.open(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="already exists"):
        Index.create(tmp_path / "idx", DOCS, encoder=ENC)
    from shortlist.retrieve.encoders import load_encoder

    with pytest.raises(IndexCompatibilityError, match="encoder"):
        Index.open(tmp_path / "idx", encoder=load_encoder("hashing:32"))
    gen = tmp_path / "idx" / (tmp_path / "idx" / "CURRENT").read_text().strip()
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["format_version"] = 99
    (gen / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCompatibilityError, match="version 99"):
        Index.open(tmp_path / "idx")


def test_overwrite_replaces(index: Index, tmp_path: Path) -> None:
    Index.create(tmp_path / "idx", DOCS[:1], encoder=ENC, overwrite=True)
    assert Index.open(tmp_path / "idx").num_documents == 1


def test_stale_writer_is_refused(index: Index, tmp_path: Path) -> None:
    other = Index.open(tmp_path / "idx")
    index.add([Document("new", "fresh text")])
    with pytest.raises(InvalidInputError, match="another writer"):
        other.add([Document("new2", "more text")])
    assert Index.open(tmp_path / "idx").num_documents == 6


def test_failed_write_keeps_previous_index(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shortlist.store import index as index_mod

    before = [(h.id, h.score) for h in index.search("programming", k=5, mode="hybrid")]

    def boom(*_a, **_k):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(index_mod, "commit_generation", boom)
    with pytest.raises(OSError, match="disk full"):
        index.add([Document("new", "programming programming programming")])
    # the in-memory object went back to the live generation, and so did the disk
    assert [(h.id, h.score) for h in index.search("programming", k=5, mode="hybrid")] == before
    assert [
        (h.id, h.score)
        for h in Index.open(tmp_path / "idx").search("programming", k=5, mode="hybrid")
    ] == before


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from shortlist.store import index as index_mod, generations
    from shortlist.types import Document
    point = sys.argv[2]
    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
    if point == "docs":
        orig = index_mod.DocStore.save
        def save(self, d):
            orig(self, d); die()
        index_mod.DocStore.save = save
    elif point == "bm25":
        orig_b = index_mod.BM25Index.save
        def bsave(self, d):
            orig_b(self, d); die()
        index_mod.BM25Index.save = bsave
    elif point == "fsync":
        generations.fsync_tree = die
    elif point == "replace":
        real_replace = os.replace
        def rep(a, b):
            die()
        generations.os.replace = rep
    idx = index_mod.Index.open(sys.argv[1])
    idx.add([Document(f"new{i}", f"programming language number {i} " * 20) for i in range(200)])
    idx.delete(["python"])
    print("finished")
    """
)


@pytest.mark.parametrize("point", ["docs", "bm25", "fsync", "replace"])
def test_kill_mid_write_leaves_previous_index(index: Index, tmp_path: Path, point: str) -> None:
    queries = ["programming language", "domesticated animals", "memory safety"]
    before = {q: [(h.id, h.score) for h in index.search(q, k=5, mode="hybrid")] for q in queries}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "idx"), point],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    assert "finished" not in proc.stdout
    after = Index.open(tmp_path / "idx")
    assert after.num_documents == 5
    assert {
        q: [(h.id, h.score) for h in after.search(q, k=5, mode="hybrid")] for q in queries
    } == before
    from shortlist.store.health import check_index

    assert check_index(tmp_path / "idx").healthy  # the killed write's folder is no damage
    # the next writer cleans the orphan generation and succeeds
    after.add([Document("go", "Go has goroutines.")])
    assert Index.open(tmp_path / "idx").num_documents == 6
    gens = sorted(p.name for p in (tmp_path / "idx").iterdir() if p.name.startswith("gen-"))
    assert len(gens) <= 2


def test_vectors_for_reuses_stored_vectors(index: Index) -> None:
    ids = [h.id for h in index.search("cats", k=2, mode="dense")] + ["unknown#0"]
    mat, found = index.vectors_for(ids)
    assert found.tolist() == [True, True, False]
    enc = index.encoder
    direct = enc.encode([p.text if p is not None else "" for p in index.passages(ids[:2])])
    assert abs(mat[:2] - direct).max() < 1e-2  # float16 storage


@pytest.mark.parametrize("method", ["rrf", "minmax", "zscore", "dbsf"])
def test_hybrid_ties_follow_row_order_not_string_order(tmp_path: Path, method: str) -> None:
    from shortlist.store.index import HybridConfig

    docs = [Document(f"doc{i}", "identical words in every document") for i in range(12)]
    idx = Index.create(
        tmp_path / method, docs, encoder=ENC, hybrid=HybridConfig(method=method)
    )
    hits = idx.search("identical words", k=12, mode="hybrid")
    # Every passage ties on both sides: rows in numeric order (row 9 before row 10).
    assert _ids(hits) == [f"doc{i}" for i in range(12)]


def test_hybrid_config_validates_and_reads_old_manifests() -> None:
    from shortlist.store.index import HybridConfig

    with pytest.raises(InvalidInputError, match="valid: dbsf"):
        HybridConfig(method="borda")
    with pytest.raises(InvalidInputError, match="weights"):
        HybridConfig(weights=(0.0, 0.0))
    assert HybridConfig.from_dict({}) == HybridConfig.from_dict(
        {"method": "rrf", "depth": 100, "rrf_k": 60, "weights": [0.5, 0.5]}
    )
    config = HybridConfig(method="dbsf", weights=(0.3, 0.7), depth=50)
    assert HybridConfig.from_dict(config.to_dict()) == config
