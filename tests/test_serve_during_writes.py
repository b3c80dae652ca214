"""A real server under 8 concurrent clients while 20 adds and deletes land (issue #15).

Before reader pins, the second write removed the generation the server had open and
every search answered 500; after one write the server kept returning deleted documents.
Here every answer must be a 2xx from one complete, committed generation: the documents it
returns are exactly that generation's, and a client never goes back to an older one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")

from serve_fakes import OverlapScorer, running
from shortlist.serve.app import GENERATION_HEADER, ServeConfig, create_app
from shortlist.serve.live import LiveIndex
from shortlist.store.generations import generation_number, pinned_generations
from shortlist.store.index import Index
from shortlist.types import Document

CLIENTS = 8
WRITES = 20


def _doc(name: str) -> Document:
    return Document(id=name, text=f"shared topic words about {name}")


@dataclass
class Seen:
    requests: int = 0
    non_2xx: list[str] = field(default_factory=list)
    # Per client, in order: (generation named by the response, documents it returned).
    answers: list[list[tuple[int, frozenset[str]]]] = field(default_factory=list)


def violations(seen: Seen, expected: dict[int, frozenset[str]]) -> list[str]:
    """Every answer holds exactly its generation's documents, and no client goes back."""
    out = []
    for answers in seen.answers:
        last = 0
        for gen, got in answers:
            want = expected.get(gen)
            if want is None:
                out.append(f"answered from generation {gen}, which no write committed")
            elif got != want:
                out.append(f"gen {gen}: extra {sorted(got - want)}, missing {sorted(want - got)}")
            if gen < last:
                out.append(f"went back from generation {last} to {gen}")
            last = gen
    return out


def test_serving_while_writers_add_and_delete(tmp_path: Path) -> None:
    root = tmp_path / "idx"
    docs = {f"d{i}" for i in range(30)}
    writer = Index.create(root, [_doc(d) for d in sorted(docs)], dense=False)
    # Generation number -> the documents it holds, recorded as each write commits.
    expected: dict[int, frozenset[str]] = {writer.generation: frozenset(docs)}
    live = LiveIndex(root, poll_interval_s=0.05)
    config = ServeConfig(max_documents=100, max_top_n=100)
    app = create_app(config, {"overlap": OverlapScorer()}, live)
    seen = Seen()
    lock = threading.Lock()
    done = threading.Event()

    def client(url: str) -> None:
        answers: list[tuple[int, frozenset[str]]] = []
        with lock:
            seen.answers.append(answers)
        with httpx.Client(base_url=url, timeout=30) as http:
            while not done.is_set():
                r = http.post("/v1/search", json={"query": "shared topic", "k": 100, "top_n": 100})
                with lock:
                    seen.requests += 1
                    if not r.is_success:
                        seen.non_2xx.append(f"{r.status_code} {r.text[:200]}")
                        continue
                gen = generation_number(r.headers[GENERATION_HEADER])
                assert gen is not None
                answers.append((gen, frozenset(h["doc_id"] for h in r.json()["results"])))

    with running(app) as url:
        threads = [threading.Thread(target=client, args=(url,)) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        try:
            for i in range(WRITES):
                time.sleep(0.05)
                if i % 2 == 0:
                    new = f"n{i}"
                    writer.add([_doc(new)])
                    docs.add(new)
                else:
                    gone = sorted(docs)[i % len(docs)]
                    writer.delete([gone])
                    docs.discard(gone)
                expected[writer.generation] = frozenset(docs)
            final = writer.generation
            deadline = time.monotonic() + 10
            while httpx.get(f"{url}/ready").json()["generation"]["number"] != final:
                assert time.monotonic() < deadline, "the server never moved to the last write"
                time.sleep(0.02)
            time.sleep(0.2)  # let every client get answers from the last generation
        finally:
            done.set()
            for t in threads:
                t.join(timeout=30)
        writer.close()
    problems = violations(seen, expected)
    answered = {gen for answers in seen.answers for gen, _ in answers}
    print(
        f"\nserve-during-writes: {seen.requests} requests from {CLIENTS} clients over "
        f"{WRITES} writes, {len(seen.non_2xx)} non-2xx, {len(problems)} consistency "
        f"violations, {len(answered)} generations answered"
    )
    assert seen.non_2xx == []
    assert problems == []
    assert final in answered
    assert len(answered) > 2  # clients really saw the index change under them
    assert seen.requests >= CLIENTS * 5
    assert pinned_generations(root) == set()  # every generation the server held was released


def test_issue_reproduction_serve_then_delete_twice_from_the_cli(tmp_path: Path) -> None:
    """`shortlist serve --index DIR`, then `shortlist delete ID --index DIR` twice: searches
    used to answer 500 (the served generation was deleted) and, after one delete, still
    returned the deleted document."""
    import json
    import os
    import subprocess
    import sys

    from clirun import run_cli
    from serve_fakes import free_port

    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": f"a shared line {i}"}) + "\n" for i in range(6))
    )
    idx = str(tmp_path / "idx")
    assert run_cli("index", str(corpus), "--index", idx, "--no-dense").exit_code == 0
    port = free_port()
    env = dict(os.environ)
    src = str(Path(__file__).parent.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "shortlist", "serve", "--index", idx, "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready() -> dict[str, object] | None:
        try:
            r = httpx.get(f"{url}/ready", timeout=1)
        except httpx.TransportError:
            return None
        return dict(r.json()) if r.status_code == 200 else None

    def wait_for_generation(number: int) -> None:
        deadline = time.monotonic() + 30
        while (state := ready()) is None or state["generation"] != {  # type: ignore[index]
            "name": f"gen-{number:06d}",
            "number": number,
        }:
            assert proc.poll() is None, "server exited"
            assert time.monotonic() < deadline, f"server never served generation {number}"
            time.sleep(0.05)

    def search() -> list[str]:
        r = httpx.post(f"{url}/v1/search", json={"query": "shared line", "k": 10}, timeout=10)
        assert r.status_code == 200, r.text
        return sorted(h["doc_id"] for h in r.json()["results"])

    try:
        wait_for_generation(1)
        assert search() == [f"d{i}" for i in range(6)]
        assert run_cli("delete", "d1", "--index", idx).exit_code == 0
        wait_for_generation(2)
        assert "d1" not in search()
        assert run_cli("delete", "d2", "--index", idx).exit_code == 0
        wait_for_generation(3)
        assert search() == ["d0", "d3", "d4", "d5"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        assert proc.stdout is not None
        output = proc.stdout.read().decode()
        proc.stdout.close()
    assert "Traceback" not in output
