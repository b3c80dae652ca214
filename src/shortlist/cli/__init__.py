"""The `shortlist` command line.

Commands live in small modules and are imported only when invoked, so `shortlist
--help` stays fast. Errors are mapped here, at the edge: a `ShortlistError` becomes
one line on stderr and its exit code, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from shortlist.errors import ShortlistError

# command name -> "module:attribute"; each module owns one concept.
COMMANDS: dict[str, str] = {
    "demo": "shortlist.cli.demo_cmd:demo",
    "index": "shortlist.cli.index_cmds:index_cmd",
    "add": "shortlist.cli.index_cmds:add_cmd",
    "delete": "shortlist.cli.index_cmds:delete_cmd",
    "search": "shortlist.cli.search_cmd:search_cmd",
    "ask": "shortlist.cli.ask_cmd:ask_cmd",
    "rerank": "shortlist.cli.rerank_cmd:rerank_cmd",
    "rerank-batch": "shortlist.cli.batch_cmd:rerank_batch_cmd",
    "eval": "shortlist.cli.eval_cmd:eval_cmd",
    "eval-run": "shortlist.cli.eval_cmds:eval_run_cmd",
    "datasets": "shortlist.cli.datasets_cmd:datasets_group",
    "serve": "shortlist.cli.serve_cmd:serve_cmd",
    "ui": "shortlist.cli.serve_cmd:ui_cmd",
    "train-reranker": "shortlist.cli.train_cmd:train_reranker_cmd",
    "tune": "shortlist.cli.tune_cmd:tune_cmd",
    "check": "shortlist.cli.health_cmds:check_cmd",
    "repair": "shortlist.cli.health_cmds:repair_cmd",
}


HELP: dict[str, str] = {
    "demo": "Index the Lee news corpus and answer a few queries end to end.",
    "index": "Build an index from JSONL, BEIR, CSV or folders of text.",
    "add": "Add documents to an index incrementally.",
    "delete": "Delete documents or passages from an index.",
    "search": "Search an index, optionally rerank, print JSON/text/prompt.",
    "ask": "Answer a question from the index with an LLM, with checked citations.",
    "rerank": "Rerank documents from a JSONL file with any reranker spec.",
    "rerank-batch": "Retrieve and rerank a file of queries into a TREC run (--ray: on Ray).",
    "eval": "Compare pipelines on a dataset: quality, latency, cost.",
    "eval-run": "Score an existing run file against qrels.",
    "datasets": "Build real evaluation collections (BEIR layout).",
    "serve": "Serve Cohere/TEI-compatible rerank and search over HTTP.",
    "ui": "Open the web playground on an index (same app as serve).",
    "tune": "Choose fusion, weights, BM25 k1/b and K on your queries (cross-validated).",
    "train-reranker": "Fine-tune a cross-encoder on your pairs with mined hard negatives.",
    "check": "Verify an index's files (sizes, checksums, readability).",
    "repair": "Make the newest intact generation of a damaged index live again.",
}


class LazyGroup(click.Group):
    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from HELP so `--help` does not import every command.
        with formatter.section("Commands"):
            formatter.write_dl([(name, HELP.get(name, "")) for name in self.list_commands(ctx)])

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="shortlist")
def cli() -> None:
    """shortlist: index, retrieve, rerank, evaluate and serve."""


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: run the CLI, mapping shortlist errors to exit codes."""
    if not sys.stderr.isatty():
        # Piped or logged: keep stderr free of model-loading progress bars (the library's
        # own bars already check for a terminal). Set here, at the edge, never on import.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        # The name is fixed so that `python -m shortlist` reads the same completion
        # variable (_SHORTLIST_COMPLETE) and prints the same usage as the script.
        return cli.main(args=argv, prog_name="shortlist", standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, EOFError):
            # click wraps any EOFError a command lets escape as Abort ("Aborted.", 130),
            # which hides a bug: show the real error instead.
            raise exc.__cause__ from None
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except ShortlistError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
