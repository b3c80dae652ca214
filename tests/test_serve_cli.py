"""`shortlist serve` through click's runner, with a fake registry and uvicorn.run captured."""

from __future__ import annotations

import json
import logging
import socket
import sys
import types
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")

from clirun import run_cli
from serve_fakes import OverlapScorer, free_port
from shortlist.cli import cli


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    import shortlist.rerank.registry as real

    registry = types.ModuleType("shortlist.rerank.registry")
    # The real grammar decides which kinds take runtime options such as num_threads.
    registry.REGISTRY = real.REGISTRY  # type: ignore[attr-defined]
    seen["loaded"] = []

    def load(spec: str, **options: Any) -> OverlapScorer:
        seen["loaded"].append(spec)
        return OverlapScorer(name=spec)

    registry.load_reranker = load  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "shortlist.rerank.registry", registry)
    import uvicorn

    def fake_run(app: Any, **kwargs: Any) -> None:
        seen["app"], seen["kwargs"] = app, kwargs

    monkeypatch.setattr(uvicorn, "run", fake_run)
    # serve configures logging at its edge; the test process's logging stays as it is.
    monkeypatch.setattr("logging.config.dictConfig", lambda config: seen.update(logging=config))
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
            "--port",
            str(port := free_port()),
        ],
    )
    assert result.exit_code == 0, result.output
    kwargs = captured["kwargs"]
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == port
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
    result = CliRunner().invoke(
        cli,
        ["serve", "--rerank", "a", "--rerank", "b", "--name", "x", "--name", "y", "--name", "z"],
    )
    assert "one --name per --rerank" in str(result.exception)
    result = CliRunner().invoke(
        cli, ["serve", "--rerank", "a", "--rerank", "b", "--name", "x", "--name", "x"]
    )
    assert "'x' is given to two --rerank models" in str(result.exception)


def test_repeated_names_are_aliases_of_one_model(captured: dict[str, Any]) -> None:
    args = ["serve", "--rerank", "fake:a", "--name", "small", "--name", "rerank-v3.5,rerank-x"]
    result = CliRunner().invoke(cli, [*args, "--port", str(free_port())])
    assert result.exit_code == 0, result.output
    assert captured["loaded"] == ["fake:a"]
    app = captured["app"]
    assert app.state.model_names == {
        "small": ["fake:a", "rerank-v3.5", "rerank-x", "small"]
    }
    result = CliRunner().invoke(
        cli,
        ["serve", "--rerank", "fake:a", "--rerank", "fake:b", "--name", "a1,a2", "--name", "b1",
         "--accept-any-model", "--port", str(free_port())],
    )
    assert result.exit_code == 0, result.output
    assert captured["app"].state.model_names == {
        "a1": ["a1", "a2", "fake:a"], "b1": ["b1", "fake:b"]
    }

    from fastapi.testclient import TestClient

    with TestClient(captured["app"]) as client:
        body = {"model": "rerank-english-v3.0", "query": "q", "documents": ["a"]}
        r = client.post("/v2/rerank", json=body)
    assert r.status_code == 200 and r.headers["X-Shortlist-Model"] == "a1"


def test_startup_summary_and_log_format(
    captured: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    args = ["serve", "--rerank", "fake:a", "--name", "small", "--name", "rerank-v3.5",
            "--api-key", "s3cret", "--port", str(port)]
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    block = result.stderr
    assert f"url:        http://127.0.0.1:{port}" in block
    assert "small (default); also answers to fake:a, rerank-v3.5" in block
    assert "index:      none" in block
    assert "auth:       on" in block and "s3cret" not in block
    assert "limits:     documents 1000, top_n 1000, bytes 8388608" in block
    assert "batching:   on (max 16384 tokens" in block
    assert f"API docs:   http://127.0.0.1:{port}/docs" in block
    assert f"playground: http://127.0.0.1:{port}/" in block  # the page at / of every serve
    assert "format" in captured["logging"]["formatters"]["default"]

    with caplog.at_level(logging.INFO, logger="shortlist.serve"):
        result = run_cli(*args, "--log-format", "json", "--no-batching", "--accept-any-model")
    assert result.exit_code == 0, result.stderr
    assert "shortlist serve\n" not in result.stderr  # no text block among JSON lines
    kwargs = captured["kwargs"]
    assert kwargs["access_log"] is False
    assert kwargs["log_config"]["formatters"]["default"]["()"].endswith("JsonFormatter")
    assert captured["logging"] == kwargs["log_config"]
    json.dumps(kwargs["log_config"])  # a plain dictConfig
    (record,) = [r for r in caplog.records if r.name == "shortlist.serve"]
    facts = record.fields["startup"]
    assert facts["models"] == [
        {"name": "small", "names": ["fake:a", "rerank-v3.5", "small"], "default": True}
    ]
    assert facts["auth"] is True and facts["batching"] is None and facts["accept_any_model"]
    assert facts["url"] == f"http://127.0.0.1:{port}" and facts["index"] is None
    assert "s3cret" not in json.dumps(facts)


def test_port_in_use_fails_before_any_model_loads(captured: dict[str, Any]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--rerank", "fake:a", "--port", str(port))
    assert result.exit_code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
    assert captured["loaded"] == [] and "app" not in captured


def test_summary_names_the_index_generation_playground_and_any_model() -> None:
    from shortlist.serve.startup import ServedIndex, startup_facts, summary

    facts = startup_facts(
        url="http://[::1]:9000",
        model_names={"a": ["a", "x"], "b": ["b"]},
        index=ServedIndex("my-index", "gen-000003"),
        auth=False,
        accept_any_model=True,
        limits={"documents": 5},
        batching=None,
        playground=True,
    )
    text = summary(facts)
    assert "    a (default); also answers to x\n    b\n" in text
    assert "any other model name is answered by the default" in text
    assert "index:      my-index (generation gen-000003; followed live)" in text
    assert "auth:       off" in text and "batching:   off" in text
    assert "playground: http://[::1]:9000/" in text


def test_port_check_names_an_address_not_on_this_machine() -> None:
    from shortlist.serve.startup import CannotListenError, check_port_free

    # 192.0.2.1 is TEST-NET-1 (RFC 5737): numeric, so no name lookup, and never local.
    with pytest.raises(CannotListenError, match="cannot listen on 192.0.2.1:8000.*--host"):
        check_port_free("192.0.2.1", 8000)


def test_serving_beyond_loopback_without_a_key_is_warned(
    captured: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="shortlist.serve"):
        result = run_cli("serve", "--rerank", "fake:a", "--host", "0.0.0.0", "--port", "0")
    assert result.exit_code == 0, result.stderr
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "0.0.0.0 without an API key" in warning and "--api-key" in warning
