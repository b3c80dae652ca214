"""End to end on real documents: index a folder mixing HTML, PDF, DOCX and Markdown,
search it, cite page and section; keep it in step with `add --sync`; bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clirun import run_cli
from optional import needs_extra
from shortlist.retrieve.encoders import HashingEncoder

pytestmark = needs_extra("documents")

DOCS = Path(__file__).parent / "data" / "documents"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "docs"
    shutil.copytree(DOCS / "mixed", target)
    return target


def search(index: str, query: str, fmt: str) -> dict[str, Any]:
    r = run_cli(
        "search", query, "--index", index, "--mode", "bm25", "-k", "1",
        "--filter", f"format={fmt}", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    result: dict[str, Any] = json.loads(r.stdout)["results"][0]
    return result


def test_mixed_folder_is_indexed_searched_and_cited(folder: Path, tmp_path: Path) -> None:
    index = str(tmp_path / "idx")
    r = run_cli("index", str(folder), "--index", index, "--model", "hashing:32")
    assert r.exit_code == 0, r.stderr
    assert "note: " in r.stderr and "page 3 has no text layer" in r.stderr

    pdf = search(index, "dupload upload the package to the archive", "pdf")
    assert pdf["citation"] == "maint-guide-excerpt.pdf p. 2"
    assert pdf["metadata"]["page"] == 2 and "dupload" in pdf["text"]

    html = search(index, "dupload.conf manual page default_host", "html")
    assert html["citation"] == (
        "upload.html § Chapter 9. Uploading the package › 9.1. Uploading to the Debian archive"
    )
    docx = search(index, "one-on-one help private email experienced developer", "docx")
    assert docx["citation"] == (
        "new-maintainer.docx § Applying to Become a Member › Debian mentors and sponsors"
    )
    md = search(index, "editable mode development installation", "markdown")
    assert md["citation"] == (
        "local-project-installs.md § Local project installs › Editable installs"
    )

    for hit in (pdf, html, docx, md):
        meta = hit["metadata"]
        source = (folder / meta["source"]).read_bytes()
        assert meta["char_end"] > meta["char_start"] >= 0 and source

    # Offsets point into the extracted text; for Markdown that is the file itself.
    text = (folder / "local-project-installs.md").read_text(encoding="utf-8")
    assert text[md["metadata"]["char_start"] : md["metadata"]["char_end"]] == md["text"]

    prompt = run_cli(
        "search", "dupload", "--index", index, "--mode", "bm25", "--format", "prompt",
        "--filter", "format=pdf", "-k", "1",
    )  # fmt: skip
    assert prompt.exit_code == 0, prompt.stderr
    assert "[1] (maint-guide-excerpt.pdf p. 2)\n" in prompt.stdout
    text_out = run_cli("search", "dupload", "--index", index, "--mode", "bm25",
                       "--filter", "format=pdf", "-k", "1")  # fmt: skip
    assert "[maint-guide-excerpt.pdf p. 2]" in text_out.stdout


def test_bad_files_one_line_each_and_skip_bad_indexes_the_rest(
    folder: Path, tmp_path: Path
) -> None:
    for bad in (DOCS / "bad").iterdir():
        shutil.copy(bad, folder / bad.name)
    index = str(tmp_path / "idx")
    r = run_cli("index", str(folder), "--index", index, "--no-dense")
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "empty.txt" in r.stderr

    r = run_cli("index", str(folder), "--index", index, "--no-dense", "--skip-bad", "--json")
    assert r.exit_code == 0, r.stderr
    skipped = [line for line in r.stderr.splitlines() if line.startswith("skipped ")]
    names = sorted(p.name for p in (DOCS / "bad").iterdir())
    assert len(skipped) == len(names) + 1  # one line per file, then the count
    for name in names:
        assert sum(name in line for line in skipped) == 1
    summary = json.loads(r.stdout)
    assert summary["documents"] == 4 and summary["skipped"] == len(names)


class CountingEncoder(HashingEncoder):
    """The CLI's `hashing:32` encoder, counting the texts it embeds."""

    def __init__(self, texts: list[str]) -> None:
        super().__init__(dim=32)
        self.texts = texts

    def encode(self, texts: Any, **kw: Any) -> np.ndarray:
        self.texts.extend(texts)
        return super().encode(texts, **kw)


def sync(index: str, folder: Path) -> dict[str, Any]:
    r = run_cli("add", str(folder), "--index", index, "--sync", "--json")
    assert r.exit_code == 0, r.stderr
    result: dict[str, Any] = json.loads(r.stdout)
    return result


