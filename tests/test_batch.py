"""`shortlist rerank-batch` and `shortlist eval` in one process and on Ray (`--ray`).

The Ray tests start a private Ray on loopback (the command line's `--ray` with no address)
in a subprocess with its own RAY_TMPDIR, compare the run files byte for byte with the
single-process ones, and check that no Ray process outlives the command. Ray takes
~30 s to start on a busy 2-core machine, so they are marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clirun import run_cli
from models import build_tiny_cross_encoder
from optional import needs_extra
from shortlist.batch import BatchJob, QueryWorker, RayOptions, rank_queries
from shortlist.evaluate.beir import load_beir
from shortlist.evaluate.trec import read_trec_run
from shortlist.store.index import Index
from tiny_beir import write_tiny_beir

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("batch")
    data = write_tiny_beir(root / "ds")
    index_dir = root / "index"
    Index.create(index_dir, load_beir(data).corpus, encoder="hashing:32").close()
    return {"root": root, "data": data, "index": index_dir}


@pytest.fixture(scope="module")
def model(setup: dict[str, Path]) -> Path:
    """A tiny random-weight cross-encoder (a real torch model, so the Ray tests check that
    separate processes score bit-identically)."""
    return build_tiny_cross_encoder(setup["root"] / "ce", "bert")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `shortlist` in a fresh interpreter (its own sys.modules and processes)."""
    full = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "shortlist", *args], env=full, capture_output=True, text=True,
        timeout=600,
    )


def test_rerank_batch_writes_the_top_n_documents_of_each_query(setup: dict[str, Path]) -> None:
    out = setup["root"] / "batch.trec"
    r = run_cli(
        "rerank-batch", str(setup["data"] / "queries.jsonl"), "--index", str(setup["index"]),
        "--rerank", "bi-encoder:hashing:32", "-k", "8", "--top-n", "3",
        "--out", str(out), "--threads", "1",
    )
    assert r.exit_code == 0, r.stderr
    run = read_trec_run(out)
    text = (setup["data"] / "queries.jsonl").read_text()
    queries = [json.loads(line)["_id"] for line in text.splitlines()]
    assert sorted(run) == sorted(queries)
    assert all(0 < len(docs) <= 3 for docs in run.values())


def test_rank_queries_equals_the_worker_one_query_at_a_time(setup: dict[str, Path]) -> None:
    job = BatchJob(str(setup["index"]), "bm25+bi-encoder:hashing:32", k=6, top_n=4)
    queries = load_beir(setup["data"]).queries
    batch = rank_queries(job, queries)
    worker = QueryWorker(job)
    try:
        for outcome in batch:
            alone = worker.rank(outcome.qid, queries[outcome.qid])
            assert (alone.first, alone.final, alone.scores) == (
                outcome.first, outcome.final, outcome.scores)
    finally:
        worker.close()


def test_batch_options_are_checked() -> None:
    with pytest.raises(ValueError, match="k must be"):
        BatchJob("x", "bm25", k=0)
    with pytest.raises(ValueError, match="first_k"):
        BatchJob("x", "bm25", k=10, first_k=5)
    with pytest.raises(ValueError, match="actors"):
        RayOptions(actors=0)


def test_the_shortlist_error_behind_a_ray_failure_is_found() -> None:
    from shortlist.batch import shortlist_cause
    from shortlist.errors import ModelLoadError

    class RayLike(Exception):  # Ray's task errors carry the original as `.cause`
        def __init__(self, cause: BaseException) -> None:
            super().__init__("UDF failed")
            self.cause = cause

    original = ModelLoadError("cannot load model 'x'")
    try:
        try:
            raise RayLike(original)
        except RayLike as inner:
            raise RuntimeError("execution failed") from inner
    except RuntimeError as outer:
        assert shortlist_cause(outer) is original
    assert shortlist_cause(RuntimeError("plain")) is None


