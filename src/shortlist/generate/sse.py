"""Server-sent events, as the WHATWG HTML standard defines the `text/event-stream` format.

`iter_events(lines)` turns the lines of a stream into `(event, data)` pairs: `data:`
lines of one event are joined with newlines, a blank line ends the event, `:` lines are
comments, and an event without an `event:` field is a `"message"`. `format_event` writes
one event the same way (the server side of the playground's answer stream).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def iter_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """`(event, data)` for each complete event in `lines` (line terminators stripped or not)."""
    event = ""
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if data:  # a stream cut without the final blank line still delivers its last event
        yield event or "message", "\n".join(data)


def format_event(event: str, data: str) -> str:
    """One event in wire format: `event:` then one `data:` line per line of `data`."""
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {event}\n{body}\n"
