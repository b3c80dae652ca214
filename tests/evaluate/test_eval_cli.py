"""`shortlist eval-run` and `shortlist datasets`, driven through click's runner."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from clirun import run_cli
from optional import needs_extra
from shortlist.cli import cli


def _files(tmp_path: Path) -> tuple[Path, Path]:
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 a 1\nq1 0 b 0\nq2 0 c 2\nq3 0 d 1\nq4 0 e 0\n")
    run = tmp_path / "run.trec"
    # q1: a at rank 2 (RR 0.5); q2: c at rank 1 (RR 1); q3 missing (0); q9 unjudged.
    run.write_text("q1 Q0 b 1 2.0 t\nq1 Q0 a 2 1.0 t\nq2 Q0 c 1 5.0 t\nq9 Q0 z 1 1.0 t\n")
    return qrels, run


def test_eval_run_table(tmp_path: Path) -> None:
    qrels, run = _files(tmp_path)
    result = CliRunner().invoke(
        cli, ["eval-run", "--qrels", str(qrels), "--run", str(run), "--metrics", "mrr@10,recall@1"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["metric", "mean", "95%", "CI", "n"]
    assert lines[2].startswith("mrr@10") and "0.5000" in lines[2] and lines[2].endswith("3")
    assert lines[3].startswith("recall@1") and "0.3333" in lines[3]
    assert "1 judged query(ies) have no results" in result.stderr
    assert "no relevant document" in result.stderr


def test_eval_run_json(tmp_path: Path) -> None:
    qrels, run = _files(tmp_path)
    result = CliRunner().invoke(
        cli, ["eval-run", "--qrels", str(qrels), "--run", str(run), "--metrics", "mrr@10", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    metric = payload["metrics"]["mrr@10"]
    assert metric["mean"] == 0.5 and metric["n_queries"] == 3
    assert metric["per_query"] == {"q1": 0.5, "q2": 1.0, "q3": 0.0}
    assert metric["ci95_low"] < 0.5 < metric["ci95_high"]
    assert payload["queries_missing_from_run"] == ["q3"]
    assert payload["ignored_run_queries"] == ["q9"]


def test_eval_run_ignore_identical_ids(tmp_path: Path) -> None:
    qrels = tmp_path / "q.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nx\ty\t1\n")
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"x": {"x": 9.0, "y": 1.0}}))
    args = ["eval-run", "--qrels", str(qrels), "--run", str(run), "--metrics", "mrr", "--json"]
    plain = json.loads(CliRunner().invoke(cli, args).stdout)
    dropped = json.loads(CliRunner().invoke(cli, [*args, "--ignore-identical-ids"]).stdout)
    assert plain["metrics"]["mrr"]["mean"] == 0.5
    assert dropped["metrics"]["mrr"]["mean"] == 1.0


def test_eval_run_bad_metric(tmp_path: Path) -> None:
    qrels, run = _files(tmp_path)
    result = CliRunner().invoke(
        cli, ["eval-run", "--qrels", str(qrels), "--run", str(run), "--metrics", "ndgc@10"]
    )
    assert result.exit_code != 0
    assert "unknown metric 'ndgc'" in str(result.exception)


def test_datasets_list() -> None:
    listed = CliRunner().invoke(cli, ["datasets", "list"])
    assert listed.exit_code == 0 and "lee" in listed.stdout and "stdlib-docs" in listed.stdout


@needs_extra("datasets")
def test_datasets_build(tmp_path: Path) -> None:
    runner = CliRunner()
    built = runner.invoke(cli, ["datasets", "build", "lee", "--out", str(tmp_path / "lee")])
    assert built.exit_code == 0, built.output
    assert "350 documents, 50 queries, 2450 judgements" in built.stdout
    again = runner.invoke(cli, ["datasets", "build", "lee", "--out", str(tmp_path / "lee")])
    assert again.exit_code != 0 and "--force" in str(again.exception)
    forced = runner.invoke(
        cli, ["datasets", "build", "lee", "--out", str(tmp_path / "lee"), "--force"]
    )
    assert forced.exit_code == 0


def test_datasets_build_unknown_name_lists_the_names(tmp_path: Path) -> None:
    result = run_cli("datasets", "build", "msmarco", "--out", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert "unknown dataset 'msmarco'; available: debian-faq, lee, stdlib-docs" in result.stderr


@pytest.mark.parametrize("absent", ["gensim", "shortlist_datasets"])
@pytest.mark.parametrize("command", [["datasets", "build", "lee", "--out"], ["demo", "--index"]])
def test_without_the_datasets_extra_the_commands_name_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, absent: str, command: list[str]
) -> None:
    monkeypatch.setitem(sys.modules, absent, None)  # import raises ImportError
    result = run_cli(*command, str(tmp_path / "out"))
    assert result.exit_code == 6
    assert "pip install -e '.[datasets]'" in result.stderr
    assert not (tmp_path / "out").exists()
