"""`shortlist index/add/delete/search` driven through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clirun import run_cli


def _write_jsonl(path: Path, rows: list[dict]) -> Path:  # type: ignore[type-arg]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return _write_jsonl(
        tmp_path / "c.jsonl",
        [
            {
                "id": "a",
                "text": "The kernel schedules processes on CPUs.",
                "metadata": {"section": "os"},
            },
            {
                "id": "b",
                "text": "Garbage collection frees unreachable memory.",
                "metadata": {"section": "lang"},
            },
            {
                "id": "c",
                "text": "Process scheduling decides which task runs next.",
                "metadata": {"section": "os"},
            },
        ],
    )


def test_index_search_add_delete(tmp_path: Path, corpus: Path) -> None:
    idx = str(tmp_path / "idx")
    r = run_cli("index", str(corpus), "--index", idx, "--model", "hashing:32")
    assert r.exit_code == 0, r.stderr
    assert "indexed 3 documents" in r.stdout

    r = run_cli(
        "search", "scheduling decides tasks", "--index", idx, "--mode", "bm25", "-k", "2", "--json"
    )
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["query"] == "scheduling decides tasks"
    assert [h["doc_id"] for h in out["results"]] == ["c", "a"]
    assert out["results"][0]["rank"] == 1 and out["results"][0]["first_stage_rank"] == 1
    assert {"retrieve", "total"} <= set(out["timings_ms"])

    r = run_cli(
        "search",
        "memory",
        "--index",
        idx,
        "--filter",
        "section=os",
        "--json",
        "-k",
        "5",
        "--mode",
        "dense",
    )
    assert {h["doc_id"] for h in json.loads(r.stdout)["results"]} == {"a", "c"}

    more = _write_jsonl(
        tmp_path / "more.jsonl", [{"id": "d", "text": "Virtual memory maps pages to frames."}]
    )
    r = run_cli("add", str(more), "--index", idx)
    assert r.exit_code == 0 and "4 documents" in r.stdout

    r = run_cli("delete", "a", "zzz", "--index", idx)
    assert r.exit_code == 0 and "not in the index: zzz" in r.stderr

    r = run_cli("search", "kernel", "--index", idx, "--mode", "bm25", "--json")
    assert "a" not in [h["doc_id"] for h in json.loads(r.stdout)["results"]]

    r = run_cli("search", "pages", "--index", idx, "--mode", "bm25")
    assert r.exit_code == 0 and "d#0" in r.stdout and "timings:" in r.stdout


def test_bad_input_is_one_clear_line(tmp_path: Path, corpus: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "fine"}\n{"id": "y", "text": ""}\n', encoding="utf-8")
    r = run_cli("index", str(bad), "--index", str(tmp_path / "i2"), "--no-dense")
    assert r.exit_code == 2
    assert "bad.jsonl:2" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "i2" / "CURRENT").exists()

    r = run_cli("index", str(bad), "--index", str(tmp_path / "i3"), "--no-dense", "--skip-bad")
    assert r.exit_code == 0 and "indexed 1 documents" in r.stdout and "skipped" in r.stderr

    r = run_cli("search", "x", "--index", str(tmp_path / "nowhere"))
    assert r.exit_code == 3 and "no shortlist index" in r.stderr

    r = run_cli("search", "x", "--index", str(tmp_path / "i3"), "--mode", "dense")
    assert r.exit_code == 2 and "--no-dense" in r.stderr


def test_console_script_maps_errors_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shortlist", "search", "q", "--index", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3
    assert proc.stderr.startswith("error: no shortlist index") and "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["index", "add"])
def test_index_and_add_read_csv_columns_and_skip_bad_records_alike(
    tmp_path: Path, corpus: Path, command: str
) -> None:
    csv = tmp_path / "more.csv"
    csv.write_text("key,body\nk1,first new text\nk2,\nk3,second new text\n", encoding="utf-8")
    idx = str(tmp_path / "idx")
    dense = ["--no-dense"] if command == "index" else []
    if command == "add":
        assert run_cli("index", str(corpus), "--index", idx, "--no-dense").exit_code == 0
    args = ["--id-column", "key", "--text-column", "body", "--skip-bad", *dense]
    r = run_cli(command, str(csv), "--index", idx, *args)
    assert r.exit_code == 0, r.stderr
    assert "more.csv:3" in r.stderr and "skipped 1 bad records" in r.stderr
    found = run_cli("search", "second new text", "--index", idx, "--mode", "bm25", "--json")
    assert json.loads(found.stdout)["results"][0]["doc_id"] == "k3"
