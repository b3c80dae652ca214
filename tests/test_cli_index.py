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


def _manifest(idx: str) -> dict:  # type: ignore[type-arg]
    from shortlist.store.index import Index

    return dict(Index.open(idx).manifest)


def test_index_records_relevance_defaults_and_options(tmp_path: Path, corpus: Path) -> None:
    from shortlist.corpus.chunking import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE
    from shortlist.retrieve.bm25 import DEFAULT_B, DEFAULT_K1
    from shortlist.retrieve.fusion import DEFAULT_FUSION, DEFAULT_FUSION_WEIGHTS

    plain = str(tmp_path / "plain")
    assert run_cli("index", str(corpus), "--index", plain, "--no-dense").exit_code == 0
    manifest = _manifest(plain)
    assert manifest["bm25"] == {"k1": DEFAULT_K1, "b": DEFAULT_B}
    assert manifest["chunker"] == {
        "unit": "tokens",
        "size": DEFAULT_CHUNK_SIZE,
        "overlap": DEFAULT_CHUNK_OVERLAP,
        "tokenizer": None,
    }
    assert manifest["hybrid"]["method"] == DEFAULT_FUSION
    assert tuple(manifest["hybrid"]["weights"]) == DEFAULT_FUSION_WEIGHTS

    tuned = str(tmp_path / "tuned")
    r = run_cli(
        "index", str(corpus), "--index", tuned, "--model", "hashing:32",
        "--k1", "0.9", "--b", "0.4", "--chunk-unit", "words", "--chunk-size", "100",
        "--chunk-overlap", "10", "--fusion", "dbsf", "--fusion-weights", "0.3,0.7",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    manifest = _manifest(tuned)
    assert manifest["bm25"] == {"k1": 0.9, "b": 0.4}
    assert manifest["chunker"]["unit"] == "words" and manifest["chunker"]["size"] == 100
    assert manifest["hybrid"]["method"] == "dbsf" and manifest["hybrid"]["weights"] == [0.3, 0.7]
    r = run_cli("search", "scheduling", "--index", tuned, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["results"], r.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--fusion-weights", "0.3"], "BM25,DENSE"),
        (["--fusion-weights", "-1,1"], "weights"),
        (["--fusion", "borda"], "borda"),
        (["--chunk-size", "10", "--chunk-overlap", "10"], "smaller than the chunk size"),
    ],
)
def test_index_rejects_bad_relevance_options(
    tmp_path: Path, corpus: Path, args: list[str], needle: str
) -> None:
    r = run_cli("index", str(corpus), "--index", str(tmp_path / "x"), "--no-dense", *args)
    assert r.exit_code == 2 and needle in r.stderr


def test_index_without_new_manifest_keys_still_opens(tmp_path: Path, corpus: Path) -> None:
    """An index written before fusion settings existed opens with equal-weight RRF."""
    idx = tmp_path / "old"
    assert run_cli("index", str(corpus), "--index", str(idx), "--no-dense").exit_code == 0
    (live,) = [p for p in idx.iterdir() if (p / "manifest.json").exists()]
    manifest = json.loads((live / "manifest.json").read_text())
    del manifest["hybrid"]
    (live / "manifest.json").write_text(json.dumps(manifest))
    from shortlist.store.index import HybridConfig, Index

    assert Index.open(idx).hybrid == HybridConfig(method="rrf", weights=(0.5, 0.5))
