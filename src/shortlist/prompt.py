"""Packing the top passages into an LLM prompt under a token budget, with citations.

`pack_prompt` takes hits in rank order and numbers each passage with where it came
from, so the model can cite it::

    [1] (guide.pdf p. 12)
    passage text

    [2] (guide.html § Installation › Upgrading)
    passage text

    [3] (doc: DOC_ID)
    passage text

The place is `shortlist.types.citation_label` (re-exported here): the page of a PDF,
the heading path of an HTML, Markdown or DOCX section, else the document id. Every
consumer of hits (``search --format prompt``, the server's ``citation`` field, answers
with citations) uses that one function, so they all cite alike.

Rank order is strict: passages are added best first, and at the first one that does not
fit, it and every passage after it are dropped, even if a later, shorter one would fit.
Skipping ahead would let a lower-ranked passage displace the context of a better one and
make the citation numbers disagree with the ranking; a caller who prefers filling the
budget can pass fewer, or shorter, hits. With ``truncate_last=True`` the first passage
that does not fit is cut at a word boundary (marked ``[...]``) to fill what is left.

Token counts come from ``count_tokens``, or from a local Hugging Face tokenizer
(``tokenizer=`` path), or by default from `shortlist.corpus.tokenizer.estimate_tokens`,
a cheap estimate without dependencies that leans high. Every count is taken on the full
prompt text, so the budget holds exactly for the counter in use.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shortlist.corpus.tokenizer import estimate_tokens, load_tokenizer, token_counter
from shortlist.errors import InvalidInputError
from shortlist.types import Hit, Ranking, citation_label

__all__ = [
    "DEFAULT_TEMPLATE",
    "TRUNCATION_MARK",
    "PackedPrompt",
    "citation_label",
    "pack_prompt",
]

DEFAULT_TEMPLATE = (
    "Answer the question using only the numbered passages below. "
    "Cite the passages you use by their number, like [1].\n\n"
    "{context}\n\n"
    "Question: {query}\n"
    "Answer:"
)
"""The default prompt. A template has a ``{context}`` and may have a ``{query}`` field."""

TRUNCATION_MARK = " [...]"

@dataclass(frozen=True, slots=True)
class PackedPrompt:
    """A packed prompt: its text, the hits in it (in order), those left out, and its size.

    ``included[i]`` is cited as ``[i + 1]``. ``truncated`` is True when the last included
    hit was cut to fit (its text in ``text`` is shortened; the hit itself is unchanged).
    ``tokens`` is the count of ``text`` by the counter used, never more than ``budget``.
    """

    text: str
    included: tuple[Hit, ...]
    dropped: tuple[Hit, ...]
    tokens: int
    budget: int
    truncated: bool = False

    @property
    def citations(self) -> dict[int, str]:
        """Citation number -> document id."""
        return {i: hit.doc_id for i, hit in enumerate(self.included, start=1)}

    @property
    def labels(self) -> dict[int, str]:
        """Citation number -> where the passage is (`citation_label`: page or section)."""
        return {i: citation_label(hit) for i, hit in enumerate(self.included, start=1)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tokens": self.tokens,
            "budget": self.budget,
            "truncated": self.truncated,
            "citations": [
                {"number": i, "doc_id": hit.doc_id, "id": hit.id, "label": citation_label(hit)}
                for i, hit in enumerate(self.included, start=1)
            ],
            "included": [hit.to_dict() for hit in self.included],
            "dropped": [hit.to_dict() for hit in self.dropped],
        }


def pack_prompt(
    query: str,
    hits: Sequence[Hit] | Ranking,
    *,
    budget_tokens: int = 2000,
    count_tokens: Callable[[str], int] | None = None,
    tokenizer: str | Path | None = None,
    template: str | None = None,
    truncate_last: bool = False,
) -> PackedPrompt:
    """Fill ``template`` with ``query`` and as many hits, in rank order, as fit the budget.

    Raises `InvalidInputError` for an empty query, a budget below 1, a template without
    ``{context}`` or with other fields, both ``count_tokens`` and ``tokenizer`` given, or
    a budget too small for the prompt with no passage in it.
    """
    if not query.strip():
        raise InvalidInputError("the query is empty; pass the question the prompt is for")
    if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int) or budget_tokens < 1:
        raise InvalidInputError(f"budget_tokens must be a positive integer, got {budget_tokens!r}")
    if count_tokens is not None and tokenizer is not None:
        raise InvalidInputError("give count_tokens or tokenizer, not both")
    count = count_tokens or _counter(tokenizer)
    layout = _checked_template(template if template is not None else DEFAULT_TEMPLATE)
    ranked = tuple(hits.hits if isinstance(hits, Ranking) else hits)

    def render(blocks: list[str]) -> str:
        return layout.format(query=query, context="\n\n".join(blocks))

    empty = render([])
    empty_tokens = count(empty)
    if empty_tokens > budget_tokens:
        raise InvalidInputError(
            f"the prompt without any passage already takes {empty_tokens} tokens, more than "
            f"the budget of {budget_tokens}; raise budget_tokens or shorten the template/query"
        )

    blocks: list[str] = []
    text, tokens, truncated, n_in = empty, empty_tokens, False, 0
    for position, hit in enumerate(ranked):
        number = position + 1
        candidate = render([*blocks, _block(number, hit, hit.text)])
        candidate_tokens = count(candidate)
        if candidate_tokens <= budget_tokens:
            blocks.append(_block(number, hit, hit.text))
            text, tokens, n_in = candidate, candidate_tokens, number
            continue
        if truncate_last:
            cut = _truncate_to_fit(render, blocks, number, hit, count, budget_tokens)
            if cut is not None:
                (text, tokens), truncated, n_in = cut, True, number
        break
    return PackedPrompt(
        text=text,
        included=ranked[:n_in],
        dropped=ranked[n_in:],
        tokens=tokens,
        budget=budget_tokens,
        truncated=truncated,
    )


def _block(number: int, hit: Hit, text: str) -> str:
    label = citation_label(hit)
    # A bare id says what it is; a place (file, page, section) speaks for itself.
    where = f"doc: {label}" if label == hit.doc_id else label
    return f"[{number}] ({where})\n{text}"


def _truncate_to_fit(
    render: Callable[[list[str]], str],
    blocks: list[str],
    number: int,
    hit: Hit,
    count: Callable[[str], int],
    budget: int,
) -> tuple[str, int] | None:
    """The longest word-prefix of the hit's text that fits, as (prompt, tokens), or None
    when not even one word does. Binary search: token counts grow with the prefix."""
    words = list(re.finditer(r"\S+", hit.text))

    def attempt(n_words: int) -> tuple[str, int]:
        prefix = hit.text[: words[n_words - 1].end()] + TRUNCATION_MARK
        prompt = render([*blocks, _block(number, hit, prefix)])
        return prompt, count(prompt)

    best: tuple[str, int] | None = None
    lo, hi = 1, len(words) - 1  # all words did not fit, or we would not be here
    while lo <= hi:
        mid = (lo + hi) // 2
        prompt, tokens = attempt(mid)
        if tokens <= budget:
            best, lo = (prompt, tokens), mid + 1
        else:
            hi = mid - 1
    return best


def _counter(tokenizer: str | Path | None) -> Callable[[str], int]:
    if tokenizer is None:
        return estimate_tokens
    return token_counter(load_tokenizer(tokenizer))


def _checked_template(template: str) -> str:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise InvalidInputError(
            f"bad prompt template ({exc}); write literal braces as {{{{ and }}}}"
        ) from None
    if "context" not in fields:
        raise InvalidInputError("the prompt template needs a {context} field for the passages")
    unknown = fields - {"context", "query"}
    if unknown:
        raise InvalidInputError(
            f"unknown prompt template fields: {', '.join(sorted(unknown))}; only {{context}} "
            "and {query} are filled (write literal braces as {{ and }})"
        )
    return template
