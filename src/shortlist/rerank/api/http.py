"""One HTTP transport for every hosted reranker: timeouts, retries, typed errors.

`JsonTransport.post_json` sends one JSON request and returns the decoded JSON body.

- Retries on 429, on 5xx and on transport errors (timeouts, refused connections),
  at most `max_retries` times, with exponential backoff and full jitter:
  `delay = rng() * min(max_delay, base_delay * 2**attempt)` (AWS Architecture Blog,
  "Exponential Backoff And Jitter", 2015). A `Retry-After` header (seconds or an
  HTTP date, RFC 9110 section 10.2.3) replaces the jittered delay, capped at
  `max_retry_after`.
- An optional `deadline` bounds a whole call, retries and back-off included (a per-query
  time budget): no try waits past it and no retry starts after it.
- Maps failures to `shortlist.errors`: 401/403 -> `ProviderAuthError` (never
  retried); 429 after retries -> `ProviderRateLimitError`; a timeout after retries ->
  `ProviderTimeoutError`; any other 4xx -> `ProviderError` carrying the provider's
  own message; 5xx or a transport error after retries -> `ProviderError`.

Headers (and so API keys) are never put in messages or logs; error messages name
the provider, the URL and the status only.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from shortlist.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderTimeoutError,
)

_MESSAGE_KEYS = ("message", "detail", "error", "msg")
_MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait before retrying a failed request."""

    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("retry delays must be >= 0")

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        """Full-jitter delay before retry number `attempt + 1` (attempt counts from 0)."""
        cap = min(self.max_delay, self.base_delay * (2.0**attempt))
        return rng() * cap

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        """Seconds to wait before retry number `attempt + 1`: the server's `Retry-After`
        (seconds, see `parse_retry_after`) capped at `max_retry_after` when it sent one,
        else the full-jitter `backoff`."""
        if retry_after is None:
            return self.backoff(attempt, rng)
        return min(retry_after, self.max_retry_after)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header value, or None when absent or invalid.

    Accepts delay-seconds (`"3"`, `"1.5"`) and an HTTP date (RFC 9110 section 10.2.3);
    a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def provider_message(response: httpx.Response) -> str:
    """The provider's own error text from a response body, shortened for messages.

    Cohere answers `{"message": ...}`, Voyage and Jina `{"detail": ...}`, TEI
    `{"error": ..., "error_type": ...}`; anything else falls back to the raw body.
    """
    text = response.text
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in _MESSAGE_KEYS:
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message", value)
            if value:
                text = value if isinstance(value, str) else json.dumps(value)
                break
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 3] + "..."
    return text or response.reason_phrase


def describe_body(response: httpx.Response) -> str:
    """What a response body is, for messages: an HTML page, an empty body, or its start."""
    text = response.text.strip()
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "text/html" or text[:15].lower().startswith(("<!doctype html", "<html")):
        return "an HTML page (a web UI or proxy, not the API?)"
    if not text:
        return "an empty body"
    start = " ".join(text[:60].split())
    return f"a body starting {start!r}"


@dataclass(frozen=True, slots=True)
class _Retry:
    """A failed attempt that may be retried, with the server's Retry-After (seconds) if any."""

    error: ProviderError
    retry_after: float | None


