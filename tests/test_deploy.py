"""deploy/compose.yaml: valid YAML of the compose shape, every reference resolves, and every
`shortlist` command in it is accepted by the real command line's parser."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest

from shortlist.cli import cli
from shortlist.rerank.registry import parse_spec

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_services_are_well_formed(compose: dict[str, Any]) -> None:
    services = compose["services"]
    volumes = set(compose["volumes"])
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for other in service.get("depends_on", {}):
            assert other in services, f"{name} depends on unknown service {other}"
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if not source.startswith((".", "/", "$")):
                assert source in volumes, f"{name} mounts undeclared volume {source}"
            elif source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name} mounts missing file {source}"
        for port in service.get("ports", []):
            assert re.fullmatch(r"(127\.0\.0\.1:)?\d+:\d+", port), port
    assert services["shortlist"]["deploy"]["replicas"] > 1
    build = services["shortlist"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()


def _shortlist_commands(compose: dict[str, Any]) -> dict[str, list[str]]:
    out = {}
    for name, service in compose["services"].items():
        command = service.get("command")
        if isinstance(command, str) and command.startswith("shortlist "):
            out[name] = shlex.split(command)[1:]
    return out


def test_every_shortlist_command_parses(compose: dict[str, Any]) -> None:
    commands = _shortlist_commands(compose)
    assert set(commands) == {"index", "shortlist"}
    for service, argv in commands.items():
        group_ctx = click.Context(cli)
        command = cli.get_command(group_ctx, argv[0])
        assert command is not None, f"{service}: unknown command {argv[0]}"
        ctx = command.make_context(argv[0], argv[1:], parent=group_ctx)
        assert ctx.params["index_dir"] == "/index", service
        for spec in ctx.params.get("specs", ()):  # reranker specs: the registry's grammar
            parse_spec(spec)


def test_the_replicas_and_the_indexer_reach_milvus_and_each_other(compose: dict[str, Any]
                                                                  ) -> None:
    from shortlist.store.milvus import MilvusTarget

    argv = _shortlist_commands(compose)["index"]
    target = MilvusTarget.parse(argv[argv.index("--store") + 1])
    host, port = target.uri.removeprefix("http://").split(":")
    assert host in compose["services"] and port == "19530"
    assert "shortlist:8000" in (DEPLOY / "nginx.conf").read_text()
    serve = _shortlist_commands(compose)["shortlist"]
    assert serve[serve.index("--port") + 1] == "8000"
    assert serve[serve.index("--host") + 1] == "0.0.0.0"  # inside its container only
