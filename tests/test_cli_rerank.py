"""`shortlist rerank` through click's runner, with a fake encoder (no model)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from rerank_fakes import BagOfWordsEncoder
from shortlist.cli import cli
from shortlist.errors import CorpusFormatError, InvalidInputError, SpecError


@pytest.fixture(autouse=True)
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """`bi-encoder:*` specs get the bag-of-words fake instead of a real model."""
    monkeypatch.setattr(
        "shortlist.rerank.bi_encoder._load_encoder", lambda spec: BagOfWordsEncoder()
    )


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    path = tmp_path / "docs.jsonl"
    lines = [
        {"id": "pear", "text": "Green pears ripen slowly."},
        {"text": "Red apples are sweet apples."},
        "",
        {"id": 7, "text": "Apples grow on trees.", "source": "wiki"},
    ]
    path.write_text("\n".join(json.dumps(x) if x else "" for x in lines) + "\n")
    return path


def test_json_output(docs: Path) -> None:
    result = CliRunner().invoke(
        cli, ["rerank", "red apples", "--model", "bi-encoder:fake", "--docs", str(docs), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"query", "results", "timings_ms"}
    assert out["query"] == "red apples"
    assert [r["id"] for r in out["results"]] == ["1", "7", "pear"]
    assert [r["index"] for r in out["results"]] == [1, 2, 0]
    for r in out["results"]:
        assert set(r) == {"index", "id", "score", "raw_score", "text"}
        assert 0.0 <= r["score"] <= 1.0
        assert r["score"] == pytest.approx((r["raw_score"] + 1) / 2)
    assert out["results"][0]["text"] == "Red apples are sweet apples."
    assert "rerank" in out["timings_ms"]


def test_top_n_and_table(docs: Path) -> None:
    result = CliRunner().invoke(
        cli, ["rerank", "red apples", "--model", "bi-encoder:fake", "--docs", str(docs),
              "--top-n", "1"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["rank", "score", "raw", "id", "text"]
    assert lines[1].split()[0] == "1" and "Red apples are sweet apples." in lines[1]
    assert lines[2].startswith("1 of 3 documents, bi-encoder:fake")


def test_none_model_keeps_file_order(docs: Path) -> None:
    result = CliRunner().invoke(
        cli, ["rerank", "q", "--model", "none", "--docs", str(docs), "--json"]
    )
    assert [r["id"] for r in json.loads(result.output)["results"]] == ["pear", "1", "7"]


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        ('{"id": "a"}\n', CorpusFormatError, r"docs.jsonl:1: each line must be a JSON object"),
        ('{"text": "ok"}\n{bad\n', CorpusFormatError, r"docs.jsonl:2: not valid JSON"),
    ],
)
def test_bad_docs_file(tmp_path: Path, content: str, error: type, message: str) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text(content)
    result = CliRunner().invoke(cli, ["rerank", "q", "--model", "none", "--docs", str(path)])
    assert isinstance(result.exception, error)
    assert re.search(message, str(result.exception))


def test_bad_spec_and_empty_query(docs: Path) -> None:
    result = CliRunner().invoke(cli, ["rerank", "q", "--model", "bogus", "--docs", str(docs)])
    assert isinstance(result.exception, SpecError)
    assert "valid kinds: none, bi-encoder" in str(result.exception)
    result = CliRunner().invoke(cli, ["rerank", "  ", "--model", "none", "--docs", str(docs)])
    assert isinstance(result.exception, InvalidInputError)


def test_missing_docs_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["rerank", "q", "--model", "none", "--docs", str(tmp_path / "nope.jsonl")]
    )
    assert isinstance(result.exception, InvalidInputError)
    assert "nope.jsonl" in str(result.exception)


def test_main_maps_errors_to_exit_codes(docs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from shortlist.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["rerank", "q", "--model", "bogus", "--docs", str(docs)])
    assert exit_info.value.code == SpecError.exit_code
    assert capsys.readouterr().err.startswith("error: unknown reranker kind 'bogus'")


def test_help_lists_spec_kinds() -> None:
    result = CliRunner().invoke(cli, ["rerank", "--help"])
    assert result.exit_code == 0
    assert "cross-encoder" in result.output and "cascade" in result.output


def test_real_hashing_encoder_spec(docs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("shortlist.retrieve.encoders")
    monkeypatch.undo()
    result = CliRunner().invoke(
        cli, ["rerank", "red apples", "--model", "bi-encoder:hashing", "--docs", str(docs),
              "--json"]
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["results"]) == 3
