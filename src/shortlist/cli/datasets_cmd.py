"""``shortlist datasets``: list and build the evaluation collections.

The recipes live in the `shortlist_datasets` package, outside the runtime, and are
imported only when one of these commands runs; a missing dependency is reported with
the extra that installs it (``pip install -e '.[datasets]'``).
"""

from __future__ import annotations

import click

from shortlist._optional import require

EXTRA = "datasets"


def _require_recipes() -> None:
    require("shortlist_datasets", EXTRA, "building evaluation collections")


@click.group("datasets")
def datasets_group() -> None:
    """Evaluation collections made from real text, written as BEIR folders."""


@datasets_group.command("list")
def list_cmd() -> None:
    """Show the collections that `datasets build` can make."""
    _require_recipes()
    from shortlist_datasets import DATASETS

    width = max(len(name) for name in DATASETS)
    for name in sorted(DATASETS):
        click.echo(f"{name.ljust(width)}  {DATASETS[name].summary}")


@datasets_group.command("build")
@click.argument("name")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write (BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv).",
)
@click.option("--force", is_flag=True, help="Replace the folder if it exists and is not empty.")
def build_cmd(name: str, out: str, force: bool) -> None:
    """Build collection NAME (see `shortlist datasets list`) into the folder --out."""
    _require_recipes()
    from shortlist_datasets import build_dataset

    stats = build_dataset(name, out, overwrite=force)
    grades = ", ".join(f"grade {g}: {n}" for g, n in stats.grades.items())
    splits = ""
    if set(stats.split_queries) != {"test"}:
        splits = " [" + ", ".join(f"{s}: {n}" for s, n in stats.split_queries.items()) + "]"
    click.echo(
        f"wrote {stats.path}: {stats.n_documents} documents, {stats.n_queries} queries{splits}, "
        f"{stats.n_judgements} judgements ({grades}); see {stats.path / 'README.md'}"
    )
