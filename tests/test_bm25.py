from __future__ import annotations

import json
import math
import os
import random
import re
from pathlib import Path

import numpy as np
import pytest

from shortlist.errors import IndexCompatibilityError, IndexNotFoundError, InvalidInputError
from shortlist.retrieve.analyzer import Analyzer
from shortlist.retrieve.bm25 import BM25Index

# dl = 3, 3, 7; avgdl = 13/3
DOCS = [
    ["cat", "sat", "mat"],
    ["dog", "cat", "run"],
    ["quick", "brown", "fox", "jump", "over", "lazi", "dog"],
]


def bm25(tf: int, df: int, dl: int, *, n: int = 3, avgdl: float = 13 / 3, k1=0.9, b=0.4) -> float:
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))


def small_index(k1: float = 0.9, b: float = 0.4) -> BM25Index:
    index = BM25Index(k1=k1, b=b)
    index.add(DOCS, [0, 1, 2])
    return index


def test_scores_match_hand_computation() -> None:
    # idf(cat) = idf(dog) = ln(1 + 1.5 / 2.5) = ln 1.6; doc 0: 0.4700036 / 1.7892308
    assert bm25(1, 2, 3) == pytest.approx(0.2626847, abs=1e-7)
    rows, scores = small_index().search(["cat", "dog"], 10)
    assert rows.tolist() == [1, 0, 2]
    assert rows.dtype == np.int64 and scores.dtype == np.float32
    expected = [2 * bm25(1, 2, 3), bm25(1, 2, 3), bm25(1, 2, 7)]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_k1_and_b_change_scores() -> None:
    default = small_index().search(["cat", "dog"], 10)[1]
    tuned = small_index(k1=1.2, b=0.75).search(["cat", "dog"], 10)[1]
    expected = [
        2 * bm25(1, 2, 3, k1=1.2, b=0.75),
        bm25(1, 2, 3, k1=1.2, b=0.75),
        bm25(1, 2, 7, k1=1.2, b=0.75),
    ]
    np.testing.assert_allclose(tuned, expected, rtol=1e-6)
    assert not np.allclose(default, tuned)
    np.testing.assert_array_equal(small_index().with_params(k1=1.2, b=0.75).search(
        ["cat", "dog"], 10)[1], tuned)
    assert small_index(k1=1.2, b=0.75).params == {"k1": 1.2, "b": 0.75, "method": "lucene"}


def test_default_parameters_are_lucenes() -> None:
    assert BM25Index().params == {"k1": 1.2, "b": 0.75, "method": "lucene"}


def test_term_frequency_and_repeated_query_terms() -> None:
    index = BM25Index(k1=0.9, b=0.4)
    index.add([["cat", "cat", "dog"], ["cat", "dog", "dog"]], [0, 1])
    rows, scores = index.search(["cat"], 5)
    assert rows.tolist() == [0, 1]
    idf = math.log(1 + 0.5 / 2.5)
    np.testing.assert_allclose(scores, [idf * 2 / (2 + 0.9), idf * 1 / (1 + 0.9)], rtol=1e-6)
    np.testing.assert_allclose(index.search(["cat", "cat"], 5)[1], 2 * scores, rtol=1e-6)


def test_empty_query_unknown_terms_and_k_larger_than_matches() -> None:
    index = small_index()
    for query in ([], ["unicorn"], ["unicorn", "zebra"]):
        rows, scores = index.search(query, 10)
        assert rows.size == 0 and scores.size == 0
    assert index.search(["cat"], 0)[0].size == 0
    assert index.search(["cat", "unicorn"], 100)[0].tolist() == [0, 1]
    assert BM25Index().search(["cat"], 10)[0].size == 0


def test_ties_break_by_row_ascending_also_at_the_cut() -> None:
    index = BM25Index()
    index.add([["x", "y"]] * 6 + [["x", "x"]], [10, 11, 12, 13, 14, 15, 20])
    rows, scores = index.search(["x"], 4)
    assert rows.tolist() == [20, 10, 11, 12]
    assert scores[1] == scores[2] == scores[3] < scores[0]


def test_filtered_search_returns_k_allowed_hits() -> None:
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(30)]
    docs = [rng.choices(vocab, k=rng.randint(1, 12)) for _ in range(200)]
    index = BM25Index()
    index.add(docs, list(range(200)))
    allowed = np.zeros(200, dtype=bool)
    allowed[1::7] = True
    query = ["w1", "w2"]
    matching_allowed = [r for r in range(200) if allowed[r] and set(query) & set(docs[r])]
    assert len(matching_allowed) >= 5
    rows, scores = index.search(query, 5, allowed=allowed)
    assert len(rows) == 5 and allowed[rows].all() and (scores > 0).all()
    full_rows, _ = index.search(query, 200)
    assert rows.tolist() == [r for r in full_rows.tolist() if allowed[r]][:5]
    rows, _ = index.search(query, 1000, allowed=allowed)
    assert sorted(rows.tolist()) == matching_allowed


