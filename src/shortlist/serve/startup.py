"""What `shortlist serve` does before it answers: check the port, then say what it serves.

`check_port_free` runs before any model loads, so a port already in use fails in a
second rather than after a long model load. `startup_facts` is what is served, once
the app is built: the models with their names, the index and its generation, auth,
limits, batching, and where the API docs (and the playground, when the app has one)
are; `summary` is the block of text `serve` prints from it (with `--log-format json`,
`serve` logs the facts as one JSON record instead).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shortlist.errors import ShortlistError


class CannotListenError(ShortlistError):
    """`shortlist serve` cannot listen where it was told to: the port is taken, or the
    host is not an address of this machine."""

    exit_code = 2


def check_port_free(host: str, port: int) -> None:
    """Raise `CannotListenError` when this process could not listen on (`host`, `port`) now.

    Binds a throw-away socket with the options uvicorn uses (`SO_REUSEADDR`, so a port
    in TIME_WAIT counts as free) and closes it at once."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CannotListenError(f"cannot listen on {host!r}: {exc.strerror}; check --host") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CannotListenError(
                    f"port {port} on {host} is already in use (another server?); stop it or "
                    "choose another port with --port"
                ) from exc
            raise CannotListenError(
                f"cannot listen on {host}:{port}: {exc.strerror}; check --host and --port"
            ) from exc


@dataclass(frozen=True)
class ServedIndex:
    path: str
    generation: str | None


def startup_facts(
    *,
    url: str,
    model_names: Mapping[str, Sequence[str]],
    index: ServedIndex | None,
    auth: bool,
    accept_any_model: bool,
    limits: Mapping[str, int],
    batching: Mapping[str, float] | None,
    playground: bool,
) -> dict[str, Any]:
    """What the server serves, as plain data (the JSON startup record, and `summary`).

    `model_names` maps each served model (its first name) to every name it answers to;
    the first model is the default. `batching` is None when batching is off."""
    return {
        "url": url,
        "models": [
            {"name": name, "names": list(names), "default": i == 0}
            for i, (name, names) in enumerate(model_names.items())
        ],
        "accept_any_model": accept_any_model,
        "index": None if index is None else {"path": index.path, "generation": index.generation},
        "auth": auth,
        "limits": dict(limits),
        "batching": None if batching is None else dict(batching),
        "docs": f"{url}/docs",
        "openapi": f"{url}/openapi.json",
        "playground": f"{url}/" if playground else None,
        "metrics": f"{url}/metrics",
    }


def summary(facts: Mapping[str, Any]) -> str:
    """The startup block of `startup_facts`: plain text, one `key: value` per line."""
    lines = ["shortlist serve", f"  url:        {facts['url']}"]
    if facts["models"]:
        lines.append("  models:")
        for model in facts["models"]:
            others = [n for n in model["names"] if n != model["name"]]
            default = " (default)" if model["default"] else ""
            also = f"; also answers to {', '.join(others)}" if others else ""
            lines.append(f"    {model['name']}{default}{also}")
        if facts["accept_any_model"]:
            lines.append("    any other model name is answered by the default (--accept-any-model)")
    else:
        lines.append("  models:     none (search without reranking)")
    index = facts["index"]
    if index is not None:
        generation = index["generation"] or "?"
        lines.append(f"  index:      {index['path']} (generation {generation}; followed live)")
    else:
        lines.append("  index:      none (/v1/search answers 404)")
    auth = "on (Authorization: Bearer KEY)" if facts["auth"] else "off (no API key)"
    lines.append(f"  auth:       {auth}")
    lines.append("  limits:     " + ", ".join(f"{k} {v}" for k, v in facts["limits"].items()))
    batching = facts["batching"]
    if batching is None:
        lines.append("  batching:   off (each request scored on its own)")
    else:
        lines.append(
            f"  batching:   on (max {batching['max_tokens']} tokens / {batching['max_pairs']} "
            f"pairs per batch, wait {batching['max_wait_ms']:g} ms, queue "
            f"{batching['queue_size']})"
        )
    lines.append(f"  API docs:   {facts['docs']} (OpenAPI: {facts['openapi']})")
    if facts["playground"] is not None:
        lines.append(f"  playground: {facts['playground']}")
    lines.append(f"  metrics:    {facts['metrics']}")
    return "\n".join(lines)
