"""The direct path: a hot POST endpoint answered without FastAPI's routing layers.

For a request the server will answer with 200, most of what FastAPI does around an
endpoint is bookkeeping: Starlette's exception and routing middleware, dependency solving,
parsing the JSON to Python and validating it again as a model, the async exit stack. On
`/v1/search` with a cheap pipeline (BM25 + dense + a bi-encoder that reuses the index's
vectors: about 7 ms on two cores) that bookkeeping was a tenth of the request
(`benchmarks/serve_vs_library.py`). `DirectRoute` answers such a request itself, with the
same endpoint function the routed path calls:

1. the body (already read by the app's edge layer) is validated in one step from JSON
   (`model_validate_json`);
2. the API key, when the server has one, is checked with the same comparison;
3. the endpoint function runs; an error it raises is rendered by the app's own exception
   handlers, so its status and body are those of the routed path.

Anything else goes the routed way, unchanged: a body that does not validate, a missing or
wrong key. So every error a client can cause is answered by FastAPI exactly as before,
and the route stays in the OpenAPI spec. `tests/test_serve_direct.py` checks that both
paths give the same answers.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]

log = logging.getLogger("shortlist.serve")


def key_matches(given: str, api_key: str) -> bool:
    """Constant-time comparison of a presented API key with the server's."""
    return hmac.compare_digest(given.encode(), api_key.encode())


def bearer_token(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (None without one), parsed
    by FastAPI's own `get_authorization_scheme_param`, the parser `HTTPBearer` uses."""
    value = next(
        (v.decode("latin-1") for name, v in scope.get("headers", []) if name == b"authorization"),
        None,
    )
    scheme, token = get_authorization_scheme_param(value)
    if not (scheme and token) or scheme.lower() != "bearer":
        return None
    return token


@dataclass(frozen=True)
class DirectRoute:
    """One POST endpoint answered on the direct path (module docstring).

    `endpoint` takes the validated request model and returns the response; `handlers`
    are the app's exception handlers (`FastAPI.exception_handlers`), looked up by the
    raised exception's class hierarchy as Starlette does."""

    model: type[BaseModel]
    endpoint: Callable[[Any], Awaitable[Response]]
    api_key: str | None
    handlers: Mapping[Any, Callable[..., Any]]

    async def answer(self, scope: Scope, body: bytes, send: Send) -> bool:
        """Answer the request and return True, or return False (nothing sent) when it
        must take the routed path."""
        if self.api_key is not None:
            token = bearer_token(scope)
            if token is None or not key_matches(token, self.api_key):
                return False
        try:
            request = self.model.model_validate_json(body)
        except ValidationError:
            return False
        try:
            response = await self.endpoint(request)
        except Exception as exc:
            response = await self._rendered(scope, exc)
        await response(scope, _no_receive, send)
        return True

    async def _rendered(self, scope: Scope, exc: Exception) -> Response:
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                if cls is Exception:
                    # The routed path logs an unhandled error through uvicorn; so does this.
                    log.error("error answering %s", scope.get("path", ""), exc_info=exc)
                response: Response = await handler(Request(scope), exc)
                return response
        raise exc


async def _no_receive() -> Message:
    # A plain Response never reads the request; the body was consumed before this point.
    return {"type": "http.disconnect"}
