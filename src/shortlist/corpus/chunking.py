"""Splitting documents into passages that fit the encoder's window.

The default dense encoder (all-MiniLM-L6-v2) reads 256 word-piece tokens, ``[CLS]`` and
``[SEP]`` included, and silently truncates the rest. `Chunker` therefore cuts each
document into windows of at most ``size`` units (model tokens by default, or words)
where consecutive windows share up to ``overlap`` units, so a sentence cut at one
window's edge is read whole by the next. A document of at most ``size`` units is never
split. The defaults (`DEFAULT_CHUNK_SIZE` tokens of the default encoder's tokenizer,
`DEFAULT_CHUNK_OVERLAP` overlap) were chosen by the sweep in docs/RESULTS.md
("Relevance defaults"): splitting documents that fit the window cost nDCG@10 there.

Where a window ends is chosen among the last quarter of its units, preferring (best
first) a paragraph break, the end of a sentence, a line break, then any gap between
words; among equals the latest one wins, and with no such break the window is cut at
exactly ``size`` units. The shortest window that is not the last has
``max(overlap + 1, size - size // 4)`` units, so every window moves forward.

Where the next window starts is chosen among the last ``overlap`` units of the previous
one: the earliest unit that starts a sentence or paragraph, else the earliest that
starts a word, else exactly ``overlap`` units back (text without spaces). So a passage
never begins inside a word or right after a comma when a word start is within reach;
the overlap is then a little under ``overlap`` units.

Structure (documents with `Document.regions`, from the HTML, PDF, DOCX and Markdown
readers): consecutive regions with the same location (heading path, page) are chunked
as one stretch, and no passage spans two locations, so each passage carries one
``section`` (the heading path joined by " › ") and/or ``page`` in its metadata, plus
``char_start``/``char_end``, its offsets into the document's extracted text. A window
never ends inside a region marked ``whole`` (a code block) that fits in a window: it
ends before the block instead.

Guarantees, for every document:

- ``doc.text[p.start:p.end] == p.text`` for every passage ``p``;
- every non-whitespace character of ``doc.text`` is in at least one passage (with
  regions: every one inside a region);
- passages are in text order and numbered ``f"{doc.id}#{i}"`` from 0, even when there is
  only one, so a passage id never depends on the document's length (and
  ``passage_id.rsplit("#", 1)[0]`` is the document id even when that contains ``#``);
- ``doc_id`` and ``title`` are the document's, and so is ``metadata`` for a document
  without regions (with regions, the location keys above are added).

A document whose text is only whitespace gives no passages (the readers reject such
documents before they get here). With ``unit="words"`` a word is a run of
non-whitespace characters, so text without spaces (Chinese, Japanese) forms one long
"word"; use ``unit="tokens"`` for such corpora.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shortlist.errors import InvalidInputError
from shortlist.types import SECTION_SEPARATOR, Document, Passage, Region

Unit = Literal["words", "tokens"]
UNITS: tuple[Unit, ...] = ("words", "tokens")

DEFAULT_CHUNK_UNIT: Unit = "tokens"
DEFAULT_CHUNK_SIZE = 254
"""all-MiniLM-L6-v2's 256-token window less ``[CLS]`` and ``[SEP]``."""
DEFAULT_CHUNK_OVERLAP = 32

_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]]*$")

# Break quality of the gap after a unit; higher is a better place to end a window.
_NO_GAP, _WORD_GAP, _LINE_BREAK, _SENTENCE, _PARAGRAPH = range(5)