def test_bad_inputs_are_rejected() -> None:
    index = small_index()
    with pytest.raises(InvalidInputError, match="strictly increasing"):
        index.add([["a"]], [2])
    with pytest.raises(InvalidInputError, match="strictly increasing"):
        index.add([["a"], ["b"]], [9, 8])
    with pytest.raises(InvalidInputError, match="one row each"):
        index.add([["a"]], [5, 6])
    with pytest.raises(InvalidInputError, match="not a string"):
        index.add(["a b"], [5])
    with pytest.raises(InvalidInputError, match="never added"):
        index.delete([7])
    with pytest.raises(InvalidInputError, match="cover every row"):
        index.search(["cat"], 3, allowed=np.ones(2, dtype=bool))
    with pytest.raises(InvalidInputError, match="analyze"):
        index.search("cat", 3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="b must be"):
        BM25Index(b=1.5)


def random_corpus(seed: int, n: int) -> list[list[str]]:
    rng = random.Random(seed)
    vocab = [f"t{i}" for i in range(60)]
    weights = [1 / (i + 1) for i in range(60)]
    return [rng.choices(vocab, weights, k=rng.randint(0, 20)) for _ in range(n)]


def assert_same_results(a: BM25Index, b: BM25Index, queries: list[list[str]]) -> None:
    assert a.num_docs == b.num_docs
    for query in queries:
        rows_a, scores_a = a.search(query, 15)
        rows_b, scores_b = b.search(query, 15)
        np.testing.assert_array_equal(rows_a, rows_b)
        np.testing.assert_allclose(scores_a, scores_b, rtol=1e-6)


def test_incremental_add_and_delete_equal_a_fresh_index_of_live_docs() -> None:
    docs = random_corpus(0, 300)
    rows = np.arange(0, 600, 2)  # sparse row ids
    queries = [[f"t{i}", f"t{(i * 7) % 60}"] for i in range(60)] + [["t0"], ["t59", "t3", "t3"]]

    index = BM25Index(k1=1.1, b=0.6)
    index.add(docs[:100], rows[:100])
    index.delete(rows[[3, 50, 99]])
    index.add(docs[100:250], rows[100:250])
    index.delete(rows[[120, 3]])  # 3 again: already deleted, ignored
    index.add(docs[250:], rows[250:])
    index.delete(rows[[260, 0, 1]])
    assert index.num_segments == 3

    dead = {3, 50, 99, 120, 260, 0, 1}
    live = [i for i in range(300) if i not in dead]
    fresh = BM25Index(k1=1.1, b=0.6)
    fresh.add([docs[i] for i in live], rows[live])
    assert index.num_docs == len(live) == 293
    np.testing.assert_array_equal(index.live_rows(), rows[live])
    assert_same_results(index, fresh, queries)
    for query in queries:
        assert not set(index.search(query, 300)[0].tolist()) & set(rows[list(dead)].tolist())


def test_deleting_every_document_leaves_an_empty_index() -> None:
    index = small_index()
    index.delete([0, 1, 2])
    assert index.num_docs == 0
    assert index.search(["cat"], 5)[0].size == 0
    index.add([["cat"]], [3])
    assert index.search(["cat"], 5)[0].tolist() == [3]


def segment_files(directory: Path) -> dict[str, Path]:
    return {
        f"{p.parent.name}/{p.name}": p for p in directory.glob("seg-*/*") if p.is_file()
    }


def test_save_load_round_trip_and_hardlinks_after_add(tmp_path: Path) -> None:
    docs = random_corpus(1, 120)
    queries = [[f"t{i}", f"t{i + 1}"] for i in range(0, 59)]
    index = BM25Index(k1=1.3, b=0.7)
    index.add(docs[:80], range(80))
    index.delete([5, 6])
    index.save(tmp_path / "g1")
    manifest = json.loads((tmp_path / "g1" / "manifest.json").read_text())
    assert manifest["params"] == {"k1": 1.3, "b": 0.7, "method": "lucene"}

    for mmap in (True, False):
        loaded = BM25Index.load(tmp_path / "g1", mmap=mmap)
        assert loaded.params == index.params
        assert_same_results(loaded, index, queries)

    loaded = BM25Index.load(tmp_path / "g1")
    loaded.add(docs[80:], range(80, 120))
    loaded.delete([100])
    loaded.save(tmp_path / "g2")
    first, second = segment_files(tmp_path / "g1"), segment_files(tmp_path / "g2")
    assert set(first) < set(second)
    for name, path in first.items():
        assert os.path.samefile(path, second[name]), name  # old segment: hardlinked
    assert len(second) - len(first) == 6  # one new segment, written

    again = BM25Index.load(tmp_path / "g2")
    again.delete([0])
    again.save(tmp_path / "g3")
    for name, path in second.items():
        assert os.path.samefile(path, tmp_path / "g3" / name)

    fresh = BM25Index(k1=1.3, b=0.7)
    live = [i for i in range(120) if i not in {0, 5, 6, 100}]
    fresh.add([docs[i] for i in live], live)
    assert_same_results(BM25Index.load(tmp_path / "g3"), fresh, queries)


