"""Text analysis for BM25: lowercase, regex tokens, stopword removal, Snowball stemming.

The pipeline is the one bm25s uses (`bm25s.tokenize`), so indexes built by either tool see
the same terms:

1. lowercase the text;
2. split with the scikit-learn ``CountVectorizer`` pattern ``(?u)\\b\\w\\w+\\b`` (words of two
   or more word characters; one-character tokens are dropped);
3. drop stopwords (matched on the lowercased, unstemmed word);
4. stem with the Snowball stemmer of `language` (PyStemmer).

Stemming is the expensive step, so `analyze_many` stems each distinct word of the batch once
and maps the rest through a dictionary.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from shortlist.errors import InvalidInputError

TOKEN_PATTERN = r"(?u)\b\w\w+\b"

# Lucene's `EnglishAnalyzer.ENGLISH_STOP_WORDS_SET` (33 words); bm25s ships the same list as
# `bm25s.stopwords.STOPWORDS_EN`, and Pyserini's default English analyzer uses it too.
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split()
)

STOPWORD_LISTS: Mapping[str, frozenset[str]] = {"english": ENGLISH_STOPWORDS}

_SPLIT = re.compile(TOKEN_PATTERN).findall
_CHUNK = 2048

# PyStemmer's Stemmer objects are not thread-safe, so each thread gets its own.
_STEMMERS = threading.local()


def _stem_words(language: str) -> Callable[[list[str]], list[str]]:
    cache: dict[str, Any] | None = getattr(_STEMMERS, "by_language", None)
    if cache is None:
        cache = {}
        _STEMMERS.by_language = cache
    stemmer = cache.get(language)
    if stemmer is None:
        import Stemmer

        stemmer = Stemmer.Stemmer(language)
        cache[language] = stemmer
    stem_words: Callable[[list[str]], list[str]] = stemmer.stemWords
    return stem_words


def _known_languages() -> list[str]:
    import Stemmer

    return sorted(Stemmer.algorithms())


@dataclass(frozen=True)
class Analyzer:
    """Turns text into BM25 terms. Immutable and safe to share between threads.

    Args:
        language: Snowball stemmer language (any name `Stemmer.algorithms()` lists).
        stopwords: name of a shipped stopword list (see `STOPWORD_LISTS`), or None for none.
        stem: stem terms with the Snowball stemmer of `language`.

    Raises:
        InvalidInputError: unknown stopword list or stemmer language.
    """

    language: str = "english"
    stopwords: str | None = "english"
    stem: bool = True
    _stopword_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.stopwords is None:
            words: frozenset[str] = frozenset()
        elif self.stopwords in STOPWORD_LISTS:
            words = STOPWORD_LISTS[self.stopwords]
        else:
            raise InvalidInputError(
                f"unknown stopword list {self.stopwords!r}; "
                f"use one of {sorted(STOPWORD_LISTS)} or None"
            )
        if self.stem and self.language not in _known_languages():
            raise InvalidInputError(
                f"unknown stemmer language {self.language!r}; "
                f"use one of {', '.join(_known_languages())}, or stem=False"
            )
        object.__setattr__(self, "_stopword_set", words)

    def analyze(self, text: str) -> list[str]:
        """The terms of one text, in order, duplicates kept."""
        return self.analyze_many([text])[0]

    def analyze_many(self, texts: Sequence[str]) -> list[list[str]]:
        """The terms of each text. Each distinct word is stemmed once per call."""
        if isinstance(texts, str):
            raise InvalidInputError("analyze_many expects a sequence of texts, not one string")
        stem_words = _stem_words(self.language) if self.stem else None
        # word -> term; stopwords map to None. Shared across chunks, so every distinct word
        # of the call is stemmed exactly once and every term is one shared string.
        term_of: dict[str, str | None] = dict.fromkeys(self._stopword_set)
        lookup = term_of.get
        out: list[list[str]] = []
        # Chunks bound memory: one str object per word occurrence lives only for a chunk.
        for at in range(0, len(texts), _CHUNK):
            words = [_SPLIT(text.lower()) for text in texts[at : at + _CHUNK]]
            new = set(chain.from_iterable(words)).difference(term_of)
            if new:
                vocab = list(new)
                terms = vocab if stem_words is None else stem_words(vocab)
                term_of.update(zip(vocab, terms, strict=True))
            # `get` gives None for stopwords and `filter` drops them (a term is never empty:
            # words have >= 2 characters).
            out.extend(list(filter(None, map(lookup, ws))) for ws in words)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description, for index manifests."""
        return {
            "language": self.language,
            "stopwords": self.stopwords,
            "stem": self.stem,
            "token_pattern": TOKEN_PATTERN,
            "lowercase": True,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Analyzer:
        """Rebuild an analyzer written by `to_dict`.

        Raises:
            InvalidInputError: the description asks for a token pattern or casing this
                version does not implement, or names an unknown language or stopword list.
        """
        pattern = d.get("token_pattern", TOKEN_PATTERN)
        if pattern != TOKEN_PATTERN or not d.get("lowercase", True):
            raise InvalidInputError(
                f"analyzer with token_pattern={pattern!r}, lowercase={d.get('lowercase')!r} "
                f"is not supported; only {TOKEN_PATTERN!r} with lowercasing is"
            )
        return cls(
            language=str(d.get("language", "english")),
            stopwords=d.get("stopwords", "english"),
            stem=bool(d.get("stem", True)),
        )
