"""An answer with citations: pack the ranked passages into a prompt, stream the LLM's
answer, check its citations, count tokens and cost.

    for event in answer_events(question, ranking, client, budget_tokens=2000):
        ...  # PromptPacked, TextDelta..., Answered

The prompt is `shortlist.prompt.pack_prompt`'s (passages numbered from 1 in rank order,
as many as fit the budget), sent as one user message. `Answered.citations` lists every
number the answer cites, each resolved to the passage it names or flagged as not in the
prompt (`shortlist.generate.citations`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shortlist.generate.chat import ChatClient, Finished, Message, TextDelta
from shortlist.generate.citations import Citation, resolve_citations
from shortlist.generate.cost import Price, Usage
from shortlist.prompt import PackedPrompt, pack_prompt
from shortlist.types import Ranking


@dataclass(frozen=True, slots=True)
class PromptPacked:
    """The prompt about to be sent, and the exact request body that carries it."""

    packed: PackedPrompt
    request: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answered:
    """The whole answer once the stream ended."""

    text: str
    citations: tuple[Citation, ...]
    finish_reason: str | None
    usage: Usage | None
    cost_usd: float | None

    @property
    def flagged(self) -> tuple[Citation, ...]:
        """Citations of passages that were not in the prompt."""
        return tuple(c for c in self.citations if not c.in_prompt)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "citations": [c.to_dict() for c in self.citations],
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict() if self.usage is not None else None,
            "cost_usd": self.cost_usd,
        }


AnswerEvent = PromptPacked | TextDelta | Answered


def prompt_messages(packed: PackedPrompt) -> list[Message]:
    """The chat messages for a packed prompt: one user message holding all of it."""
    return [{"role": "user", "content": packed.text}]


def answer_events(
    question: str,
    ranking: Ranking,
    client: ChatClient,
    *,
    budget_tokens: int = 2000,
    price: Price | None = None,
) -> Iterator[AnswerEvent]:
    """`PromptPacked`, then the answer's `TextDelta`s, then `Answered`.

    Raises `InvalidInputError` (from `pack_prompt`) before anything is sent, and the
    chat client's `ProviderError`s when the LLM fails.
    """
    packed = pack_prompt(question, ranking, budget_tokens=budget_tokens)
    messages = prompt_messages(packed)
    yield PromptPacked(packed, client.request_body(messages))
    parts: list[str] = []
    finished = Finished(None, None)
    for event in client.stream(messages):
        if isinstance(event, TextDelta):
            parts.append(event.text)
            yield event
        else:
            finished = event
    text = "".join(parts)
    usage = finished.usage
    yield Answered(
        text=text,
        citations=tuple(resolve_citations(text, packed.included)),
        finish_reason=finished.reason,
        usage=usage,
        cost_usd=price.cost(usage) if price is not None and usage is not None else None,
    )
