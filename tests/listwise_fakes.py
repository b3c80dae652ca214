"""A local fake of an OpenAI-compatible chat server (`POST /v1/chat/completions`), for the
listwise reranker.

`FakeChatServer` runs a real HTTP server on 127.0.0.1 (port 0) in a daemon thread. It
checks requests as vLLM or OpenAI would (bearer key when one is set: 401; a JSON object
with `model` and a `messages` list of `{role, content}`: 400; unknown fields: 400; an
unknown model: 404) and answers a chat completion whose content is the permutation
that ranks the prompt's numbered passages by `overlap_score` against the query (ties in
passage order), with `usage` = whitespace-separated words in and out. So the expected
order of any window can be worked out by hand.

`server.push(Reply(...))` queues scripted answers, served one per request before normal
behaviour resumes: a given `content` (a malformed permutation), an error status, a raw
body with a content type (an HTML page), any JSON `body`, a `delay` (timeouts).
Every request is recorded (`server.requests`: the decoded JSON bodies).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from api_fakes import overlap_score

ROUTE = "/v1/chat/completions"
_FIELDS = {"model", "messages", "temperature", "max_tokens", "stream", "top_p", "seed"}
_PASSAGE = re.compile(r"^\[(\d+)\] (.*)$")
_QUERY = re.compile(r"^Search Query: (.*)\.$", re.MULTILINE)

HTML = "<!DOCTYPE html><html><head><title>Open WebUI</title></head><body></body></html>"


@dataclass(frozen=True)
class Reply:
    """A scripted answer (see module docstring); all unset means: answer normally."""

    content: str | None = None
    status: int = 200
    body: Any = None
    raw: str | None = None
    content_type: str = "application/json"
    delay: float = 0.0
    usage: bool = True


def rank_prompt(prompt: str) -> tuple[str, list[str], list[int]]:
    """The query, the passages and the 1-based ids best first, read from a user message."""
    match = _QUERY.search(prompt)
    query = match.group(1) if match else ""
    passages = []
    for block in prompt.split("\n\n"):
        m = _PASSAGE.match(block)
        if m:
            passages.append(m.group(2))
    scores = [overlap_score(query, p) for p in passages]
    order = sorted(range(len(passages)), key=lambda i: (-scores[i], i))
    return query, passages, [i + 1 for i in order]


class FakeChatServer:
    """Use as a context manager: `with FakeChatServer() as srv: srv.url`."""

    def __init__(self, *, api_key: str | None = None, model: str = "fake-llm") -> None:
        self.api_key = api_key
        self.model = model
        self.requests: list[Any] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeChatServer:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The server's root URL (scheme, host, port)."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def _next(self) -> Reply | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def answer(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        """The normal answer: (status, JSON body)."""
        if path != ROUTE:
            return 404, {"detail": "Not Found"}
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": {"message": "invalid api key", "type": "auth_error"}}
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return 400, {"error": {"message": "messages: field required"}}
        unknown = set(body) - _FIELDS
        if unknown:
            return 400, {"error": {"message": f"unknown field(s) {sorted(unknown)}"}}
        if body.get("model") != self.model:
            return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}}
        prompt = body["messages"][-1]["content"]
        _, _, ranked = rank_prompt(prompt)
        return 200, self.completion(" > ".join(f"[{i}]" for i in ranked), body)

    def completion(self, content: str, body: Any, *, usage: bool = True) -> dict[str, Any]:
        words_in = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        out: dict[str, Any] = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": 0,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }
        if usage:
            n_out = len(content.split())
            out["usage"] = {
                "prompt_tokens": words_in,
                "completion_tokens": n_out,
                "total_tokens": words_in + n_out,
            }
        return out


def _make_handler(server: FakeChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def _send(self, status: int, payload: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (a timeout test)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            with server._lock:
                server.requests.append(body)
            reply = server._next()
            if reply is not None and reply.delay:
                time.sleep(reply.delay)
            if reply is None or (
                reply.content is None and reply.body is None and reply.raw is None
                and reply.status == 200
            ):
                status, out = server.answer(self.path, headers, body)
                self._send(status, json.dumps(out).encode(), "application/json")
                return
            if reply.raw is not None:
                self._send(reply.status, reply.raw.encode(), reply.content_type)
            elif reply.body is not None:
                self._send(reply.status, json.dumps(reply.body).encode(), reply.content_type)
            elif reply.content is not None:
                out = server.completion(reply.content, body, usage=reply.usage)
                self._send(reply.status, json.dumps(out).encode(), "application/json")
            else:
                err = {"error": {"message": f"scripted error {reply.status}"}}
                self._send(reply.status, json.dumps(err).encode(), "application/json")

    return Handler
