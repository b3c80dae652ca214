"""VectorIndex: exact search against brute force, persistence, deletes, ANN and filters."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from shortlist.errors import IndexCompatibilityError, IndexNotFoundError, InvalidInputError
from shortlist.retrieve.vectors import VectorIndex


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute(vectors: np.ndarray, rows: np.ndarray, q: np.ndarray, k: int):
    scores = vectors.astype(np.float32) @ q
    order = np.lexsort((rows, -scores))[:k]
    return rows[order], scores[order]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    vectors = _unit(rng, 500, 16)
    rows = rng.permutation(10_000)[:500].astype(np.int64)
    queries = _unit(rng, 7, 16)
    return vectors, rows, queries


def test_exact_search_matches_brute_force(data) -> None:
    vectors, rows, queries = data
    index = VectorIndex(16, dtype="float32", ann_threshold=None)
    index.add(vectors[:200], rows[:200])
    index.add(vectors[200:], rows[200:])
    assert index.num_vectors == 500 and index.dim == 16 and len(index) == 500
    for q in queries:
        got_rows, got_scores = index.search(q, 10)
        want_rows, want_scores = _brute(vectors, rows, q, 10)
        np.testing.assert_array_equal(got_rows, want_rows)
        np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5)
        assert got_rows.dtype == np.int64 and got_scores.dtype == np.float32
    many_rows, _ = index.search_many(queries, 5)
    for i, q in enumerate(queries):
        np.testing.assert_array_equal(many_rows[i], _brute(vectors, rows, q, 5)[0])


def test_ties_are_broken_by_row_ascending() -> None:
    index = VectorIndex(2, dtype="float32", ann_threshold=None)
    index.add(np.array([[1.0, 0.0]] * 5 + [[0.0, 1.0]]), [9, 3, 7, 1, 5, 2])
    rows, scores = index.search(np.array([1.0, 0.0]), 3)
    assert rows.tolist() == [1, 3, 5]
    assert scores.tolist() == [1.0, 1.0, 1.0]
    rows, _ = index.search(np.array([1.0, 0.0]), 10)
    assert rows.tolist() == [1, 3, 5, 7, 9, 2]


def test_k_larger_than_index_and_empty_index(data) -> None:
    vectors, rows, queries = data
    empty = VectorIndex(16)
    got, scores = empty.search(queries[0], 5)
    assert got.shape == (0,) and scores.shape == (0,)
    index = VectorIndex(16)
    index.add(vectors[:3], rows[:3])
    assert index.search(queries[0], 10)[0].shape == (3,)
    assert index.search(queries[0], 0)[0].shape == (0,)


def test_float16_close_to_float32(data) -> None:
    vectors, rows, queries = data
    half = VectorIndex(16, dtype="float16")
    full = VectorIndex(16, dtype="float32")
    half.add(vectors, rows)
    full.add(vectors, rows)
    for q in queries:
        h_rows, h_scores = half.search(q, 20)
        f_rows, f_scores = full.search(q, 20)
        assert len(set(h_rows.tolist()) & set(f_rows.tolist())) >= 18
        np.testing.assert_allclose(h_scores[:5], f_scores[:5], atol=2e-3)
        assert h_scores.dtype == np.float32


def test_add_then_delete_equals_fresh_index(data) -> None:
    vectors, rows, queries = data
    index = VectorIndex(16, dtype="float32")
    index.add(vectors, rows)
    gone = rows[::3]
    assert index.delete(gone) == len(gone)
    assert index.delete(gone) == 0  # already deleted: ignored
    keep = np.ones(500, dtype=bool)
    keep[::3] = False
    fresh = VectorIndex(16, dtype="float32")
    fresh.add(vectors[keep], rows[keep])
    assert index.num_vectors == fresh.num_vectors == int(keep.sum())
    np.testing.assert_array_equal(index.rows(), np.sort(rows[keep]))
    for q in queries:
        a_rows, a_scores = index.search(q, 25)
        b_rows, b_scores = fresh.search(q, 25)
        np.testing.assert_array_equal(a_rows, b_rows)
        np.testing.assert_allclose(a_scores, b_scores, rtol=1e-6)
    # A deleted row may be added again, with a new vector.
    index.add(vectors[:1] * -1, gone[:1])
    np.testing.assert_allclose(index.get(gone[:1]), vectors[:1] * -1)


def test_add_validation(data) -> None:
    vectors, rows, _ = data
    index = VectorIndex(16)
    index.add(vectors[:10], rows[:10])
    with pytest.raises(InvalidInputError, match="already"):
        index.add(vectors[:1], rows[:1])
    with pytest.raises(InvalidInputError, match="shape"):
        index.add(vectors[:2, :8], rows[:2])
    with pytest.raises(InvalidInputError, match="duplicates"):
        index.add(vectors[10:12], [5, 5])
    with pytest.raises(InvalidInputError, match="non-negative"):
        index.add(vectors[10:11], [-1])
    with pytest.raises(InvalidInputError, match="NaN"):
        index.add(np.full((1, 16), np.nan), [99_999])
    with pytest.raises(InvalidInputError, match="shape"):
        index.search(np.zeros(8), 3)
    assert index.num_vectors == 10


def test_save_load_roundtrip_and_hardlinks(tmp_path, data) -> None:
    vectors, rows, queries = data
    index = VectorIndex(16, dtype="float16", ann_threshold=None)
    index.add(vectors[:300], rows[:300])
    index.add(vectors[300:400], rows[300:400])  # unsaved segments are merged on save
    index.save(tmp_path / "gen1")
    assert index.num_segments == 1
    manifest = json.loads((tmp_path / "gen1" / "manifest.json").read_text())
    assert manifest["format"] == "shortlist-vectors" and manifest["dtype"] == "float16"

    loaded = VectorIndex.load(tmp_path / "gen1")
    for q in queries:
        a = index.search(q, 10)
        b = loaded.search(q, 10)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])

    loaded.add(vectors[400:], rows[400:])
    loaded.delete(rows[:5])
    loaded.save(tmp_path / "gen2")
    old_files = {p.name: p for p in (tmp_path / "gen1").glob("seg-*.npy")}
    for name, old in old_files.items():
        new = tmp_path / "gen2" / name
        assert os.path.samefile(old, new), name  # unchanged segment is hardlinked
    assert len(list((tmp_path / "gen2").glob("seg-*.npy"))) == 2 * 2

    reloaded = VectorIndex.load(tmp_path / "gen2", mmap=False)
    fresh = VectorIndex(16, dtype="float16")
    fresh.add(vectors[5:], rows[5:])
    assert reloaded.num_vectors == 495
    for q in queries:
        np.testing.assert_array_equal(reloaded.search(q, 10)[0], fresh.search(q, 10)[0])
    # The first generation is untouched by the second save.
    assert VectorIndex.load(tmp_path / "gen1").num_vectors == 400


def test_save_refuses_nonempty_folder_and_load_errors(tmp_path, data) -> None:
    vectors, rows, _ = data
    index = VectorIndex(16)
    index.add(vectors[:5], rows[:5])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(InvalidInputError, match="new folder"):
        index.save(tmp_path / "full")
    (tmp_path / "empty").mkdir()
    index.save(tmp_path / "empty")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    with pytest.raises(IndexNotFoundError):
        VectorIndex.load(tmp_path / "missing")
    manifest = tmp_path / "empty" / "manifest.json"
    meta = json.loads(manifest.read_text())
    meta["format_version"] = 999
    manifest.write_text(json.dumps(meta))
    with pytest.raises(IndexCompatibilityError, match="version"):
        VectorIndex.load(tmp_path / "empty")
    # manifests written before format_version carried the same number as "version"
    del meta["format_version"]
    meta["version"] = 1
    manifest.write_text(json.dumps(meta))
    assert VectorIndex.load(tmp_path / "empty").num_vectors == 5


def _clustered(rng: np.random.Generator, n: int, dim: int, centers: int) -> np.ndarray:
    means = _unit(rng, centers, dim)
    x = means[rng.integers(0, centers, n)] + 0.15 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ann_path_has_high_recall_and_survives_deletes(tmp_path) -> None:
    rng = np.random.default_rng(1)
    vectors = _clustered(rng, 3000, 32, 20)
    rows = np.arange(3000, dtype=np.int64) * 2
    index = VectorIndex(32, dtype="float32", ann_threshold=1000)
    index.add(vectors, rows)
    report = index.measure_recall(k=20, n_queries=30)
    assert report["recall"] >= 0.9
    queries = _clustered(rng, 10, 32, 20)
    index.delete(rows[:500])
    ann_rows, ann_scores = index.search_many(queries, 20)
    exact_rows, _ = index.exact_search_many(queries, 20)
    for a, s, e in zip(ann_rows, ann_scores, exact_rows, strict=True):
        assert a.shape == (20,)
        assert not set(a.tolist()) & set(rows[:500].tolist())
        assert np.all(np.diff(s) <= 0)
        assert len(set(a.tolist()) & set(e.tolist())) >= 16
    index.save(tmp_path / "ann")
    assert (tmp_path / "ann" / "ann.usearch").is_file()
    loaded = VectorIndex.load(tmp_path / "ann")
    loaded_rows, _ = loaded.search_many(queries, 20)
    overlap = [
        len(set(a.tolist()) & set(b.tolist()))
        for a, b in zip(loaded_rows, ann_rows, strict=True)
    ]
    assert min(overlap) >= 16
    (tmp_path / "ann" / "ann.usearch").unlink()  # rebuilt on demand when absent
    rebuilt = VectorIndex.load(tmp_path / "ann")
    assert rebuilt.search(queries[0], 20)[0].shape == (20,)


def test_filtered_search_returns_k_allowed_hits() -> None:
    rng = np.random.default_rng(2)
    vectors = _clustered(rng, 2000, 16, 10)
    rows = np.arange(2000, dtype=np.int64)
    index = VectorIndex(16, dtype="float32", ann_threshold=500)
    index.add(vectors, rows)
    allowed = rows[rows % 97 == 0]  # 21 rows, scattered over clusters
    index.delete(allowed[:1])
    q = vectors[5]
    got, scores = index.search(q, 10, allowed=allowed)
    want, want_scores = _brute(vectors[allowed[1:]], allowed[1:], q, 10)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5)
    assert index.search(q, 50, allowed=allowed)[0].shape == (20,)
    mask = np.zeros(3000, dtype=bool)
    mask[allowed] = True
    np.testing.assert_array_equal(index.search(q, 10, allowed=mask)[0], want)
    assert index.search(q, 10, allowed=np.array([], dtype=np.int64))[0].shape == (0,)


def test_float16_fast_exact_path_matches_brute_force(monkeypatch) -> None:
    rng = np.random.default_rng(3)
    vectors = _clustered(rng, 3000, 24, 15)
    vectors[100:140] = vectors[7]  # 41 identical vectors: ties across the top-k boundary
    rows = rng.permutation(3000).astype(np.int64)
    index = VectorIndex(24, dtype="float16", ann_threshold=None)
    index.add(vectors[:1500], rows[:1500])
    index.add(vectors[1500:], rows[1500:])
    index.delete(rows[2000:2050])
    keep = np.ones(3000, dtype=bool)
    keep[2000:2050] = False
    stored = vectors.astype(np.float16).astype(np.float32)
    queries = np.vstack([vectors[7], _clustered(rng, 4, 24, 15)])
    for q in queries:
        got_rows, got_scores = index.search(q, 20)
        want_rows, want_scores = _brute(stored[keep], rows[keep], q, 20)
        np.testing.assert_array_equal(got_rows, want_rows)
        np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5, atol=1e-6)

    # Without ties at the boundary, the usearch path answers and numpy never scans.
    def no_scan(*args, **kwargs):
        raise AssertionError("fell back to the numpy scan")

    monkeypatch.setattr(VectorIndex, "_exact_segment", no_scan)
    got_rows, _ = index.search(queries[1], 20)
    np.testing.assert_array_equal(got_rows, _brute(stored[keep], rows[keep], queries[1], 20)[0])