class JsonTransport:
    """POSTs JSON to one provider with retries; owns its httpx client unless given one.

    Thread-safe: one transport (and its connection pool) serves concurrent callers.

    `sleep`, `rng` (uniform in [0, 1)), `clock` (epoch seconds) and `monotonic` (for
    deadlines) are injectable so tests can record delays instead of waiting. `expects`
    names the answer wanted, for the error about a 2xx body that is not JSON. `headers`
    are sent with every request and never appear in errors or `repr`.
    """

    def __init__(
        self,
        provider: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        expects: str = "a JSON body",
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be > 0 seconds")
        self.provider = provider
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._headers = dict(headers or {})
        # Credentials to scrub from any provider text we quote (some echo the request).
        self._secrets = [
            secret
            for name, value in self._headers.items()
            if name.lower() in ("authorization", "x-api-key", "api-key")
            for secret in (value, value.split(" ", 1)[-1])
            if len(secret) >= 4
        ]
        self._owns_client = client is None
        self._client = client
        self._client_lock = threading.Lock()
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self._monotonic = monotonic
        self.expects = expects

    def __repr__(self) -> str:
        return f"JsonTransport(provider={self.provider!r}, timeout={self.timeout})"

    def close(self) -> None:
        """Close the httpx client if this transport created it."""
        with self._client_lock:
            if self._owns_client and self._client is not None:
                self._client.close()
                self._client = None

    def _http(self) -> httpx.Client:
        # Created on first use: building an httpx client loads the CA bundle, which
        # is wasted on rerankers that are only configured or asked for cost estimates.
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client()
            return self._client

    def post_json(
        self, url: str, body: Mapping[str, Any], *, deadline: float | None = None
    ) -> Any:
        """POST `body` as JSON to `url`; the decoded JSON answer, or a typed ProviderError.

        `deadline` (a `time.monotonic()` instant) bounds the whole call, retries and
        back-off included: each try waits at most until then, no retry starts after it,
        and running out raises `ProviderTimeoutError`.
        """
        attempt = 0
        while True:
            timeout = self.timeout
            if deadline is not None:
                left = deadline - self._monotonic()
                if left <= 0:
                    raise self._out_of_time(url)
                timeout = min(timeout, left)
            outcome = self._attempt(url, body, timeout)
            if not isinstance(outcome, _Retry):
                return outcome
            if attempt >= self.retry.max_retries:
                raise outcome.error
            delay = self.retry.delay(attempt, outcome.retry_after, self._rng)
            if deadline is not None and self._monotonic() + delay >= deadline:
                err = outcome.error
                raise ProviderTimeoutError(
                    f"{self.provider}: the time budget ran out after {attempt + 1} attempt(s) "
                    f"at {url}; the last one: {err}",
                    provider=self.provider,
                    status=err.status,
                )
            self._sleep(delay)
            attempt += 1

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _out_of_time(self, url: str) -> ProviderTimeoutError:
        p = self.provider
        message = f"{p}: the time budget ran out before {url} answered"
        return ProviderTimeoutError(message, provider=p)

    def _attempt(self, url: str, body: Mapping[str, Any], timeout: float) -> Any:
        """One try: the decoded body, a `_Retry`, or a raised final ProviderError."""
        p = self.provider
        try:
            response = self._http().post(url, json=body, headers=self._headers, timeout=timeout)
        except httpx.TimeoutException:
            err: ProviderError = ProviderTimeoutError(
                f"{p}: no answer from {url} within {timeout:g} s", provider=p
            )
            return _Retry(err, None)
        except httpx.TransportError as exc:
            err = ProviderError(
                f"{p}: could not reach {url}: {type(exc).__name__}: {exc}", provider=p
            )
            return _Retry(err, None)
        status = response.status_code
        if 200 <= status < 300:
            try:
                return response.json()
            except ValueError:
                what = self._scrub(describe_body(response))
                raise ProviderError(
                    f"{p}: {url} answered {status} with {what}, not JSON; expected {self.expects}",
                    provider=p,
                    status=status,
                ) from None
        message = self._scrub(provider_message(response))
        if status in (401, 403):
            raise ProviderAuthError(
                f"{p}: the API key was rejected (HTTP {status}): {message}; "
                "check the key passed as api_key= or set in the environment",
                provider=p,
                status=status,
            )
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"), now=self._clock())
            tries = self.retry.max_retries + 1
            if status == 429:
                err = ProviderRateLimitError(
                    f"{p}: rate limited (HTTP 429) on all {tries} attempts: {message}",
                    provider=p,
                    status=status,
                )
            else:
                err = ProviderError(
                    f"{p}: server error (HTTP {status}) on all {tries} attempts: {message}",
                    provider=p,
                    status=status,
                )
            return _Retry(err, retry_after)
        raise ProviderError(
            f"{p}: request rejected (HTTP {status}): {message}", provider=p, status=status
        )