def test_sync_re_encodes_only_what_changed(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shortlist.store.index as index_module

    encoded: list[str] = []
    monkeypatch.setattr(index_module, "_load_encoder", lambda *a, **k: CountingEncoder(encoded))
    index = str(tmp_path / "idx")
    assert run_cli("index", str(folder), "--index", index, "--model", "hashing:32").exit_code == 0
    assert encoded

    encoded.clear()
    before = (Path(index) / "CURRENT").read_text()
    assert sync(index, folder) | {"seconds": 0} == {
        "index": index, "folder": str(folder), "added": 0, "changed": 0, "removed": 0,
        "unchanged": 4, "failed": 0, "added_passages": 0, "documents": 4,
        "passages": sync(index, folder)["passages"], "seconds": 0, "skipped": 0,
    }  # fmt: skip
    assert encoded == []  # an unchanged folder encodes nothing
    generation = (Path(index) / "CURRENT").read_text()
    assert generation == before  # and writes no new generation

    md = folder / "local-project-installs.md"
    md.write_text(md.read_text(encoding="utf-8") + "\n## Uninstalling\n\nRun pip uninstall.\n")
    (folder / "upload.html").unlink()
    shutil.copy(DOCS / "bad" / "latin1-undeclared.html", folder / "later.html")
    (folder / "later.html").write_bytes(
        (folder / "later.html").read_bytes().replace(b"<head>", b'<head><meta charset="latin1">')
    )
    report = sync(index, folder)
    assert (report["added"], report["changed"], report["removed"], report["unchanged"]) == (
        1, 1, 1, 2,
    )  # fmt: skip
    assert (Path(index) / "CURRENT").read_text() != generation
    # Only the passages of the changed and the added file were encoded.
    assert len(encoded) == report["added_passages"] > 0
    titles = ("Local project installs\n", "Chapter 1. Überblick\n")
    assert all(t.startswith(titles) for t in encoded), [t[:40] for t in encoded]
    r = run_cli("search", "pip uninstall", "--index", index, "--mode", "bm25", "--json")
    hits = json.loads(r.stdout)["results"]
    assert hits[0]["citation"] == (
        "local-project-installs.md § Local project installs › Uninstalling"
    )
    assert not any(h["doc_id"] == "upload.html" for h in hits)
    ids = {h["doc_id"] for h in json.loads(
        run_cli("search", "Paket", "--index", index, "--mode", "bm25", "--json").stdout
    )["results"]}  # fmt: skip
    assert "later.html" in ids

    encoded.clear()
    report = sync(index, folder)
    assert (report["added"], report["changed"], report["removed"]) == (0, 0, 0)
    assert encoded == []


def test_sync_keeps_the_old_version_of_a_file_that_became_unreadable(
    folder: Path, tmp_path: Path
) -> None:
    index = str(tmp_path / "idx")
    assert run_cli("index", str(folder), "--index", index, "--no-dense").exit_code == 0
    (folder / "new-maintainer.docx").write_bytes((DOCS / "bad" / "not-really.docx").read_bytes())
    r = run_cli("add", str(folder), "--index", index, "--sync")
    assert r.exit_code == 2 and "not a Word .docx file" in r.stderr
    r = run_cli("add", str(folder), "--index", index, "--sync", "--skip-bad", "--json")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert (report["changed"], report["failed"], report["unchanged"]) == (0, 1, 3)
    assert "skipped " in r.stderr and "new-maintainer.docx" in r.stderr
    hits = json.loads(
        run_cli("search", "debian-mentors", "--index", index, "--mode", "bm25", "--json").stdout
    )["results"]
    assert any(h["doc_id"] == "new-maintainer.docx" for h in hits)


def test_sync_needs_one_folder(folder: Path, tmp_path: Path) -> None:
    index = str(tmp_path / "idx")
    assert run_cli("index", str(folder), "--index", index, "--no-dense").exit_code == 0
    r = run_cli("add", str(folder / "upload.html"), "--index", index, "--sync")
    assert r.exit_code == 2 and "pass a folder" in r.stderr


@needs_extra("serve")
def test_the_server_cites_page_and_section(folder: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from shortlist.corpus.readers import read_corpus
    from shortlist.serve.app import ServeConfig, create_app
    from shortlist.store.index import Index

    index = Index.create(tmp_path / "idx", read_corpus([folder], on_note=[].append), dense=False)
    with TestClient(create_app(ServeConfig(), {}, index)) as client:
        r = client.post(
            "/v1/search",
            json={"query": "dupload.conf manual page default_host", "top_n": 1,
                  "rerank": False, "filter": {"format": "html"}},
        )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["citation"] == (
        "upload.html § Chapter 9. Uploading the package › 9.1. Uploading to the Debian archive"
    )
