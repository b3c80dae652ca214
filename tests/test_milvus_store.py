"""The Milvus store (`shortlist.store.milvus`) against Milvus Lite: the retriever contract,
equivalence with the local index, filters, writes and their failures, the CLI.

Milvus Lite starts in about two seconds, so the module shares one database file; each
test makes its own collection in it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clirun import run_cli
from optional import needs_extra
from retriever_contract import CONTRACT_DOCUMENTS, check_retriever_contract
from shortlist.errors import (
    IndexCompatibilityError,
    IndexNotFoundError,
    IndexWriteError,
    InvalidInputError,
)
from shortlist.retrieve.encoders import load_encoder
from shortlist.retrieve.hybrid import HybridConfig
from shortlist.retrieve.stages import BM25Retriever, DenseRetriever, HybridRetriever, first_stage
from shortlist.retrieve.store import PassageStore
from shortlist.store.index import Index
from shortlist.types import Document

pytestmark = needs_extra("milvus")

_names = itertools.count()


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("milvus") / "lite.db"


@pytest.fixture
def make(lite: Path, tmp_path: Path) -> Iterator[Any]:
    """`make(documents, **create_kwargs)`: a fresh collection and its index folder."""
    from shortlist.store.milvus import MilvusIndex, MilvusTarget

    opened: list[Index] = []

    def build(documents: list[Document], **kwargs: Any) -> MilvusIndex:
        name = f"c{next(_names)}"
        target = MilvusTarget.parse(f"milvus:{lite}?collection={name}")
        kwargs.setdefault("encoder", "hashing:64")
        index = MilvusIndex.create(tmp_path / name, documents, target=target, **kwargs)
        opened.append(index)
        return index

    yield build
    for index in opened:
        index.close()


@pytest.fixture(scope="module")
def contract_store(lite: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    from shortlist.store.milvus import MilvusIndex, MilvusTarget

    folder = tmp_path_factory.mktemp("contract") / "index"
    target = MilvusTarget.parse(f"milvus:{lite}?collection=contract")
    MilvusIndex.create(folder, CONTRACT_DOCUMENTS, target=target, encoder="hashing:64").close()
    with Index.open(folder) as index:  # the folder's pointer, as every command opens it
        yield index


@pytest.fixture(scope="module")
def local_store(tmp_path_factory: pytest.TempPathFactory) -> Index:
    return Index.create(
        tmp_path_factory.mktemp("local") / "i", CONTRACT_DOCUMENTS, encoder="hashing:64",
        vector_dtype="float32",
    )


# ---- the contract and equivalence -------------------------------------------------------
def test_index_open_of_the_folder_gives_the_milvus_store(contract_store: Index) -> None:
    from shortlist.store.milvus import MilvusIndex

    assert isinstance(contract_store, MilvusIndex)
    assert isinstance(contract_store, PassageStore)
    assert contract_store.num_passages == len(CONTRACT_DOCUMENTS)
    assert contract_store.num_documents == len(CONTRACT_DOCUMENTS)


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_retriever_contract(contract_store: Index, mode: str) -> None:
    check_retriever_contract(first_stage(contract_store, mode))


@pytest.mark.parametrize("method", ["rrf", "weighted_sum"])
def test_hybrid_contract_for_each_fusion(contract_store: Index, method: str) -> None:
    store = contract_store
    config = HybridConfig(method=method, depth=10)
    check_retriever_contract(HybridRetriever(BM25Retriever(store), DenseRetriever(store), config))


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_same_ranking_and_scores_as_the_local_index(
    contract_store: Index, local_store: Index, mode: str
) -> None:
    # Same analyzed terms, same BM25 formula up to Milvus's (k1 + 1) factor, which the
    # store divides out; the same vectors. So the same hits with the same scores.
    for query in ["programming language memory", "domesticated animals purr", "lamp wick"]:
        milvus = contract_store.search(query, k=5, mode=mode)
        local = local_store.search(query, k=5, mode=mode)
        assert milvus.ids == local.ids, query
        np.testing.assert_allclose(
            [h.score for h in milvus], [h.score for h in local], rtol=1e-5, atol=1e-6
        )


def test_filter_values_cannot_widen_the_query(contract_store: Index) -> None:
    attack = 'x" or passage_id != "'
    for value in [attack, [attack], 'en" or "1" == "1', "en\\", 'de\\" or 1 == 1 or "']:
        ranking = contract_store.search("domesticated", k=5, mode="bm25", filter={"lang": value})
        assert len(ranking) == 0, value
    # A key is escaped too.
    ranking = contract_store.search("domesticated", k=5, mode="bm25",
                                    filter={'lang"] != "x" or metadata["lang': "y"})
    assert len(ranking) == 0
    assert len(contract_store.search("domesticated", k=5, mode="bm25",
                                     filter={"lang": "en"})) == 2


def test_filter_expression_escapes_every_value() -> None:
    from shortlist.store.milvus import filter_expression, string_literal

    assert string_literal('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    expr = filter_expression({"lang": 'x" or id != "'})
    assert expr == (
        '(metadata["lang"] == "x\\" or id != \\"" '
        'or json_contains(metadata["lang"], "x\\" or id != \\""))'
    )
    # A CLI string that spells a number matches the number too, as in the local store.
    assert 'metadata["n"] == 2 ' in filter_expression({"n": "2"})
    with pytest.raises(InvalidInputError, match="control character"):
        filter_expression({"lang": "a\x00b"})
    with pytest.raises(InvalidInputError, match="string, number or boolean"):
        filter_expression({"lang": {"nested": 1}})


def test_filters_match_numbers_and_lists(make: Any) -> None:
    index = make(
        [
            Document("a", "alpha text", metadata={"tags": ["x", "y"], "n": 2}),
            Document("b", "alpha text", metadata={"tags": "z", "n": 3}),
        ],
        dense=False,
    )
    assert index.search("alpha", k=5, mode="bm25", filter={"tags": "y"}).ids == ["a#0"]
    assert index.search("alpha", k=5, mode="bm25", filter={"n": "3"}).ids == ["b#0"]
    both = index.search("alpha", k=5, mode="bm25", filter={"tags": ["x", "z"]})
    assert sorted(both.ids) == ["a#0", "b#0"]


# ---- writes ------------------------------------------------------------------------------
LONG = " ".join(f"word{i} topic" for i in range(60))


def test_delete_removes_every_chunk_and_add_replaces(make: Any) -> None:
    from shortlist.corpus.chunking import Chunker

    index = make(
        [Document("long", LONG), Document("short", "a short note about topic")],
        chunker=Chunker(size=20, overlap=0, unit="words"),
    )
    chunks = index.num_passages - 1
    assert chunks > 2
    with pytest.raises(InvalidInputError, match="--replace"):
        index.add([Document("short", "again")])
    assert index.add([Document("short", "again")], on_duplicate="skip") == 0
    # Re-adding replaces every old chunk by the new ones.
    assert index.add([Document("long", "now one passage")], on_duplicate="replace") == 1
    assert index.num_passages == 2
    assert [h.doc_id for h in index.search("passage", k=5, mode="bm25")] == ["long"]
    assert index.search("word7", k=5, mode="bm25").ids == []
    deleted, unknown = index.delete(["long", "nope"])
    assert (deleted, unknown) == (1, ["nope"])
    assert index.delete(["short#0"]) == (1, [])
    assert index.num_passages == 0


class _FailingInsert:
    """Wraps a client so that the `fail_at`-th insert call raises (and, with
    `fail_delete`, so does every delete)."""

    def __init__(self, client: Any, fail_at: int, fail_delete: bool = False) -> None:
        self._client = client
        self._calls = 0
        self._fail_at = fail_at
        self._fail_delete = fail_delete

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        self._calls += 1
        if self._calls == self._fail_at:
            raise RuntimeError("injected insert failure")
        return self._client.insert(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if self._fail_delete:
            raise RuntimeError("injected delete failure")
        return self._client.delete(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _docs(prefix: str, n: int) -> list[Document]:
    return [Document(f"{prefix}{i}", f"shared topic text number {i} {prefix}") for i in range(n)]


def test_a_failed_batch_insert_leaves_nothing_of_the_add_visible(
    make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shortlist.store.milvus as milvus

    index = make(_docs("old", 3), dense=False)
    before = sorted(h.id for h in index.search("shared topic", k=50, mode="bm25"))
    monkeypatch.setattr(milvus, "INSERT_ROWS", 2)  # several insert calls per add
    index._client = _FailingInsert(index._client, fail_at=2)
    new = [Document("old1", "replacement text shared topic"), *_docs("new", 5)]
    with pytest.raises(IndexWriteError, match="collection is as before"):
        index.add(new, on_duplicate="replace")
    after = sorted(h.id for h in index.search("shared topic", k=50, mode="bm25"))
    assert after == before  # the first batch was rolled back; old1 kept its old text
    assert index.passages(["old1#0"])[0].text.startswith("shared topic text number 1")


class _FailingEncoder:
    """Wraps an encoder so that its `fail_at`-th `encode` call raises."""

    def __init__(self, inner: Any, fail_at: int) -> None:
        self._inner = inner
        self._calls = 0
        self._fail_at = fail_at

    def encode(self, texts: Any) -> Any:
        self._calls += 1
        if self._calls == self._fail_at:
            raise RuntimeError("injected encoder failure")
        return self._inner.encode(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_writes_go_in_slices_and_a_failure_in_a_later_slice_removes_the_earlier_ones(
    make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shortlist.store.milvus as milvus

    index = make(_docs("old", 2))
    monkeypatch.setattr(milvus, "WRITE_ROWS", 2)
    assert index.add(_docs("ok", 5)) == 5  # three slices
    assert index.num_passages == 7
    index._encoder = _FailingEncoder(index.encoder, fail_at=2)
    with pytest.raises(IndexWriteError, match="collection is as before"):
        index.add(_docs("new", 5))
    assert index.num_passages == 7
    assert index.passages(["new0#0"]) == [None]


def test_when_the_rollback_fails_too_the_error_names_the_documents_to_resend(
    make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shortlist.store.milvus as milvus

    index = make(_docs("old", 1), dense=False)
    monkeypatch.setattr(milvus, "INSERT_ROWS", 2)
    index._client = _FailingInsert(index._client, fail_at=2, fail_delete=True)
    with pytest.raises(IndexWriteError) as caught:
        index.add(_docs("new", 5))
    message = str(caught.value)
    assert "Re-send these documents" in message
    assert "new0, new1, new2, new3" in message  # the written batch and the failed one


class _CountingFlush:
    def __init__(self, client: Any) -> None:
        self._client = client
        self.flushes = 0

    def flush(self, *args: Any, **kwargs: Any) -> Any:
        self.flushes += 1
        return self._client.flush(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_milvus_lite_is_flushed_after_every_write(make: Any) -> None:
    # Unflushed rows are re-indexed by Milvus Lite on every search (see MilvusIndex._seal).
    index = make(_docs("a", 2), dense=False)
    counting = _CountingFlush(index._client)
    index._client = counting
    index.add(_docs("b", 2))
    index.delete(["a0"])
    index.delete(["nothing"])  # no write, no flush
    assert counting.flushes == 2


# ---- opening: identity checks ------------------------------------------------------------
def test_opening_with_another_encoder_names_the_fix(make: Any) -> None:
    index = make(CONTRACT_DOCUMENTS[:2])
    index.close()
    with pytest.raises(IndexCompatibilityError, match="rebuild it"):
        Index.open(index.path, encoder=load_encoder("hashing:32"))


def test_a_collection_built_otherwise_is_refused(make: Any) -> None:
    index = make(CONTRACT_DOCUMENTS[:2])
    pointer = index.path / "store.json"
    manifest = json.loads(pointer.read_text())
    manifest["dense"]["identity"] = {**manifest["dense"]["identity"], "dim": 32}
    pointer.write_text(json.dumps(manifest))
    with pytest.raises(IndexCompatibilityError, match="--overwrite"):
        Index.open(index.path)
    manifest["store"]["collection"] = "missing_collection"
    pointer.write_text(json.dumps(manifest))
    with pytest.raises(IndexNotFoundError, match="missing_collection"):
        Index.open(index.path)


def test_building_over_an_existing_collection_needs_overwrite(make: Any, lite: Path,
                                                              tmp_path: Path) -> None:
    from shortlist.store.milvus import MilvusIndex, MilvusTarget

    index = make(CONTRACT_DOCUMENTS[:2], dense=False)
    target = MilvusTarget.parse(f"milvus:{lite}?collection={index.target.collection}")
    with pytest.raises(InvalidInputError, match="already exists"):
        MilvusIndex.create(tmp_path / "other", CONTRACT_DOCUMENTS[:1], target=target,
                           dense=False)
    rebuilt = MilvusIndex.create(tmp_path / "other", CONTRACT_DOCUMENTS[:1], target=target,
                                 dense=False, overwrite=True)
    assert rebuilt.num_passages == 1
    rebuilt.close()


def test_an_hnsw_collection_searches_like_flat(lite: Path, tmp_path: Path,
                                              contract_store: Index) -> None:
    from shortlist.store.milvus import MilvusIndex, MilvusTarget

    target = MilvusTarget.parse(f"milvus:{lite}?collection=hnsw&index=hnsw")
    with MilvusIndex.create(tmp_path / "h", CONTRACT_DOCUMENTS, target=target,
                            encoder="hashing:64") as index:
        assert index.manifest["store"]["dense_index"] == "hnsw"
        for query in ["programming language memory", "domesticated animals"]:
            assert (index.search(query, k=3, mode="dense").ids
                    == contract_store.search(query, k=3, mode="dense").ids)


def test_the_dense_index_is_flat_up_to_the_threshold_and_hnsw_above(make: Any) -> None:
    from shortlist.store.milvus import HNSW_ABOVE

    small = make(CONTRACT_DOCUMENTS[:2], expected_passages=HNSW_ABOVE)
    large = make(CONTRACT_DOCUMENTS[:2], expected_passages=HNSW_ABOVE + 1)
    assert small.manifest["store"]["dense_index"] == "flat"
    assert large.manifest["store"]["dense_index"] == "hnsw"


def test_store_spec_parsing(tmp_path: Path) -> None:
    from shortlist.store.milvus import MilvusTarget

    t = MilvusTarget.parse("milvus:http://milvus:19530?collection=docs&index=hnsw", token="k")
    assert (t.uri, t.collection, t.dense_index, t.token) == (
        "http://milvus:19530", "docs", "hnsw", "k")
    assert not t.is_lite
    assert MilvusTarget.parse(f"milvus:{tmp_path}/x.db?collection=c").is_lite
    for bad in ["milvus:x.db", "milvus:?collection=c", "elastic:x?collection=c",
                "milvus:x.db?collection=c&colection=d", "milvus:x.db?collection=1bad",
                "milvus:x.db?collection=c&index=ivf"]:
        with pytest.raises(InvalidInputError):
            MilvusTarget.parse(bad)


def test_passages_come_from_search_hits_or_from_milvus(contract_store: Index) -> None:
    rows, _ = contract_store.bm25_search(["cat"], 1, allowed=None)
    with Index.open(contract_store.path) as fresh:  # has seen no search: fetches
        assert fresh.passages_at(rows) == contract_store.passages_at(rows)
        assert [p.doc_id for p in fresh.passages_at(rows)] == ["cats"]
        with pytest.raises(InvalidInputError, match="not in"):
            fresh.passages_at([10**15])


def test_a_document_twice_in_one_build_is_refused(make: Any) -> None:
    with pytest.raises(InvalidInputError, match="appears twice"):
        make([Document("a", "one"), Document("a", "two")], dense=False)


def test_other_bm25_parameters_at_query_time_are_refused(contract_store: Index) -> None:
    from shortlist.retrieve.stages import BM25Params

    same = BM25Retriever(contract_store, BM25Params(1.2, 0.75)).run("cats", k=2)
    assert same.ids == contract_store.search("cats", k=2, mode="bm25").ids
    with pytest.raises(InvalidInputError, match="fixed when it was built"):
        BM25Retriever(contract_store, BM25Params(0.9, 0.4)).run("cats", k=2)


# ---- the CLI -------------------------------------------------------------------------------
def test_cli_commands_work_unchanged_through_the_folder(lite: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"id": "a", "text": "The kernel schedules processes.", "metadata": {"s": "os"}},
                {"id": "b", "text": "Garbage collection frees memory.", "metadata": {"s": "lang"}},
            ]
        )
    )
    folder = tmp_path / "idx"
    store = f"milvus:{lite}?collection=cli"
    r = run_cli("index", str(corpus), "--index", str(folder), "--model", "hashing:32",
                "--store", store)
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["store.json"]
    r = run_cli("search", "kernel processes", "--index", str(folder), "--mode", "hybrid",
                "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["results"][0]["doc_id"] == "a"
    r = run_cli("search", "memory", "--index", str(folder), "--mode", "bm25",
                "--filter", "s=os", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["results"] == []
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"id": "c", "text": "Schedulers pick the next process."}) + "\n")
    r = run_cli("add", str(more), "--index", str(folder))
    assert r.exit_code == 0, r.stderr
    assert "3 documents (3 passages)" in r.stdout
    r = run_cli("delete", "a", "--index", str(folder))
    assert r.exit_code == 0, r.stderr
    assert "2 documents (2 passages)" in r.stdout
    r = run_cli("index", str(corpus), "--index", str(tmp_path / "idx2"), "--store", store,
                "--model", "hashing:32")
    assert r.exit_code != 0
    assert "--overwrite" in r.stderr
    r = run_cli("index", str(corpus), "--index", str(tmp_path / "idx3"), "--store",
                "milvus:nowhere")
    assert r.exit_code != 0
    assert "collection" in r.stderr


def test_tune_and_search_run_unchanged_on_a_milvus_index(lite: Path, tmp_path: Path) -> None:
    from tiny_beir import write_tiny_beir

    data = write_tiny_beir(tmp_path / "ds")
    folder = tmp_path / "idx"
    r = run_cli("index", str(data / "corpus.jsonl"), "--format", "beir", "--index", str(folder),
                "--model", "hashing:32", "--store", f"milvus:{lite}?collection=tune")
    assert r.exit_code == 0, r.stderr
    out = tmp_path / "shortlist.toml"
    r = run_cli("tune", str(data), "--index", str(folder), "--folds", "2",
                "--weights", "0.3,0.7", "--out", str(out))
    assert r.exit_code == 0, r.stderr
    assert "fixed by the index's store" in r.stderr  # the k1/b grid collapses to the store's
    r = run_cli("search", "rotate log files", "--index", str(folder), "--pipeline-file",
                str(out), "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["results"]
    r = run_cli("tune", str(data), "--index", str(folder), "--k1", "0.9", "--b", "0.4",
                "--out", str(out))
    assert r.exit_code != 0
    assert "fixed when it was built" in r.stderr


def test_a_pointer_to_an_unknown_store_kind_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / "store.json").write_text(json.dumps({"store": {"kind": "elastic"}}))
    with pytest.raises(IndexCompatibilityError, match="opens milvus"):
        Index.open(folder)


# ---- serving: replicas over one collection --------------------------------------------------
@needs_extra("serve")
def test_two_replicas_answer_from_one_collection_and_see_writes_at_once(make: Any) -> None:
    import httpx

    from serve_fakes import OverlapScorer, running
    from shortlist.serve.app import GENERATION_HEADER, ServeConfig, create_app
    from shortlist.serve.live import LiveIndex

    writer = make([Document("a", "shared topic alpha"), Document("b", "shared topic beta")],
                  dense=False)
    config = ServeConfig(max_documents=100, max_top_n=100)
    replicas = [LiveIndex(writer.path, poll_interval_s=0.05) for _ in range(2)]
    apps = [create_app(config, {"overlap": OverlapScorer()}, live) for live in replicas]
    body = {"query": "shared topic", "k": 10, "top_n": 10}
    with running(apps[0]) as one, running(apps[1]) as two:
        for url in (one, two):
            r = httpx.post(f"{url}/v1/search", json=body, timeout=30)
            assert r.status_code == 200, r.text
            assert {h["doc_id"] for h in r.json()["results"]} == {"a", "b"}
            assert r.headers[GENERATION_HEADER] == f"milvus:{writer.target.collection}"
        writer.add([Document("c", "shared topic gamma")])
        writer.delete(["a"])
        for url in (one, two):  # no generation switch to wait for: the next search sees it
            r = httpx.post(f"{url}/v1/search", json=body, timeout=30)
            assert {h["doc_id"] for h in r.json()["results"]} == {"b", "c"}
        # Each replica counts its own requests.
        httpx.post(f"{one}/v1/search", json=body, timeout=30)
        counts = []
        for url in (one, two):
            metrics = httpx.get(f"{url}/metrics", timeout=30).text
            counts.append(sum(
                float(x.rsplit(" ", 1)[1]) for x in metrics.splitlines()
                if x.startswith("shortlist_requests_total{") and "/v1/search" in x
            ))
        assert counts == [3.0, 2.0]


def test_check_and_repair_say_a_milvus_folder_is_not_theirs(make: Any) -> None:
    index = make(CONTRACT_DOCUMENTS[:1], dense=False)
    for command in ("check", "repair"):
        r = run_cli(command, str(index.path))
        assert r.exit_code != 0
        assert "external store" in r.stderr
