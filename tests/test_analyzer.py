from __future__ import annotations

import os

import pytest

from shortlist.errors import InvalidInputError
from shortlist.retrieve.analyzer import ENGLISH_STOPWORDS, Analyzer


def lee_background() -> list[str]:
    gensim = pytest.importorskip("gensim")
    path = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data", "lee_background.cor")
    with open(path, encoding="latin-1") as fh:
        return [line.strip() for line in fh if line.strip()]


def test_lowercases_splits_drops_stopwords_and_one_char_tokens_and_stems() -> None:
    text = "The Cats were RUNNING to a café, x-ray 42 and I_O!"
    # "the", "to", "a", "and" are stopwords; "x" is one character; "were" is not a stopword
    # in Lucene's list; "running" -> "run", "cats" -> "cat".
    assert Analyzer().analyze(text) == ["cat", "were", "run", "café", "ray", "42", "i_o"]


def test_without_stemming_or_stopwords() -> None:
    analyzer = Analyzer(stem=False, stopwords=None)
    assert analyzer.analyze("The cats are running") == ["the", "cats", "are", "running"]


def test_analyze_many_equals_analyze_one_by_one() -> None:
    texts = ["Running dogs and cats.", "", "the THE the", "Dogs ran; a dog runs."]
    analyzer = Analyzer()
    assert analyzer.analyze_many(texts) == [analyzer.analyze(t) for t in texts]
    assert analyzer.analyze_many(texts)[1:3] == [[], []]


def test_string_instead_of_list_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="sequence of texts"):
        Analyzer().analyze_many("one text")  # type: ignore[arg-type]


def test_config_round_trips_through_dict() -> None:
    for analyzer in (Analyzer(), Analyzer(language="german", stopwords=None, stem=False)):
        assert Analyzer.from_dict(analyzer.to_dict()) == analyzer


def test_unknown_stopwords_language_and_pattern_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="stopword list"):
        Analyzer(stopwords="klingon")
    with pytest.raises(InvalidInputError, match="stemmer language"):
        Analyzer(language="klingon")
    bad = dict(Analyzer().to_dict(), token_pattern=r"\w+")
    with pytest.raises(InvalidInputError, match="token_pattern"):
        Analyzer.from_dict(bad)


def test_identical_to_bm25s_tokenizer_on_lee_corpus() -> None:
    bm25s = pytest.importorskip("bm25s")
    stemmer_module = pytest.importorskip("Stemmer")
    texts = lee_background()
    expected = bm25s.tokenize(
        texts,
        stopwords="en",
        stemmer=stemmer_module.Stemmer("english"),
        return_ids=False,
        show_progress=False,
    )
    assert Analyzer().analyze_many(texts) == expected
    assert ENGLISH_STOPWORDS == frozenset(bm25s.stopwords.STOPWORDS_EN)
