"""Request ids and access logs: the outermost layer of the HTTP app.

Every HTTP request gets a request id: the client's `X-Request-ID` when it sends a
usable one (1-128 characters of letters, digits and `-_.:`), else a new random one.
The id is echoed in the response's `X-Request-ID` header and logged.

One record per request goes to the `shortlist.access` logger at INFO, after the
response: `method`, `path` (no query string), `status`, `latency_ms`, `request_id`,
`model` (the served model that answered, from the app's `X-Shortlist-Model` response
header; absent when no model was involved) and `client`. The record's message is one
line of text; the fields are also attached as `record.fields` for `JsonFormatter`. No
request header other than `X-Request-ID` is ever read here, so an API key never reaches
the log.

The library never configures logging; the CLI does (see `logging_config`).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "X-Request-ID"
MODEL_HEADER = "X-Shortlist-Model"
"""Response header naming the served model that answered (its first name)."""
ACCESS_LOGGER = "shortlist.access"

_GOOD_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's `X-Request-ID` when usable, else a new random id (32 hex digits)."""
    for name, value in headers:
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if _GOOD_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


class AccessLog:
    """ASGI middleware: request id in and out, one access-log record per request."""

    def __init__(self, app: ASGIApp, *, logger: logging.Logger | None = None) -> None:
        self.app = app
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope.get("headers", []))
        fields: dict[str, Any] = {
            "method": scope.get("method", ""),
            "path": scope.get("path", ""),
            "status": 500,
            "request_id": request_id,
        }

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                fields["status"] = int(message["status"])
                headers = list(message.get("headers", []))
                for name, value in headers:
                    if name.lower() == MODEL_HEADER.lower().encode():
                        fields["model"] = value.decode("latin-1")
                headers.append((REQUEST_ID_HEADER.lower().encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            fields["latency_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
            client = scope.get("client")
            if client:
                fields["client"] = f"{client[0]}:{client[1]}"
            self.logger.info(_line(fields), extra={"fields": fields})


def _line(fields: dict[str, Any]) -> str:
    out = (
        f'{fields.get("client", "-")} "{fields["method"]} {fields["path"]}" {fields["status"]} '
        f'{fields["latency_ms"]:.1f}ms id={fields["request_id"]}'
    )
    if "model" in fields:
        out += f" model={fields['model']}"
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `ts` (ISO 8601, UTC), `level`, `logger`, `message`, and
    the record's `fields` when it has them (an access record's `method`, `path`,
    `status`, `latency_ms`, ...; the startup record's `startup`)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


LOG_FORMATS = ("text", "json")


def logging_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for `shortlist serve`: shortlist's and uvicorn's
    loggers to stderr, as text lines with a timestamp or as JSON lines (`JsonFormatter`).
    uvicorn's own access log is left off: `shortlist.access` replaces it."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    formatter: dict[str, Any]
    if log_format == "json":
        formatter = {"()": f"{__name__}.JsonFormatter"}
    else:
        formatter = {
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        }
    handler = {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
    logger = {"handlers": ["default"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {"shortlist": logger, "uvicorn": logger, "uvicorn.error": {"level": level}},
    }
