"""`LiveIndex`: the server's handle on an index that writers change while it serves."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import pytest

from shortlist.errors import IndexCompatibilityError
from shortlist.serve.live import Generation, LiveIndex
from shortlist.store.generations import pinned_generations
from shortlist.store.index import Index
from shortlist.types import Document


def _doc(i: int, text: str = "common words here") -> Document:
    return Document(id=f"d{i}", text=f"{text} unique{i}")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    Index.create(tmp_path / "idx", [_doc(i) for i in range(5)], dense=False).close()
    return tmp_path / "idx"


def _ids(index: Index, query: str = "common") -> set[str]:
    return {h.doc_id for h in index.search(query, k=50, mode="bm25")}


def test_switches_to_a_new_generation_and_old_leases_finish_on_the_old_one(root: Path) -> None:
    live = LiveIndex(root)
    assert live.generation == Generation("gen-000001", 1)
    assert live.refresh() is False  # nothing new
    with live.lease() as (old, gen):
        assert gen.number == 1
        writer = Index.open(root)
        writer.delete(["d0"])
        writer.delete(["d1"])  # two writes: without pins, gen-000001 would be removed now
        assert live.refresh() is True
        assert live.generation.number == 3
        # The running request still reads its own generation, files included.
        assert "d0" in _ids(old) and "d1" in _ids(old)
        assert "gen-000001" in pinned_generations(root)
        with live.lease() as (new, gen3):
            assert gen3.name == "gen-000003"
            assert _ids(new) == {"d2", "d3", "d4"}
    # The last lease on the old generation ended: its pin is gone, so a writer may drop it.
    assert "gen-000001" not in pinned_generations(root)
    writer.add([_doc(9)])
    writer.close()
    assert not (root / "gen-000001").exists()
    assert live.refresh() is True
    live.close()
    assert pinned_generations(root) == set()


def test_a_generation_that_fails_to_open_is_logged_once_and_the_old_one_kept(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = {"gen-000002"}

    def open_index(path: Path) -> Index:
        index = Index.open(path)
        if index.generation_name in broken:
            index.close()
            raise IndexCompatibilityError(f"{path}: manifest.json is damaged")
        return index

    live = LiveIndex(root, open_index=open_index)
    writer = Index.open(root)
    writer.add([_doc(7)])
    with caplog.at_level(logging.WARNING, logger="shortlist.serve"):
        assert live.refresh() is False
        assert live.refresh() is False
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "cannot open generation gen-000002" in warnings[0]
    assert "still serving generation gen-000001" in warnings[0]
    with live.lease() as (index, gen):
        assert gen.number == 1 and "d7" not in _ids(index)
    writer.add([_doc(8)])  # the next generation opens again
    assert live.refresh() is True
    with live.lease() as (index, gen):
        assert gen.number == 3 and {"d7", "d8"} <= _ids(index)
    writer.close()
    live.close()


def test_ready_and_search_name_the_generation(root: Path) -> None:
    from serve_fakes import running
    from shortlist.serve.app import GENERATION_HEADER, ServeConfig, create_app

    live = LiveIndex(root, poll_interval_s=0.02)
    with running(create_app(ServeConfig(), {}, live)) as url:
        ready = httpx.get(f"{url}/ready").json()
        assert ready["generation"] == {"name": "gen-000001", "number": 1}
        r = httpx.post(f"{url}/v1/search", json={"query": "unique3"})
        assert r.status_code == 200, r.text
        assert r.headers[GENERATION_HEADER] == "gen-000001"
        assert [h["doc_id"] for h in r.json()["results"]][:1] == ["d3"]
        writer = Index.open(root)
        writer.delete(["d3"])
        writer.close()
        for _ in range(200):
            if httpx.get(f"{url}/ready").json()["generation"]["number"] == 2:
                break
            time.sleep(0.02)
        r = httpx.post(f"{url}/v1/search", json={"query": "unique3"})
        assert r.headers[GENERATION_HEADER] == "gen-000002"
        assert "d3" not in [h["doc_id"] for h in r.json()["results"]]
    assert pinned_generations(root) == set()  # closed at shutdown


def test_a_damaged_new_generation_on_disk_keeps_the_old_one_serving(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live = LiveIndex(root)
    writer = Index.open(root)
    writer.delete(["d0"])
    writer.close()
    (root / "gen-000002" / "manifest.json").write_bytes(b"")  # damaged after the commit
    with caplog.at_level(logging.WARNING, logger="shortlist.serve"):
        for _ in range(3):
            assert live.refresh() is False
    assert len(caplog.records) == 1
    assert "cannot open generation gen-000002" in caplog.records[0].getMessage()
    with live.lease() as (index, gen):
        assert gen.name == "gen-000001" and "d0" in _ids(index)
    live.close()


def test_a_switch_hands_the_loaded_encoder_to_the_new_generation(tmp_path: Path) -> None:
    root = tmp_path / "dense"
    Index.create(root, [_doc(i) for i in range(5)], encoder="hashing:32").close()
    live = LiveIndex(root)
    with live.lease() as (first, _gen):
        first.search("common", k=3, mode="dense")  # loads the encoder
        encoder = first.loaded_encoder
    assert encoder is not None
    writer = Index.open(root)
    writer.delete(["d0"])
    writer.close()
    assert live.refresh() is True
    with live.lease() as (second, gen):
        assert gen.number == 2
        assert second.loaded_encoder is encoder  # no second copy of the model
        assert "d0" not in {h.doc_id for h in second.search("common", k=5, mode="dense")}
    live.close()
