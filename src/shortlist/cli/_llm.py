"""The LLM options shared by `shortlist ask`, `serve` and `ui`, read at the CLI's edge.

The key is read from the environment variable `--llm-key-env` names (`OPENAI_API_KEY` by
default), never from the command line, so it stays out of shell history and `ps`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from shortlist.errors import InvalidInputError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_KEY_ENV = "OPENAI_API_KEY"


def llm_options(*, required: bool) -> Callable[[F], F]:
    """`--llm URL --llm-model NAME --llm-key-env NAME --llm-timeout S --llm-retries N
    --price-in USD --price-out USD`; `required`: `--llm` and `--llm-model` must be given."""

    def decorate(f: F) -> F:
        options = [
            click.option(
                "--llm",
                "llm_url",
                required=required,
                metavar="URL",
                help="OpenAI-compatible API base, e.g. http://localhost:8000/v1 (vLLM), "
                "http://localhost:8080/v1 (llama.cpp), http://localhost:11434/v1 (Ollama).",
            ),
            click.option(
                "--llm-model",
                "llm_model",
                required=required,
                metavar="NAME",
                help="Model name the LLM server serves.",
            ),
            click.option(
                "--llm-key-env",
                "llm_key_env",
                default=DEFAULT_KEY_ENV,
                show_default=True,
                metavar="NAME",
                help="Environment variable holding the LLM API key (if any).",
            ),
            click.option(
                "--llm-timeout",
                "llm_timeout",
                default=60.0,
                show_default=True,
                type=click.FloatRange(min=0, min_open=True),
                help="Seconds to wait for each piece of the answer.",
            ),
            click.option(
                "--llm-retries",
                "llm_retries",
                default=2,
                show_default=True,
                type=click.IntRange(min=0),
                help="Retries before the answer starts (refused connection, 429, 5xx).",
            ),
            click.option(
                "--price-in",
                "price_in",
                default=None,
                type=click.FloatRange(min=0),
                metavar="USD",
                help="USD per million prompt tokens, for the cost line.",
            ),
            click.option(
                "--price-out",
                "price_out",
                default=None,
                type=click.FloatRange(min=0),
                metavar="USD",
                help="USD per million completion tokens, for the cost line.",
            ),
        ]
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def chat_config(
    llm_url: str | None,
    llm_model: str | None,
    llm_key_env: str,
    llm_timeout: float,
    llm_retries: int,
) -> Any:
    """The `ChatConfig` the options describe, or None without `--llm`."""
    from shortlist.generate.chat import ChatConfig
    from shortlist.rerank.api.http import RetryPolicy

    if llm_url is None:
        if llm_model is not None:
            raise InvalidInputError("--llm-model needs --llm URL: the server to ask")
        return None
    if llm_model is None:
        raise InvalidInputError("--llm needs --llm-model NAME: the model to ask")
    return ChatConfig(
        llm_url,
        llm_model,
        api_key=os.environ.get(llm_key_env) or None,
        timeout_s=llm_timeout,
        retry=RetryPolicy(max_retries=llm_retries),
    )


def price(price_in: float | None, price_out: float | None) -> Any:
    """The `Price` of `--price-in/--price-out` (both or neither), or None."""
    from shortlist.generate.cost import Price

    if price_in is None and price_out is None:
        return None
    if price_in is None or price_out is None:
        raise InvalidInputError("give both --price-in and --price-out (USD per million tokens)")
    return Price(price_in, price_out)
