"""`shortlist serve` through click's runner, with a fake registry and uvicorn.run captured."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")

from serve_fakes import OverlapScorer
from shortlist.cli import cli


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    import shortlist.rerank.registry as real

    registry = types.ModuleType("shortlist.rerank.registry")
    # The real grammar decides which kinds take runtime options such as num_threads.
    registry.REGISTRY = real.REGISTRY  # type: ignore[attr-defined]
    registry.load_reranker = lambda spec, **options: OverlapScorer(  # type: ignore[attr-defined]
        name=spec
    )
    monkeypatch.setitem(sys.modules, "shortlist.rerank.registry", registry)
    import uvicorn

    def fake_run(app: Any, **kwargs: Any) -> None:
        seen["app"], seen["kwargs"] = app, kwargs

    monkeypatch.setattr(uvicorn, "run", fake_run)
    return seen


def test_serve_builds_app_with_aliases_and_env_key(
    captured: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHORTLIST_API_KEY", "from-env")
    result = CliRunner().invoke(
        cli,
        [
            "serve",
            "--rerank",
            "fake:a",
            "--name",
            "small",
            "--rerank",
            "fake:b",
            "--max-docs",
            "7",
            "--no-batching",
        ],
    )
    assert result.exit_code == 0, result.output
    kwargs = captured["kwargs"]
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 8000
    slots = captured["app"].state.slots
    assert list(slots) == ["small", "fake:b"]
    assert all(slot.batcher is None for slot in slots.values())

    from fastapi.testclient import TestClient

    with TestClient(captured["app"]) as client:
        body = {"model": "small", "query": "q", "documents": ["a"] * 8}
        assert client.post("/v2/rerank", json=body).status_code == 401
        auth = {"Authorization": "Bearer from-env"}
        r = client.post("/v2/rerank", json=body, headers=auth)
        assert r.status_code == 422 and "max_documents=7" in r.json()["message"]


def test_serve_needs_something_to_serve(captured: dict[str, Any]) -> None:
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code != 0
    assert "nothing to serve" in str(result.exception)
    result = CliRunner().invoke(cli, ["serve", "--rerank", "a", "--name", "x", "--name", "y"])
    assert "one name per --rerank" in str(result.exception)
