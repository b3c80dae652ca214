"""What `shortlist serve` does before it answers: check the port, then say what it serves.

`check_port_free` runs before any model loads, so a port already in use fails in a
second rather than after a long model load. `summary` is the block printed once the
app is built: the served models with their names, the index and its generation,
auth, limits, batching, and where the API docs (and the playground, when the app has
one) are.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shortlist.errors import ShortlistError


class PortInUseError(ShortlistError):
    """The address `shortlist serve` should listen on is taken."""

    exit_code = 2


def check_port_free(host: str, port: int) -> None:
    """Raise `PortInUseError` when nothing could listen on (`host`, `port`) now.

    Binds a throw-away socket with the options uvicorn uses (`SO_REUSEADDR`, so a port
    in TIME_WAIT counts as free) and closes it at once."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortInUseError(f"cannot listen on {host!r}: {exc.strerror}; check --host") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} is already in use (another server?); stop it or "
                    "choose another port with --port"
                ) from exc
            raise PortInUseError(
                f"cannot listen on {host}:{port}: {exc.strerror}; check --host and --port"
            ) from exc


@dataclass(frozen=True)
class ServedIndex:
    path: str
    generation: str | None


def summary(
    *,
    url: str,
    model_names: Mapping[str, Sequence[str]],
    index: ServedIndex | None,
    auth: bool,
    accept_any_model: bool,
    limits: Mapping[str, object],
    batching: str,
    playground: bool,
) -> str:
    """The startup block (plain text, one `key: value` per line, models indented).

    `model_names` maps each served model (its first name) to every name it answers to;
    the first model is the default."""
    lines = ["shortlist serve", f"  url:        {url}"]
    if model_names:
        lines.append("  models:")
        for i, (name, names) in enumerate(model_names.items()):
            others = [n for n in names if n != name]
            default = " (default)" if i == 0 else ""
            also = f"; also answers to {', '.join(others)}" if others else ""
            lines.append(f"    {name}{default}{also}")
        if accept_any_model:
            lines.append("    any other model name is answered by the default (--accept-any-model)")
    else:
        lines.append("  models:     none (search without reranking)")
    if index is not None:
        generation = index.generation or "?"
        lines.append(f"  index:      {index.path} (generation {generation}; followed live)")
    else:
        lines.append("  index:      none (/v1/search answers 404)")
    lines.append(
        "  auth:       " + ("on (Authorization: Bearer KEY)" if auth else "off (no API key)")
    )
    lines.append("  limits:     " + ", ".join(f"{k} {v}" for k, v in limits.items()))
    lines.append(f"  batching:   {batching}")
    lines.append(f"  API docs:   {url}/docs (OpenAPI: {url}/openapi.json)")
    if playground:
        lines.append(f"  playground: {url}/")
    lines.append(f"  metrics:    {url}/metrics")
    return "\n".join(lines)
