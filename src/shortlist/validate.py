"""Text validation: the one check every document and query goes through on the way in.

Python strings can hold text that no file, tokenizer or JSON response can carry: a lone
UTF-16 surrogate (U+D800..U+DFFF, e.g. from a JSON `"\\udfff"` escape or a file decoded
with `surrogateescape`) cannot be encoded as UTF-8. Such text is rejected where it
enters (corpus readers, `Document`, the CLI, the HTTP routes, rerankers), with an error
naming the field and the position, never deep inside a tokenizer or a response encoder.

- `check_text(value, field)`: a string encodable as UTF-8 (it may be blank).
- `check_query(value, field)`: the same, and not blank.
- `check_strings(value, field)`: every string inside a JSON-like value (metadata).
- `check_candidates(query, texts)`: a reranker's input, `documents[i]` named on error.

Every error is an `InvalidTextError` (an `InvalidInputError`: exit code 2, HTTP 422).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shortlist.errors import InvalidInputError

__all__ = [
    "NOT_BLANK_PATTERN",
    "InvalidTextError",
    "check_candidates",
    "check_query",
    "check_strings",
    "check_text",
    "text_problem",
]


NOT_BLANK_PATTERN = (
    "[^\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000]"
)
"""A regular expression (JSON Schema / ECMA-262 and Python `re` alike) that text matches
when it is not blank: one character that is not whitespace as `str.isspace` defines it
(which is what `check_query` uses; the `\\s` of the two languages differ, so it is spelt
out)."""


class InvalidTextError(InvalidInputError):
    """A text that cannot enter the system; `field` names where it was found."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def text_problem(value: object, *, blank_ok: bool = True, what: str = "text") -> str | None:
    """What is wrong with `value` as text (None when nothing is); `what` starts the message.

    The message never contains the offending character itself (it could not be
    printed or sent), only its escaped code point and position.
    """
    if not isinstance(value, str):
        return f"{what} must be a string, got {type(value).__name__}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Only surrogate code points fail to encode as UTF-8.
        bad = ord(value[exc.start])
        return (
            f"{what} contains a lone surrogate \\u{bad:04x} at position {exc.start}, which is "
            "not valid Unicode text; fix the encoding of the source (e.g. decode it as UTF-8) "
            "or remove the character"
        )
    if not blank_ok and not value.strip():
        return f"{what} is empty or only whitespace; give some text"
    return None


def check_text(value: object, field: str, *, what: str = "text") -> str:
    """`value` if it is a string encodable as UTF-8, else `InvalidTextError` naming `field`."""
    problem = text_problem(value, what=what)
    if problem is not None:
        raise InvalidTextError(field, problem)
    assert isinstance(value, str)
    return value


def check_query(value: object, field: str = "query", *, what: str = "text") -> str:
    """`value` if it is a non-blank string encodable as UTF-8, else `InvalidTextError`."""
    problem = text_problem(value, blank_ok=False, what=what)
    if problem is not None:
        raise InvalidTextError(field, problem)
    assert isinstance(value, str)
    return value


def check_strings(value: Any, field: str) -> None:
    """Check every string (keys included) inside a JSON-like value: dicts, lists, scalars."""
    if isinstance(value, str):
        check_text(value, field, what="a value")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                check_text(key, field, what="a key")
            check_strings(item, f"{field}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_strings(item, f"{field}[{i}]")


def check_candidates(query: str, texts: Sequence[str]) -> None:
    """A reranker's input: the query and each candidate text (named `documents[i]`) must be
    valid text. Blank text is allowed here; the CLI and server refuse blank queries."""
    check_text(query, "query")
    for i, text in enumerate(texts):
        check_text(text, f"documents[{i}]")
