"""A client for any OpenAI-compatible `POST /v1/chat/completions` (vLLM, llama.cpp's
server, Ollama, OpenAI), streamed.

    client = ChatClient(ChatConfig("http://localhost:8000/v1", "qwen2.5-7b-instruct"))
    for event in client.stream([{"role": "user", "content": "Hi"}]):
        ...  # TextDelta, then one Finished (with usage when the server reports it)

- `url` is the API base (`http://localhost:8000/v1`) or the full
  `.../chat/completions` URL; `endpoint` is the one posted to.
- The request asks for `stream: true` and `stream_options.include_usage`, so the last
  chunk carries `usage`. A server that ignores `stream` and answers one JSON completion
  is read too.
- Retries (429, 5xx, refused connections, timeouts; `RetryPolicy` with full jitter and
  `Retry-After`) happen only before the first byte of the answer, so text is never
  repeated. `timeout_s` bounds the wait for each chunk, `connect_timeout_s` the connection.
- Failures are typed: `LLMUnavailableError` (cannot connect, or no answer in time, after
  the retries), `ProviderAuthError` (401/403), `NotChatCompletionsError` (404, or a body
  that is not a chat completion: a wrong URL, an HTML page, another API), and
  `ProviderError` for anything else with the server's own message.
- The API key goes in the `Authorization` header only: never in a message, `repr` or log.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from shortlist.errors import InvalidInputError, ProviderAuthError, ProviderError
from shortlist.generate.cost import Usage
from shortlist.generate.sse import iter_events
from shortlist.rerank.api.http import RetryPolicy, parse_retry_after, provider_message

PROVIDER = "llm"

Message = Mapping[str, str]
"""A chat message: `{"role": "user" | "system" | "assistant", "content": ...}`."""


class LLMUnavailableError(ProviderError):
    """The LLM endpoint could not be reached, or did not answer in time."""


class NotChatCompletionsError(ProviderError):
    """The endpoint answered, but not as an OpenAI-compatible chat completions API."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer, in order."""

    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The end of the answer: why it stopped (`stop`, `length`, ...) and token usage."""

    reason: str | None
    usage: Usage | None


ChatEvent = TextDelta | Finished


@dataclass(frozen=True)
class ChatConfig:
    """Where and how to ask. `api_key` is never shown (`repr=False`)."""

    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    connect_timeout_s: float = 5.0
    temperature: float | None = 0.0
    max_tokens: int | None = None
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_retries=2))

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise InvalidInputError(
                f"the LLM URL {self.url!r} must start with http:// or https://, e.g. "
                "http://localhost:8000/v1"
            )
        if not self.model.strip():
            raise InvalidInputError("name the LLM model (--llm-model), e.g. qwen2.5:7b")
        if self.timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise InvalidInputError("LLM timeouts must be > 0 seconds")

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"


class ChatClient:
    """Streams chat completions from one endpoint. Thread-safe; one call per stream."""

    def __init__(
        self,
        config: ChatConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self._transport = transport
        self._sleep = sleep
        self._rng = rng

    def __repr__(self) -> str:
        return f"ChatClient(url={self.config.endpoint!r}, model={self.config.model!r})"

    def request_body(self, messages: Sequence[Message]) -> dict[str, Any]:
        """Exactly the JSON body `stream` posts (`--show-prompt` prints it)."""
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": [dict(m) for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.config.temperature is not None:
            body["temperature"] = self.config.temperature
        if self.config.max_tokens is not None:
            body["max_tokens"] = self.config.max_tokens
        return body

    def stream(self, messages: Sequence[Message]) -> Iterator[ChatEvent]:
        """The answer as `TextDelta`s, then one `Finished`. Raises the errors above; the
        connection is made (and retried) when the first event is asked for."""
        config = self.config
        headers = {"Accept": "text/event-stream"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        body = self.request_body(messages)
        with httpx.Client(transport=self._transport, timeout=timeout) as http:
            attempt = 0
            while True:
                try:
                    with http.stream("POST", config.endpoint, json=body, headers=headers) as r:
                        delay = self._retry_delay(r)
                        if delay is None:
                            yield from self._read(r)
                            return
                        error: ProviderError = self._failure(r)
                except httpx.TimeoutException:
                    error = LLMUnavailableError(
                        f"the LLM at {config.endpoint} did not answer within "
                        f"{config.timeout_s:g} s; is it overloaded? raise the timeout or retry",
                        provider=PROVIDER,
                    )
                    delay = -1.0
                except httpx.TransportError as exc:
                    error = LLMUnavailableError(
                        f"cannot reach the LLM at {config.endpoint} ({type(exc).__name__}); "
                        "start the server or fix --llm (e.g. http://localhost:8000/v1)",
                        provider=PROVIDER,
                    )
                    delay = -1.0
                if attempt >= config.retry.max_retries:
                    raise error
                retry_after = delay if delay >= 0 else None
                self._sleep(config.retry.delay(attempt, retry_after, self._rng))
                attempt += 1

    def _retry_delay(self, response: httpx.Response) -> float | None:
        """None: go on reading. Else retry after this many seconds (-1: the backoff's),
        or raise for a failure a retry cannot fix."""
        status = response.status_code
        if 200 <= status < 300:
            return None
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"), now=time.time())
            return -1.0 if retry_after is None else retry_after
        raise self._failure(response)

    def _failure(self, response: httpx.Response) -> ProviderError:
        response.read()
        status, url = response.status_code, self.config.endpoint
        message = provider_message(response)
        if self.config.api_key:
            message = message.replace(self.config.api_key, "***")
        if status in (401, 403):
            return ProviderAuthError(
                f"the LLM at {url} rejected the API key (HTTP {status}): {message}; set "
                "OPENAI_API_KEY, or name the variable holding the key with --llm-key-env",
                provider=PROVIDER,
                status=status,
            )
        if status in (404, 405):
            return NotChatCompletionsError(
                f"{url} has no chat completions endpoint (HTTP {status}: {message}); pass the "
                "API base of an OpenAI-compatible server, e.g. http://localhost:8000/v1, "
                "and a model it serves",
                provider=PROVIDER,
                status=status,
            )
        tries = self.config.retry.max_retries + 1
        again = f" on all {tries} attempts" if status == 429 or status >= 500 else ""
        return ProviderError(
            f"the LLM at {url} failed (HTTP {status}){again}: {message}",
            provider=PROVIDER,
            status=status,
        )

    def _read(self, response: httpx.Response) -> Iterator[ChatEvent]:
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            response.read()
            yield from self._whole(response.text)
            return
        if kind != "text/event-stream":
            raise self._not_chat(f"a {kind or 'untyped'} body instead of an event stream")
        reason: str | None = None
        usage: Usage | None = None
        ended = False
        try:
            for _event, data in iter_events(response.iter_lines()):
                if data.strip() == "[DONE]":
                    ended = True
                    break
                chunk = self._json(data)
                if "error" in chunk:
                    raise ProviderError(
                        f"the LLM at {self.config.endpoint} failed while answering: "
                        f"{_error_text(chunk['error'])}",
                        provider=PROVIDER,
                    )
                usage = Usage.from_dict(chunk.get("usage")) or usage
                choices = chunk.get("choices")
                if not isinstance(choices, list):
                    raise self._not_chat("an event without 'choices'")
                for choice in choices[:1]:
                    delta = choice.get("delta") or {}
                    text = delta.get("content") if isinstance(delta, dict) else None
                    if isinstance(text, str) and text:
                        yield TextDelta(text)
                    reason = choice.get("finish_reason") or reason
        except httpx.TimeoutException:
            raise LLMUnavailableError(
                f"the LLM at {self.config.endpoint} stopped sending for "
                f"{self.config.timeout_s:g} s in the middle of the answer",
                provider=PROVIDER,
            ) from None
        except httpx.TransportError as exc:
            raise LLMUnavailableError(
                f"the connection to the LLM at {self.config.endpoint} broke in the middle "
                f"of the answer ({type(exc).__name__})",
                provider=PROVIDER,
            ) from None
        if not ended and reason is None:
            raise LLMUnavailableError(
                f"the stream from the LLM at {self.config.endpoint} ended before the answer "
                "was finished (no finish_reason, no [DONE]); the server may have crashed",
                provider=PROVIDER,
            )
        yield Finished(reason, usage)

    def _whole(self, text: str) -> Iterator[ChatEvent]:
        """A non-streamed completion (`choices[0].message.content`)."""
        body = self._json(text)
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self._not_chat("JSON without 'choices'")
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise self._not_chat("a choice without 'message.content'")
        if content:
            yield TextDelta(content)
        yield Finished(choices[0].get("finish_reason"), Usage.from_dict(body.get("usage")))

    def _json(self, data: str) -> dict[str, Any]:
        try:
            value = json.loads(data)
        except ValueError:
            raise self._not_chat("data that is not JSON") from None
        if not isinstance(value, dict):
            raise self._not_chat("JSON that is not an object")
        return value

    def _not_chat(self, what: str) -> NotChatCompletionsError:
        return NotChatCompletionsError(
            f"{self.config.endpoint} answered with {what}, not OpenAI chat completions; "
            "check that --llm is the API base of an OpenAI-compatible server "
            "(e.g. http://localhost:8000/v1)",
            provider=PROVIDER,
        )


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error)