def test_nothing_imports_ray_without_the_flag(setup: dict[str, Path]) -> None:
    script = (
        "import sys\n"
        "from shortlist.cli import main\n"
        "for args in sys.argv[1:]:\n"
        "    try:\n"
        "        main(args.split('|'))\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "print('ray' in sys.modules)\n"
    )
    out = setup["root"] / "noray.trec"
    batch = "|".join(["rerank-batch", str(setup["data"] / "queries.jsonl"), "--index",
                      str(setup["index"]), "--rerank", "bi-encoder:hashing:32", "-k", "5",
                      "--out", str(out)])
    evaluate = "|".join(["eval", str(setup["data"]), "--pipeline", "bm25", "-k", "5",
                         "--model", "hashing:32", "--cache-dir", str(setup["root"] / "c0")])
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", script, batch, evaluate], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_ray_is_named_when_it_is_missing(setup: dict[str, Path], monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    import shortlist._optional as optional

    real = optional.importlib.import_module

    def no_ray(name: str, *args: object) -> object:
        if name.split(".")[0] == "ray":
            raise ImportError("No module named 'ray'")
        return real(name, *args)

    monkeypatch.setattr(optional.importlib, "import_module", no_ray)
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # what --ray sets
    r = run_cli("rerank-batch", str(setup["data"] / "queries.jsonl"), "--index",
                str(setup["index"]), "--out", str(setup["root"] / "x.trec"), "--ray")
    assert r.exit_code != 0
    assert "pip install -e '.[ray]'" in r.stderr


# ---- on Ray ----------------------------------------------------------------------------------
def _ray_processes(tmpdir: Path) -> list[str]:
    """Processes whose command line names this test's Ray temp dir (raylet, GCS, workers)."""
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if str(tmpdir) in line and "ps -eo" not in line]


def _gone(tmpdir: Path, within_s: float = 30.0) -> list[str]:
    deadline = time.monotonic() + within_s
    while (left := _ray_processes(tmpdir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


@pytest.mark.slow
@needs_extra("ray")
def test_rerank_batch_on_ray_writes_the_same_run_byte_for_byte(
    setup: dict[str, Path], model: Path
) -> None:
    queries = str(setup["data"] / "queries.jsonl")
    common = ["--index", str(setup["index"]), "--rerank", f"cross-encoder:{model}",
              "-k", "8", "--top-n", "3", "--threads", "1"]
    single, on_ray = setup["root"] / "single.trec", setup["root"] / "ray.trec"
    assert _cli("rerank-batch", queries, *common, "--out", str(single)).returncode == 0
    tmpdir = Path(f"/tmp/rt{os.getpid()}")  # short: Ray's socket paths must fit 107 bytes
    done = _cli("rerank-batch", queries, *common, "--out", str(on_ray), "--ray",
                "--actors", "2", "--batch-size", "4", env={"RAY_TMPDIR": str(tmpdir)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on Ray (2 actors)" in done.stderr
    assert on_ray.read_bytes() == single.read_bytes()
    assert _gone(tmpdir) == []


@pytest.mark.slow
@needs_extra("ray")
def test_eval_on_ray_saves_the_same_runs(setup: dict[str, Path], model: Path) -> None:
    data = str(setup["data"])
    args = ["--pipeline", "bm25", "--pipeline", f"ce=hybrid+cross-encoder:{model}",
            "-k", "5,8", "--model", "hashing:32", "--threads", "1"]
    local, remote = setup["root"] / "eval-local", setup["root"] / "eval-ray"
    assert _cli("eval", data, *args, "--cache-dir", str(local)).returncode == 0
    tmpdir = Path(f"/tmp/re{os.getpid()}")
    done = _cli("eval", data, *args, "--cache-dir", str(remote), "--ray",
                env={"RAY_TMPDIR": str(tmpdir)})
    assert done.returncode == 0, done.stderr[-3000:]
    # A saved run's file name ends in a key of its index's manifest, which differs between
    # the two cache folders' indexes; compare by pipeline and k.
    def runs(folder: Path) -> dict[str, bytes]:
        return {p.name.split(".")[0]: p.read_bytes() for p in (folder / "runs").glob("*.trec")}

    assert len(runs(local)) == 4
    assert runs(remote) == runs(local)
    assert _gone(tmpdir) == []
