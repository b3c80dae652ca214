"""Every code block in README.md and docs/*.md runs, as written, in the tests.

Convention (summed up in README.md, "Development"):

- A fenced block tagged `python`, `bash`, `sh` or `toml` claims to run: python blocks
  are executed, shell blocks run under `bash -euo pipefail`, toml blocks are loaded as a
  pipeline file (`PipelineConfig`). Each block runs on its own, in a fresh copy of the
  sandbox below, offline (`HF_HUB_OFFLINE=1`), with `shortlist` on the PATH meaning this
  checkout's command line.
- A block that cannot run here (it installs from the network, starts a server that runs
  until stopped, trains for minutes, or is a synopsis with placeholders) is preceded by
  `<!-- illustrative: REASON -->` on the line just above its fence. The reason is
  required, and the set is listed in `ILLUSTRATIVE` below so that adding one is a
  reviewed change to this file.
- A block tagged `text` or untagged is output or a listing; one that looks like a command
  (starts with `shortlist`, `python`, `pip` or `$`) must be tagged and run, or be marked.
- docs/RESULTS.md is a record of measurements (commands run on the collections under
  /work/data for minutes or hours); its first line marks the whole file
  `<!-- illustrative-file: REASON -->`, and it is the only file so marked.

The sandbox a block starts in holds what a reader is assumed to have: `corpus.jsonl`,
`new.jsonl` and `more.jsonl` (the Lee news documents of tests/data/lee5.jsonl, with
`lang` metadata), `docs/` (this repository's docs/training.md), `shortlist.toml` (a
pipeline file), `models/my-reranker` (a cross-encoder folder, here a tiny random-weight
one) and `my-model` (a sentence-transformers folder, tiny and random too). Real models
where a block names one: `default` / `bi-encoder` is all-MiniLM-L6-v2, shipped offline.
Shell blocks run with HOME set to their sandbox, so a dotfile they write stays there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import shortlist

REPO = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNS = {"python", "bash", "sh", "toml"}
TEXT = {"", "text", "console-output", "json"}
ILLUSTRATIVE_MARK = re.compile(r"<!--\s*illustrative:\s*(.*?)\s*-->")
FILE_MARK = re.compile(r"<!--\s*illustrative-file:\s*(.*?)\s*-->")
COMMAND_LIKE = re.compile(r"^\s*(\$ |shortlist\b|python3?\b|pip\b)")

ILLUSTRATIVE = {
    ("README.md", 'python3 -m venv .venv && . .venv/bin/activate && pip install torch'),
    ("README.md", "# index JSONL (id, text, title?, metadata?)"),
    ("README.md", "shortlist serve --rerank cross-encoder:"),
    ("README.md", "from shortlist.client import Client"),
    ("README.md", "vllm serve Qwen/Qwen2.5-1.5B-Instruct"),
    ("README.md", "# vLLM\nvllm serve Qwen/Qwen2.5-7B-Instruct"),
    ("README.md", "pip install -e '.[milvus,ray]'"),
    ("scaling.md", "shortlist rerank-batch queries.jsonl --index DIR"),
    ("training.md", "shortlist train-reranker data/my-beir"),
}
"""(file, how the block starts) of every block marked illustrative (the two setup
commands start alike): keep this set small."""
ILLUSTRATIVE_FILES = {"RESULTS.md"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    illustrative: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def first_line(self) -> str:
        return self.code.splitlines()[0] if self.code else ""



FENCE = re.compile(r"^(```+|~~~+)(.*)$")


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a markdown file, with the illustrative mark above each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, info = opening.group(1), opening.group(2).strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].startswith(fence):
            body.append(lines[j])
            j += 1
        above = lines[i - 1] if i > 0 else ""
        mark = ILLUSTRATIVE_MARK.search(above)
        lang = info.split()[0].lower() if info else ""
        out.append(Block(path, i + 1, lang, "\n".join(body) + "\n", mark and mark.group(1)))
        i = j + 1
    return out


def file_mark(path: Path) -> str | None:
    first = path.read_text(encoding="utf-8").splitlines()[:1]
    mark = FILE_MARK.search(first[0]) if first else None
    return mark.group(1) if mark else None


def all_blocks() -> list[Block]:
    return [b for path in DOC_FILES for b in blocks(path)]


def runnable() -> list[Block]:
    return [
        b
        for b in all_blocks()
        if b.lang in RUNS and b.illustrative is None and file_mark(b.path) is None
    ]


def test_the_convention_holds() -> None:
    problems = []
    marked = set()
    for b in all_blocks():
        if b.illustrative is not None:
            marked.update(
                (name, start)
                for name, start in ILLUSTRATIVE
                if name == b.path.name and b.code.startswith(start)
            )
            if not any(name == b.path.name and b.code.startswith(s) for name, s in ILLUSTRATIVE):
                problems.append(f"{b.where}: marked illustrative but not listed in ILLUSTRATIVE")
            if len(b.illustrative) < 15:
                problems.append(f"{b.where}: an illustrative mark needs a reason")
        elif b.lang not in RUNS | TEXT:
            problems.append(f"{b.where}: unknown block language {b.lang!r}")
        elif b.lang in TEXT and file_mark(b.path) is None and COMMAND_LIKE.match(b.first_line):
            problems.append(f"{b.where}: looks like a command; tag it and let it run, or mark it")
    assert problems == []
    assert marked == ILLUSTRATIVE
    files = {p.name for p in DOC_FILES if file_mark(p) is not None}
    assert files == ILLUSTRATIVE_FILES
    assert all(len(file_mark(REPO / "docs" / f) or "") >= 15 for f in files)
    assert len(runnable()) >= 5
    # The two setup commands start alike and share one ILLUSTRATIVE entry.
    assert sum(b.illustrative is not None for b in all_blocks()) == len(ILLUSTRATIVE) + 1


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models import build_tiny_cross_encoder, build_tiny_sentence_transformer

    root = tmp_path_factory.mktemp("docs-sandbox")
    docs = [
        json.loads(line)
        for line in (REPO / "tests" / "data" / "lee5.jsonl").read_text().splitlines()
    ]
    for doc in docs:
        doc["metadata"] = {**doc.get("metadata", {}), "lang": "en"}

    def write(name: str, rows: list[dict[str, object]]) -> None:
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))

    write("corpus.jsonl", docs[:3])
    write("new.jsonl", docs[3:4])
    write("more.jsonl", docs[4:])
    (root / "docs").mkdir()
    shutil.copy(REPO / "docs" / "training.md", root / "docs" / "training.md")
    (root / "shortlist.toml").write_text(
        'version = 1\nk = 20\ntop_n = 5\nreranker = "none"\n\n[first_stage]\nmode = "hybrid"\n'
    )
    build_tiny_cross_encoder(root / "models" / "my-reranker", "bert")
    build_tiny_sentence_transformer(root / "my-model")
    return root


@pytest.fixture(scope="module")
def shortlist_on_path(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose `shortlist` is this checkout's CLI, offline."""
    bin_dir = tmp_path_factory.mktemp("docs-bin")
    script = bin_dir / "shortlist"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m shortlist "$@"\n')
    script.chmod(0o755)
    src = str(Path(shortlist.__file__).resolve().parents[1])
    env = dict(os.environ)
    home = Path.home()
    env.setdefault("XDG_CACHE_HOME", str(home / ".cache"))  # keep exported-model caches
    env.setdefault("HF_HOME", str(home / ".cache" / "huggingface"))
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
    )
    return env


@pytest.mark.parametrize("block", runnable(), ids=lambda b: b.where)
def test_block_runs(
    block: Block,
    sandbox: Path,
    shortlist_on_path: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = tmp_path / "sandbox"
    shutil.copytree(sandbox, here)
    if block.lang == "toml":
        from shortlist.pipeline_file import PipelineConfig

        (here / "block.toml").write_text(block.code)
        PipelineConfig.load(here / "block.toml")
    elif block.lang == "python":
        monkeypatch.chdir(here)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
        try:
            exec(compile(block.code, block.where, "exec"), {"__name__": "__docs__"})
        except ModuleNotFoundError as exc:
            # A third-party package of an extra (dev installs them all); never shortlist.
            if exc.name is None or exc.name.split(".")[0] == "shortlist":
                raise
            pytest.skip(f"{block.where} needs {exc.name}: pip install -e '.[dev]'")
    else:
        # HOME is the sandbox: a block may write dotfiles (shell completion) there.
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.code],
            cwd=here,
            env={**shortlist_on_path, "HOME": str(here)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{block.where} failed:\n{done.stdout}\n{done.stderr}"