@dataclass(frozen=True)
class Chunker:
    """Cuts documents into overlapping passages of at most ``size`` words or tokens.

    ``unit="tokens"`` counts the tokens of a Hugging Face fast tokenizer loaded from the
    local path ``tokenizer`` (a ``tokenizer.json`` file or a model folder); when
    ``tokenizer`` is None the default dense model's tokenizer is used
    (`shortlist.retrieve.encoder.default_model_path`). Special tokens (``[CLS]``,
    ``[SEP]``) are not counted: leave room for them and the query when picking ``size``.

    Raises `InvalidInputError` unless ``size > overlap >= 0``, for an unknown ``unit``,
    or when ``tokenizer`` is given with ``unit="words"``.
    """

    size: int = DEFAULT_CHUNK_SIZE
    overlap: int = DEFAULT_CHUNK_OVERLAP
    unit: Unit = DEFAULT_CHUNK_UNIT
    tokenizer: str | None = None
    _tok: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise InvalidInputError(
                f"unknown chunk unit {self.unit!r}; choose one of: {', '.join(UNITS)}"
            )
        for name in ("size", "overlap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInputError(f"chunk {name} must be an integer, got {value!r}")
        if self.size < 1:
            raise InvalidInputError(f"chunk size must be at least 1, got {self.size}")
        if self.overlap < 0:
            raise InvalidInputError(f"chunk overlap must be 0 or more, got {self.overlap}")
        if self.overlap >= self.size:
            raise InvalidInputError(
                f"chunk overlap ({self.overlap}) must be smaller than the chunk size "
                f"({self.size}); lower the overlap or raise the size"
            )
        if self.tokenizer is not None and self.unit != "tokens":
            raise InvalidInputError(
                "a tokenizer is only used with unit='tokens'; set unit='tokens' or drop it"
            )

    def chunk(self, doc: Document) -> list[Passage]:
        """The passages of one document, in text order."""
        text = doc.text
        if not doc.regions:
            return [
                _passage(doc, i, start, end, doc.metadata)
                for i, (start, end) in enumerate(self._cut(text, 0, len(text), ()))
            ]
        passages: list[Passage] = []
        for run in _location_runs(doc.regions):
            first, last = run[0], run[-1]
            whole = tuple((r.start, r.end) for r in run if r.whole)
            located: dict[str, Any] = dict(doc.metadata)
            if first.section:
                located["section"] = SECTION_SEPARATOR.join(first.section)
            if first.page is not None:
                located["page"] = first.page
            for start, end in self._cut(text, first.start, last.end, whole):
                metadata = {**located, "char_start": start, "char_end": end}
                passages.append(_passage(doc, len(passages), start, end, metadata))
        return passages

    def _cut(
        self, text: str, lo: int, hi: int, whole: tuple[tuple[int, int], ...]
    ) -> list[tuple[int, int]]:
        """Character ranges of the windows over ``text[lo:hi]``, stripped of whitespace."""
        stretch = text[lo:hi]
        first = lo + len(stretch) - len(stretch.lstrip())
        last = lo + len(stretch.rstrip())
        if first >= last:
            return []
        # A tokenizer that drops every character still must not lose the text.
        spans = [(lo + a, lo + b) for a, b in self._spans(stretch)] or [(first, last)]
        kept = _kept_gaps(spans, whole)
        out = []
        n = len(spans)
        for w_lo, w_hi in self._windows(text, spans, kept):
            start = first if w_lo == 0 else spans[w_lo][0]
            end = last if w_hi == n else _end_before_gap(text, spans[w_hi - 1][1], spans[w_hi][0])
            out.append((start, end))
        return out

    def chunk_many(self, docs: Iterable[Document]) -> Iterator[Passage]:
        """The passages of every document, streamed in document order."""
        for doc in docs:
            yield from self.chunk(doc)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters, for an index manifest; `from_dict` reverses it."""
        return {
            "unit": self.unit,
            "size": self.size,
            "overlap": self.overlap,
            "tokenizer": self.tokenizer,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunker:
        """A chunker from `to_dict` output. Raises `InvalidInputError` on unknown keys."""
        unknown = set(data) - {"unit", "size", "overlap", "tokenizer"}
        if unknown:
            raise InvalidInputError(
                f"unknown chunker settings: {', '.join(sorted(unknown))}; "
                "expected unit, size, overlap, tokenizer"
            )
        return cls(**data)

    # ------------------------------------------------------------------ internals

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the units of `text`, in order."""
        if self.unit == "words":
            return [m.span() for m in _WORD.finditer(text)]
        encoding = self._tokenizer().encode(text, add_special_tokens=False)
        spans: list[tuple[int, int]] = []
        prev_end = 0
        for lo, hi in encoding.offsets:
            # Byte-level tokenizers can give several tokens one character. Every token
            # still counts towards the size; overlapping spans are clipped (possibly to
            # empty) so that spans stay ordered and windows map to text ranges.
            lo = max(lo, prev_end)
            hi = max(hi, lo)
            spans.append((lo, hi))
            prev_end = hi
        return spans

    def _tokenizer(self) -> Any:
        if self._tok is None:
            from shortlist.corpus.tokenizer import load_tokenizer

            path = self.tokenizer
            if path is None:
                from shortlist.retrieve.encoder import default_model_path

                path = default_model_path()
            object.__setattr__(self, "_tok", load_tokenizer(path))
        return self._tok

    def _windows(
        self, text: str, spans: list[tuple[int, int]], kept: list[bool]
    ) -> Iterator[tuple[int, int]]:
        """Half-open unit ranges [lo, hi) of the windows; ``kept[u]`` forbids a cut
        between units u and u + 1 (inside a block kept whole)."""
        n = len(spans)
        shortest = max(self.overlap + 1, self.size - self.size // 4)
        lo = 0
        while True:
            hi = min(lo + self.size, n)
            if hi < n:
                hi = _best_break(text, spans, kept, lo + shortest, hi, lo + self.overlap + 1)
            yield lo, hi
            if hi >= n:
                return
            lo = _next_start(text, spans, kept, hi - self.overlap, hi)


def _passage(
    doc: Document, number: int, start: int, end: int, metadata: Mapping[str, Any]
) -> Passage:
    """Passage `number` of `doc` (id ``DOC_ID#number``): its text from `start` to `end`."""
    return Passage(
        id=f"{doc.id}#{number}",
        doc_id=doc.id,
        text=doc.text[start:end],
        start=start,
        end=end,
        title=doc.title,
        metadata=metadata,
    )


def _break_quality(text: str, spans: list[tuple[int, int]], after: int) -> int:
    """How good a place to end a window the gap after unit `after` is."""
    gap = text[spans[after][1] : spans[after + 1][0]]
    if not gap or not gap.isspace():
        return _NO_GAP if not gap else _WORD_GAP
    newlines = gap.count("\n")
    if newlines >= 2:
        return _PARAGRAPH
    if _SENTENCE_END.search(text[spans[after][0] : spans[after][1]]):
        return _SENTENCE
    return _LINE_BREAK if newlines else _WORD_GAP


def _best_break(
    text: str,
    spans: list[tuple[int, int]],
    kept: list[bool],
    lowest: int,
    highest: int,
    floor: int,
) -> int:
    """The window end in [lowest, highest] with the best break, latest among equals.

    A cut inside a block kept whole is not a break. When the whole range lies inside
    such a block, the window ends before the block (the latest word gap down to
    ``floor``) so the block starts the next window; with no gap there either, it is cut
    at ``highest``."""
    best_end, best_quality = highest, -1
    for end in range(highest, lowest - 1, -1):
        if kept[end - 1]:
            continue
        quality = _break_quality(text, spans, end - 1)
        if quality > best_quality:
            best_end, best_quality = end, quality
            if quality == _PARAGRAPH:
                break
    if best_quality >= 0:
        return best_end
    for end in range(lowest - 1, floor - 1, -1):
        if not kept[end - 1] and _break_quality(text, spans, end - 1) >= _WORD_GAP:
            return end
    return highest


def _next_start(
    text: str, spans: list[tuple[int, int]], kept: list[bool], lowest: int, below: int
) -> int:
    """Where the next window starts, in [lowest, below]: the earliest sentence or
    paragraph start, else the earliest word start, else ``lowest``."""
    candidates = [
        (u, _break_quality(text, spans, u - 1))
        for u in range(max(lowest, 1), below)
        if not kept[u - 1]
    ]
    for least in (_SENTENCE, _WORD_GAP):
        for unit, quality in candidates:
            if quality >= least:
                return unit
    return lowest


def _kept_gaps(spans: list[tuple[int, int]], whole: tuple[tuple[int, int], ...]) -> list[bool]:
    """``kept[u]``: the gap after unit u lies inside a block kept whole (the last unit's
    entry is False: the stretch ends there anyway)."""
    kept = [False] * len(spans)
    if not whole:
        return kept
    for u in range(len(spans) - 1):
        gap_start, gap_end = spans[u][1], spans[u + 1][0]
        kept[u] = any(a < gap_start and gap_end < b for a, b in whole)
    return kept


def _location_runs(regions: tuple[Region, ...]) -> list[list[Region]]:
    """Consecutive regions grouped by location (heading path, page)."""
    runs: list[list[Region]] = []
    for region in regions:
        if runs and runs[-1][-1].location == region.location:
            runs[-1].append(region)
        else:
            runs.append([region])
    return runs


def _end_before_gap(text: str, unit_end: int, next_start: int) -> int:
    """Extend a window's end over characters between two units that no unit covers
    (a tokenizer can drop control characters), stopping before trailing whitespace, so
    no non-whitespace character falls between two windows."""
    gap = text[unit_end:next_start]
    return unit_end + len(gap.rstrip())
