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
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from api_fakes import overlap_score
from chat_fakes import chat_completion
from loopback import LoopbackHandler, LoopbackServer

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


class FakeChatServer(LoopbackServer[Reply]):
    """Use as a context manager: `with FakeChatServer() as srv: srv.url`."""

    def __init__(self, *, api_key: str | None = None, model: str = "fake-llm") -> None:
        super().__init__()
        self.api_key = api_key
        self.model = model

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self)

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
        return chat_completion(
            content,
            body.get("messages", []),
            model=self.model,
            id=f"chatcmpl-{len(self.requests)}",
            usage=usage,
        )


def _make_handler(server: FakeChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(LoopbackHandler):
        def _send(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_payload(status, payload, content_type)

        def do_POST(self) -> None:  # noqa: N802
            headers, body = self.read_request()
            server.record(body)
            reply = server.next_scripted()
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
