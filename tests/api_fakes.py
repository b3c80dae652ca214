"""Local fake servers that speak the hosted rerank APIs' documented wire formats.

`FakeRerankServer(flavor)` runs a real HTTP server on 127.0.0.1 (port 0) in a daemon
thread, so clients (ours, the official `cohere` SDK, the serving layer's tests) talk
to it over a socket exactly as they would to the provider:

- `cohere`: `POST /v1/rerank` and `POST /v2/rerank` -> `{id, results, meta}`;
  errors `{"message": ...}`;
- `voyage`: `POST /v1/rerank` -> `{object: "list", data, model, usage}`;
  errors `{"detail": ...}`;
- `jina`: `POST /v1/rerank` -> `{model, usage, results}`; errors `{"detail": ...}`;
- `tei`: `POST /rerank` -> `[{index, score, text?}]`; errors `{"error", "error_type"}`.

Every request is recorded (`server.requests`). Requests are checked like the real
APIs would: bearer key (401), known and required fields (400), `max_docs` (400).
Scores come from `overlap_score` (the share of distinct query words found in the
document), so expected rankings can be worked out by hand. `server.push(...)` queues
scripted answers (errors, Retry-After headers, delays, malformed bodies) that are
served, one per request, before normal behaviour resumes.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from loopback import LoopbackHandler, LoopbackServer

FLAVORS = ("cohere", "voyage", "jina", "tei")

_ROUTES = {
    "cohere": {"/v1/rerank", "/v2/rerank"},
    "voyage": {"/v1/rerank"},
    "jina": {"/v1/rerank"},
    "tei": {"/rerank"},
}

# (required fields, optional fields) per route, from each provider's API reference.
_FIELDS: dict[tuple[str, str], tuple[set[str], set[str]]] = {
    ("cohere", "/v2/rerank"): (
        {"model", "query", "documents"},
        {"top_n", "max_tokens_per_doc", "relevant_spans", "priority"},
    ),
    ("cohere", "/v1/rerank"): (
        {"query", "documents"},
        {"model", "top_n", "rank_fields", "return_documents", "max_chunks_per_doc"},
    ),
    ("voyage", "/v1/rerank"): (
        {"query", "documents", "model"},
        {"top_k", "return_documents", "truncation"},
    ),
    ("jina", "/v1/rerank"): ({"model", "query", "documents"}, {"top_n", "return_documents"}),
    ("tei", "/rerank"): (
        {"query", "texts"},
        {"raw_scores", "return_text", "truncate", "truncation_direction"},
    ),
}

_WORD = re.compile(r"\w+")


def overlap_score(query: str, text: str) -> float:
    """Share of distinct lower-cased query words that occur in `text`, in [0, 1]."""
    q = set(_WORD.findall(query.lower()))
    if not q:
        return 0.0
    return len(q & set(_WORD.findall(text.lower()))) / len(q)


# A query, documents with their `overlap_score` worked out by hand, and the order a
# reranker scoring by it must return: the fixture the rerank-API and listwise tests share.
OVERLAP_QUERY = "red apple pie"
OVERLAP_DOCS = [
    "green apple tart",  # 1/3
    "Red apple pie recipe",  # 1
    "banana bread",  # 0
    "red car",  # 1/3
    "apple pie",  # 2/3
]
OVERLAP_ORDER = [1, 4, 0, 3, 2]


def tei_logit(p: float) -> float:
    """The raw score the fake TEI reports for relevance `p` when `raw_scores` is true."""
    return 10.0 * p - 5.0


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Scripted:
    """A queued answer. `status=None` means: behave normally (after `delay` seconds).

    For an error status the body is the flavor's error object carrying `message`,
    unless `body` is given; for 200 a given `body` replaces the normal answer.
    """

    status: int | None = None
    message: str = "scripted error"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: Any = None


class _Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FakeRerankServer(LoopbackServer[Scripted]):
    """A fake provider on 127.0.0.1; use as a context manager (`with ... as srv: srv.url`)."""

    requests: list[Recorded]

    def __init__(
        self,
        flavor: str,
        *,
        api_key: str | None = "test-key",
        max_docs: int | None = None,
        score: Callable[[str, str], float] = overlap_score,
    ) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"unknown flavor {flavor!r}; expected one of {FLAVORS}")
        super().__init__()
        self.flavor = flavor
        self.api_key = api_key
        self.max_docs = max_docs
        self.score = score

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self)

    # -- protocol --------------------------------------------------------------------
    def error_body(self, status: int, message: str) -> Any:
        if self.flavor == "cohere":
            return {"message": message}
        if self.flavor == "tei":
            kind = {413: "validation", 422: "tokenizer", 429: "overloaded"}.get(status, "backend")
            return {"error": message, "error_type": kind}
        return {"detail": message}

    def answer(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        """The normal answer to a request: (status, JSON body)."""
        if path not in _ROUTES[self.flavor]:
            raise _Rejected(404, f"no route {path}")
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            raise _Rejected(401, "invalid api token")
        if not isinstance(body, dict):
            raise _Rejected(400, "invalid request: body must be a JSON object")
        required, optional = _FIELDS[(self.flavor, path)]
        missing = required - body.keys()
        unknown = body.keys() - required - optional
        if missing:
            raise _Rejected(400, f"invalid request: missing field(s) {sorted(missing)}")
        if unknown:
            raise _Rejected(400, f"invalid request: unknown field(s) {sorted(unknown)}")
        query = body["query"]
        docs_key = "texts" if self.flavor == "tei" else "documents"
        docs = body[docs_key]
        if not isinstance(query, str) or not query.strip():
            raise _Rejected(400, "invalid request: query must not be empty or be only whitespace")
        if not isinstance(docs, list) or not docs:
            raise _Rejected(400, f"invalid request: list of {docs_key} must not be empty")
        texts = [d["text"] if isinstance(d, dict) and "text" in d else d for d in docs]
        if not all(isinstance(t, str) for t in texts):
            raise _Rejected(400, f"invalid request: {docs_key} must be strings")
        if self.max_docs is not None and len(texts) > self.max_docs:
            raise _Rejected(
                400, f"invalid request: too many {docs_key} ({len(texts)} > {self.max_docs})"
            )
        scores = [self.score(query, t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: (-scores[i], i))
        limit = body.get("top_k" if self.flavor == "voyage" else "top_n")
        if isinstance(limit, int):
            order = order[:limit]
        tokens = sum(len(query.split()) + len(t.split()) for t in texts)

        if self.flavor == "tei":
            raw = bool(body.get("raw_scores", False))
            ranks = []
            for i in order:
                s = tei_logit(scores[i]) if raw else 1.0 / (1.0 + math.exp(-tei_logit(scores[i])))
                item: dict[str, Any] = {"index": i, "score": s}
                if body.get("return_text"):
                    item["text"] = texts[i]
                ranks.append(item)
            return 200, ranks

        want_docs = bool(body.get("return_documents", False))
        results = []
        for i in order:
            item = {"index": i, "relevance_score": scores[i]}
            if want_docs:
                item["document"] = texts[i] if self.flavor == "voyage" else {"text": texts[i]}
            results.append(item)
        if self.flavor == "cohere":
            version = path.split("/")[1].lstrip("v")
            return 200, {
                "id": f"fake-{len(self.requests)}",
                "results": results,
                "meta": {
                    "api_version": {"version": version},
                    "billed_units": {"search_units": math.ceil(len(texts) / 100)},
                },
            }
        if self.flavor == "voyage":
            return 200, {
                "object": "list",
                "data": results,
                "model": body["model"],
                "usage": {"total_tokens": tokens},
            }
        return 200, {"model": body["model"], "usage": {"total_tokens": tokens}, "results": results}


def _make_handler(server: FakeRerankServer) -> type[BaseHTTPRequestHandler]:
    class Handler(LoopbackHandler):
        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            self.send_payload(status, json.dumps(body).encode(), headers=headers)

        def do_POST(self) -> None:  # noqa: N802
            headers, body = self.read_request()
            server.record(Recorded("POST", self.path, headers, body))
            scripted = server.next_scripted()
            if scripted is not None and scripted.delay:
                time.sleep(scripted.delay)
            if scripted is not None and scripted.status is not None:
                if scripted.status == 200:
                    self._send(200, scripted.body, scripted.headers)
                else:
                    out = scripted.body
                    if out is None:
                        out = server.error_body(scripted.status, scripted.message)
                    self._send(scripted.status, out, scripted.headers)
                return
            try:
                status, out = server.answer(self.path, headers, body)
            except _Rejected as rej:
                self._send(rej.status, server.error_body(rej.status, rej.message))
                return
            self._send(status, out)

    return Handler
