"""`--threads` (shortlist.threads) and stage progress (shortlist.progress), through the CLI."""

from __future__ import annotations

import io
import json
import sys
import types
from pathlib import Path
from typing import Any

import click.testing
import pytest

from clirun import run_cli
from shortlist.cli import COMMANDS, cli
from shortlist.progress import BarProgress, LineProgress, NoProgress, progress_for
from shortlist.threads import THREAD_ENV_VARS, apply_threads, default_threads, physical_cores

# --- threads ---------------------------------------------------------------------------------


def _topology(root: Path, cpu: int, package: int, core: int) -> None:
    topo = root / f"cpu{cpu}" / "topology"
    topo.mkdir(parents=True)
    (topo / "physical_package_id").write_text(f"{package}\n")
    (topo / "core_id").write_text(f"{core}\n")


def test_physical_cores_count_smt_siblings_once(tmp_path: Path) -> None:
    for cpu, (package, core) in enumerate([(0, 0), (0, 1), (0, 0), (0, 1), (1, 0)]):
        _topology(tmp_path, cpu, package, core)
    assert physical_cores([0, 1, 2, 3, 4], tmp_path) == 3
    assert physical_cores([0, 2], tmp_path) == 1  # two siblings of one core
    assert physical_cores([0, 7], tmp_path) == 2  # unreadable topology: count logical CPUs


def test_default_threads_honours_omp_num_threads() -> None:
    assert default_threads({"OMP_NUM_THREADS": "3"}) == 3
    assert default_threads({"OMP_NUM_THREADS": "0"}) >= 1
    assert default_threads({}) >= 1


def test_apply_threads_sets_environment_and_a_loaded_torch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    fake_torch = types.SimpleNamespace(set_num_threads=calls.append)
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    env: dict[str, str] = {}
    apply_threads(3, env)
    assert env == {**{name: "3" for name in THREAD_ENV_VARS}, "OMP_WAIT_POLICY": "PASSIVE"}
    chosen = {"OMP_WAIT_POLICY": "ACTIVE"}
    apply_threads(2, chosen)
    assert chosen["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice stands
    assert calls == [3, 2]
    with pytest.raises(ValueError, match="--threads must be >= 1"):
        apply_threads(0, env)


THREADED = ("index", "add", "search", "eval", "serve", "rerank", "rerank-batch", "demo")


@pytest.mark.parametrize("name", THREADED)
def test_model_commands_take_threads(name: str) -> None:
    import click

    command = cli.get_command(click.Context(cli), name)
    assert command is not None and name in COMMANDS
    options = {opt for p in command.params for opt in getattr(p, "opts", [])}
    assert "--threads" in options


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import shortlist.threads

    calls: list[int] = []
    monkeypatch.setattr(shortlist.threads, "apply_threads", calls.append)
    return calls


def _corpus(tmp_path: Path, n: int = 6) -> Path:
    path = tmp_path / "c.jsonl"
    rows = [{"id": f"d{i}", "text": f"passage {i} about topic {i % 3} and more"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_threads_reach_the_runtimes_and_the_index(
    tmp_path: Path, recorded: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shortlist.store.index import Index

    src = _corpus(tmp_path)
    ix = str(tmp_path / "ix")
    built = run_cli("index", str(src), "--index", ix, "--model", "hashing", "--threads", "3")
    assert built.exit_code == 0, built.stderr
    seen: list[int | None] = []
    real_open = Index.open.__func__  # type: ignore[attr-defined]

    def spy(cls: Any, path: Any, **kwargs: Any) -> Index:
        seen.append(kwargs.get("num_threads"))
        index: Index = real_open(cls, path, **kwargs)
        return index

    monkeypatch.setattr(Index, "open", classmethod(spy))
    result = run_cli("search", "topic", "--index", ix, "--threads", "2", "--json")
    assert result.exit_code == 0, result.stderr
    assert recorded == [3, 2]
    assert seen == [2]
    # Without --threads the default applies (still set at the edge, never left to runtimes).
    assert run_cli("search", "topic", "--index", ix).exit_code == 0
    assert len(recorded) == 3 and recorded[2] >= 1


# --- progress ----------------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_for_picks_bars_for_terminals_only() -> None:
    assert isinstance(progress_for(_Tty()), BarProgress)
    assert isinstance(progress_for(io.StringIO()), LineProgress)
    assert isinstance(progress_for(None), NoProgress)


def test_line_progress_writes_one_line_per_stage() -> None:
    stream = io.StringIO()
    with LineProgress(stream).stage("encode", 4, "passages") as stage:
        stage.advance(3)
        stage.advance()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("encode: 4 passages in ") and "passages/s" in lines[0]


def test_index_json_mode_keeps_stdout_clean_and_logs_stages(tmp_path: Path) -> None:
    ix = str(tmp_path / "ix")
    result = run_cli("index", str(_corpus(tmp_path)), "--index", ix, "--model", "hashing", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    assert summary["documents"] == 6 and summary["passages"] == 6
    stages = [line.split(":")[0] for line in result.stderr.splitlines()]
    assert stages == ["chunk", "bm25", "encode", "write"]
    assert "encode: 6 passages in" in result.stderr

    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"id": "x", "text": "one more passage"}) + "\n", encoding="utf-8")
    added = run_cli("add", str(more), "--index", ix, "--json")
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout)["added_passages"] == 1
    assert [line.split(":")[0] for line in added.stderr.splitlines()] == [
        "chunk",
        "bm25",
        "encode",
        "write",
    ]


def test_index_on_a_terminal_draws_bars_with_rate_and_eta(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True)
    ix = str(tmp_path / "ix")
    result = run_cli("index", str(_corpus(tmp_path)), "--index", ix, "--model", "hashing", "--json")
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)
    assert "encode: 100%" in result.stderr
    assert "6/6 [" in result.stderr and "passages/s]" in result.stderr  # elapsed<ETA, rate


def test_eval_reports_stages_on_stderr(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    (data / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "text": f"document {i} on subject {i}"} for i in range(5)]
    (data / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [{"_id": f"q{i}", "text": f"subject {i}"} for i in range(3)]
    (data / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (data / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(3))
    )
    result = run_cli("eval", str(data), "--pipeline", "bm25", "-k", "5", "--model", "hashing")
    assert result.exit_code == 0, result.stderr
    assert "encode:" not in result.stdout and "search bm25" not in result.stdout
    assert "search bm25 k=5: 3 queries in" in result.stderr
    assert "chunk: 5 documents in" in result.stderr
