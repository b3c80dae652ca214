"""The plumbing the fake HTTP servers in tests/ share (api_fakes, listwise_fakes, chat_fakes).

`LoopbackServer` runs a real `ThreadingHTTPServer` on 127.0.0.1 (port 0) in a daemon
thread, records requests and keeps a queue of scripted answers; a subclass supplies the
handler class (`handler()`) and what the answers mean. `LoopbackHandler` is the quiet,
low-latency request handler base those handlers extend.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar

T = TypeVar("T")


class LoopbackHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1, no logging, and sends that survive a client that gave up."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes; without TCP_NODELAY, Nagle's
        # algorithm and delayed ACKs add ~40 ms to every answer
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return  # keep test output clean

    def read_request(self) -> tuple[dict[str, str], Any]:
        """(lower-cased headers, body): the decoded JSON, else the text, else None if empty."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        return headers, body

    def send_payload(
        self,
        status: int,
        payload: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up (a timeout test); nothing to answer


class LoopbackServer(Generic[T]):
    """Use as a context manager: `with Server(...) as srv: srv.url`; `T` is the type of
    the scripted answers `push` queues."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self._script: deque[T] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> Self:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        httpd.daemon_threads = True
        httpd.block_on_close = False  # a handler stuck in a scripted delay must not block
        self._httpd = httpd
        # a short poll interval keeps `stop()` fast: shutdown waits for the next poll
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Idempotent; afterwards the port is closed (a down server)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL (scheme, host and port, no trailing slash)."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- recording and scripting -----------------------------------------------------
    def push(self, *answers: T) -> None:
        """Queue answers served one per request, before normal behaviour resumes."""
        with self._lock:
            self._script.extend(answers)

    def next_scripted(self) -> T | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def record(self, request: Any) -> None:
        with self._lock:
            self.requests.append(request)
