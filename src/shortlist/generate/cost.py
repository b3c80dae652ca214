"""Token usage of a chat completion and what it cost."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shortlist.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the server reported them in `usage` (OpenAI's field names)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def from_dict(cls, usage: Any) -> Usage | None:
        """The `usage` object of a response, or None when absent or malformed."""
        if not isinstance(usage, dict):
            return None
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        total = usage.get("total_tokens")
        return cls(prompt, completion, total if isinstance(total, int) else prompt + completion)

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million prompt (input) and completion (output) tokens, as providers list them."""

    input_per_mtok: float
    output_per_mtok: float

    def __post_init__(self) -> None:
        for name, value in (("input", self.input_per_mtok), ("output", self.output_per_mtok)):
            if not (math.isfinite(value) and value >= 0):
                raise InvalidInputError(
                    f"the LLM {name} price must be a number >= 0 (USD per million tokens), "
                    f"got {value}"
                )

    def cost(self, usage: Usage) -> float:
        """`prompt_tokens * input + completion_tokens * output`, per million, in USD."""
        return (
            usage.prompt_tokens * self.input_per_mtok
            + usage.completion_tokens * self.output_per_mtok
        ) / 1e6
