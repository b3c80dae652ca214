"""`shortlist check` and `shortlist repair`: report damage in an index folder, and go
back to the newest intact generation."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from shortlist.cli._common import echo_json

if TYPE_CHECKING:
    from shortlist.store.health import CheckReport

_dir = click.argument("index_dir", metavar="DIR", type=click.Path())
_json = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")


@click.command("check")
@_dir
@_json
def check_cmd(index_dir: str, as_json: bool) -> None:
    """Verify every file of the index in DIR: sizes, checksums, readability.

    Exits 0 when the live generation is intact, 3 when it is damaged.
    """
    from shortlist.store.health import check_index

    report = check_index(index_dir)
    if as_json:
        echo_json(report.to_dict())
    else:
        _echo_report(report)
    if not report.healthy:
        sys.exit(3)  # the report is the message; exit like IndexDamagedError


def _echo_report(report: CheckReport) -> None:
    root = report.index
    click.echo(f"index: {root}")
    if report.current_problem is not None:
        click.echo(f"CURRENT: damaged: {report.current_problem}")
    else:
        click.echo(f"CURRENT: {report.current}")
    for g in report.generations:
        role = " (live)" if g.name == report.current else ""
        detail = ""
        if g.status == "intact":
            sums = (
                f"{g.files_verified} files match their checksums"
                if g.files_verified is not None
                else "no checksums recorded (older index); every file reads"
            )
            detail = f": {g.documents} documents, {g.passages} passages, {sums}"
        click.echo(f"{g.name}{role}: {g.status}{detail}")
        for p in g.to_dict(root)["problems"]:
            click.echo(f"  {p['file']}: {p['problem']}")
    if report.healthy:
        click.echo("healthy")
        return
    live = report.current_report
    if report.current_problem is None and live is not None and live.status == "incompatible":
        click.echo(
            "incompatible, not damaged: read it with the shortlist that wrote it, or rebuild "
            f"with `shortlist index SOURCE --index {root} --overwrite`"
        )
        return
    target = report.restorable
    if target is not None:
        click.echo(f"damaged: `shortlist repair {root}` makes {target.name} live again")
    else:
        click.echo(
            "damaged, and no other generation is intact: rebuild with "
            f"`shortlist index SOURCE --index {root} --overwrite`"
        )


@click.command("repair")
@_dir
@_json
def repair_cmd(index_dir: str, as_json: bool) -> None:
    """Make the newest intact generation of the index in DIR live again.

    Nothing is deleted: a damaged live generation is moved aside (gen-NNNNNN.damaged).
    """
    from shortlist.store.health import repair_index

    result = repair_index(index_dir)
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(result.message)
