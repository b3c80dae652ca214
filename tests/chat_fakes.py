"""A loopback server that speaks OpenAI's chat completions API, streaming included.

    with fake_llm(FakeLLM(answer="Cats [1].")) as (llm, url):
        ...  # url is the API base, e.g. http://127.0.0.1:PORT/v1

`FakeLLM.mode` picks the behaviour: `stream` (SSE chunks, then a usage chunk, then
`[DONE]`), `json` (one non-streamed completion), `html` (a web page, not an API),
`missing` (404), `unauthorized` (401), `flaky` (503 on the first `failures` requests,
then a stream), `cut` (the connection closes after two pieces of the answer).
Every request's body and Authorization header are recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import LoopbackServer

ANSWER = "Cats nap in gardens [1]. The senator spoke [2][9]."


def word_usage(messages: list[dict[str, Any]], content: str) -> dict[str, int]:
    """`usage` with whitespace-separated words for tokens: the messages in, `content` out."""
    prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
    completion = len(content.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def chat_completion(
    content: str,
    messages: list[dict[str, Any]],
    *,
    model: str,
    id: str = "chatcmpl-0",  # noqa: A002
    usage: bool = True,
) -> dict[str, Any]:
    """A non-streamed chat completion answering `messages` with `content`."""
    out: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }
    if usage:
        out["usage"] = word_usage(messages, content)
    return out


@dataclass
class FakeLLM:
    answer: str = ANSWER
    mode: str = "stream"
    failures: int = 0
    pieces: int = 4
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)

    def usage(self, body: dict[str, Any]) -> dict[str, int]:
        return word_usage(body.get("messages", []), self.answer)

    def chunks(self) -> list[str]:
        """The answer cut into `pieces` parts (so the client sees several deltas)."""
        size = max(1, -(-len(self.answer) // self.pieces))
        return [self.answer[i : i + size] for i in range(0, len(self.answer), size)]


def _handler(llm: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, kind: str, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            llm.requests.append(body)
            llm.auth.append(self.headers.get("Authorization"))
            if not self.path.endswith("/chat/completions") or llm.mode == "missing":
                self._send(404, "application/json", b'{"error": {"message": "not found"}}')
                return
            if llm.mode == "unauthorized":
                self._send(401, "application/json", b'{"error": {"message": "bad key"}}')
                return
            if llm.mode == "html":
                self._send(200, "text/html", b"<html><body>It works!</body></html>")
                return
            if llm.mode == "flaky" and len(llm.requests) <= llm.failures:
                self._send(503, "application/json", b'{"error": {"message": "warming up"}}')
                return
            if llm.mode == "json":
                completion = chat_completion(
                    llm.answer, body.get("messages", []), model=body.get("model", ""), id="cmpl-1"
                )
                self._send(200, "application/json", json.dumps(completion).encode())
                return
            self._stream(body)

        def _stream(self, body: dict[str, Any]) -> None:
            import time

            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()

            def event(data: str) -> None:
                self.wfile.write(f"data: {data}\n\n".encode())
                self.wfile.flush()

            base = {"id": "chunk", "object": "chat.completion.chunk", "model": body["model"]}
            event(json.dumps({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}))
            for n, piece in enumerate(llm.chunks()):
                if llm.mode == "cut" and n == 2:
                    return  # the connection closes mid-answer
                time.sleep(llm.delay_s)
                delta = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                event(json.dumps({**base, "choices": [delta]}))
            done = {"index": 0, "delta": {}, "finish_reason": "stop"}
            event(json.dumps({**base, "choices": [done]}))
            if body.get("stream_options", {}).get("include_usage"):
                event(json.dumps({**base, "choices": [], "usage": llm.usage(body)}))
            event("[DONE]")

    return Handler


class LLMServer(LoopbackServer[None]):
    """`llm` served on a free loopback port until `stop()` (idempotent): a down LLM after."""

    def __init__(self, llm: FakeLLM) -> None:
        super().__init__()
        self.llm = llm
        self.start()
        self._api_base = f"{super().url}/v1"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self.llm)

    @property
    def url(self) -> str:
        """The API base (…/v1); still answers after `stop()`, for a down-LLM test."""
        return self._api_base


@contextmanager
def fake_llm(llm: FakeLLM | None = None) -> Iterator[tuple[FakeLLM, str]]:
    """Serve `llm` on a free loopback port; yields it and its API base URL."""
    server = LLMServer(llm or FakeLLM())
    try:
        yield server.llm, server.url
    finally:
        server.stop()


def closed_port_url() -> str:
    """An API base on a loopback port nothing listens on (a down LLM)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
