"""Every option of every command explains itself, and shell completion works as the
README's "Shell completion" section says."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from shortlist.cli import cli, main


def commands() -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(cli)

    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                yield from walk(sub, f"{path} {name}".strip())
        else:
            yield path, command

    yield from walk(cli, "")


def test_every_option_has_help() -> None:
    missing = [
        f"{path} {'/'.join(param.opts)}"
        for path, command in commands()
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert missing == []
    assert {path for path, _ in commands()} >= {"serve", "search", "eval", "tune"}


def complete(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *env: str) -> str:
    monkeypatch.setattr("sys.argv", ["shortlist"])
    for item in env:
        name, _, value = item.partition("=")
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_shell_completion_script_and_completions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = complete(monkeypatch, capsys, "_SHORTLIST_COMPLETE=bash_source")
    assert "_shortlist_completion" in script and "complete " in script
    words = complete(
        monkeypatch, capsys, "_SHORTLIST_COMPLETE=bash_complete", "COMP_WORDS=shortlist se",
        "COMP_CWORD=1",
    )
    assert words.split() == ["plain,search", "plain,serve"]
    options = complete(
        monkeypatch, capsys, "_SHORTLIST_COMPLETE=bash_complete",
        "COMP_WORDS=shortlist serve --log-f", "COMP_CWORD=2",
    )
    assert options.split() == ["plain,--log-format"]
