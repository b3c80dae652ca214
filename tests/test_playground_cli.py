"""`shortlist ui` / `shortlist serve` playground options, with uvicorn.run captured."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")

from chat_fakes import fake_llm
from shortlist.cli import cli
from shortlist.corpus.readers import read_corpus
from shortlist.store.index import Index


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    import uvicorn

    def fake_run(app: Any, **kwargs: Any) -> None:
        seen["app"], seen["kwargs"] = app, kwargs

    monkeypatch.setattr(uvicorn, "run", fake_run)
    return seen


@pytest.fixture
def index_dir(tmp_path: Path) -> str:
    data = os.path.join(os.path.dirname(__file__), "data", "lee5.jsonl")
    Index.create(tmp_path / "index", list(read_corpus([data])), dense=False)
    return str(tmp_path / "index")


def test_ui_serves_the_playground_with_every_option(
    captured: dict[str, Any], index_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    monkeypatch.setenv("LLM_TOKEN", "sk-ui-secret")
    report = tmp_path / "eval.json"
    report.write_text(json.dumps({"primary": "ndcg@10", "summary": []}))
    with fake_llm() as (llm, url):
        result = CliRunner().invoke(
            cli,
            [
                "ui", "--index", index_dir, "--judgements", str(tmp_path / "j"),
                "--eval-json", str(report), "--llm", url, "--llm-model", "m1",
                "--llm-key-env", "LLM_TOKEN", "--price-in", "1", "--price-out", "3",
                "--port", "8123",
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "playground: http://127.0.0.1:8123/" in result.output
        assert "sk-ui-secret" not in result.output
        with TestClient(captured["app"]) as client:
            info = client.get("/v1/playground").json()
            assert info["judgements"] and info["eval"] and info["llm"] == "m1"
            assert [p["name"] for p in info["pipelines"]] == ["bm25"]
            body = {"query": "who leads the Democrats", "pipeline": "bm25"}
            with client.stream("POST", "/v1/answer", json=body) as r:
                lines = list(r.iter_lines())
    assert r.status_code == 200 and "event: done" in lines
    done = json.loads(lines[lines.index("event: done") + 1].removeprefix("data: "))
    assert done["cost_usd"] > 0
    assert llm.auth == ["Bearer sk-ui-secret"] and llm.requests[0]["model"] == "m1"
    assert (tmp_path / "j" / "corpus.jsonl").exists()


def test_ui_needs_an_index_and_llm_options_come_in_pairs(
    captured: dict[str, Any], index_dir: str
) -> None:
    result = CliRunner().invoke(cli, ["ui"])
    assert result.exit_code == 2 and "Missing option '--index'" in result.output
    result = CliRunner().invoke(cli, ["serve", "--index", index_dir, "--llm-model", "m"])
    assert "--llm-model needs --llm URL" in str(result.exception)
    result = CliRunner().invoke(cli, ["serve", "--index", index_dir, "--llm", "http://x/v1"])
    assert "--llm needs --llm-model NAME" in str(result.exception)
    args = ["serve", "--index", index_dir, "--llm", "http://x/v1", "--llm-model", "m"]
    result = CliRunner().invoke(cli, [*args, "--price-in", "1"])
    assert "both --price-in and --price-out" in str(result.exception)
    result = CliRunner().invoke(cli, ["serve", "--rerank", "none", "--judgements", "j"])
    assert "--judgements needs --index DIR" in str(result.exception)
    assert "app" not in captured