def test_save_refuses_a_non_empty_directory_and_load_reports_problems(tmp_path: Path) -> None:
    index = small_index()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(InvalidInputError, match="not empty"):
        index.save(tmp_path / "full")
    with pytest.raises(IndexNotFoundError):
        BM25Index.load(tmp_path / "nothing")
    index.save(tmp_path / "ok")
    manifest_path = tmp_path / "ok" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(dict(manifest, format_version=999)))
    with pytest.raises(IndexCompatibilityError, match="version"):
        BM25Index.load(tmp_path / "ok")
    manifest_path.write_text(json.dumps(manifest))
    next(iter(segment_files(tmp_path / "ok").values())).parent.joinpath("post_tf.npy").unlink()
    with pytest.raises(IndexCompatibilityError, match="damaged"):
        BM25Index.load(tmp_path / "ok")


# ---------------------------------------------------------------- agreement with bm25s


def lee_texts() -> list[str]:
    gensim = pytest.importorskip("gensim")
    path = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data", "lee_background.cor")
    with open(path, encoding="latin-1") as fh:
        return [line.strip() for line in fh if line.strip()]


def ndcg_at_10(ranked: list[int], relevant: int) -> float:
    # One relevant document: DCG = 1 / log2(rank + 1), ideal DCG = 1.
    for position, row in enumerate(ranked[:10]):
        if row == relevant:
            return 1.0 / math.log2(position + 2)
    return 0.0


def test_agrees_with_bm25s_lucene_on_the_lee_corpus() -> None:
    bm25s = pytest.importorskip("bm25s")
    texts = lee_texts()
    analyzer = Analyzer()
    corpus_tokens = analyzer.analyze_many(texts)
    # Queries: the first sentence of every third document; relevant = its source document.
    sources = list(range(0, len(texts), 3))
    queries = [analyzer.analyze(re.split(r"(?<=[.!?])\s", texts[i])[0]) for i in sources]

    ours = BM25Index(k1=0.9, b=0.4)
    ours.add(corpus_tokens, range(len(texts)))
    theirs = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    theirs.index(corpus_tokens, show_progress=False)

    overlaps, ndcg_ours, ndcg_theirs = [], [], []
    for source, query in zip(sources, queries, strict=True):
        rows, scores = ours.search(query, 10)
        their_scores = theirs.get_scores(query)
        their_top = [int(r) for r in np.argsort(-their_scores, kind="stable")[:10]]
        their_top = [r for r in their_top if their_scores[r] > 0]
        overlaps.append(len(set(rows.tolist()) & set(their_top)) / max(len(their_top), 1))
        # Scores agree to float32 rounding on every document we return.
        np.testing.assert_allclose(scores, their_scores[rows], rtol=1e-5)
        ndcg_ours.append(ndcg_at_10(rows.tolist(), source))
        ndcg_theirs.append(ndcg_at_10(their_top, source))
    assert np.mean(overlaps) >= 0.95
    assert abs(np.mean(ndcg_ours) - np.mean(ndcg_theirs)) <= 0.01
    assert np.mean(ndcg_ours) > 0.5  # the source document is usually found


def test_empty_documents_count_in_n_and_avgdl() -> None:
    index = BM25Index(k1=0.9, b=0.4)
    index.add([[], []], [0, 1])
    assert index.num_docs == 2 and index.search(["cat"], 5)[0].size == 0
    index.add([["cat"]], [2])
    # N = 3, df = 1, avgdl = 1/3: ln(1 + 2.5/1.5) / (1 + 0.9 * (0.6 + 0.4 * 3))
    rows, scores = index.search(["cat"], 5)
    assert rows.tolist() == [2]
    np.testing.assert_allclose(scores, [math.log(1 + 2.5 / 1.5) / (1 + 0.9 * 1.8)], rtol=1e-6)
