"""Drive the CLI in-process through its real entry point, error mapping included."""

from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner

from shortlist.cli import main


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> CliResult:
    runner = CliRunner()
    code = 0
    with runner.isolation() as streams:
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return CliResult(code, out.decode(), err.decode())
