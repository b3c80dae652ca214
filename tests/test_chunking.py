"""Chunking: offsets trace back to the text, nothing is lost, overlap and size hold."""

from __future__ import annotations

import json
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shortlist.corpus.chunking import Chunker
from shortlist.corpus.readers import read_corpus
from shortlist.errors import InvalidInputError, ModelLoadError
from shortlist.types import Document, Passage, Region


def words(text: str) -> list[str]:
    return text.split()


def word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def check_invariants(doc: Document, passages: list[Passage]) -> None:
    covered = [False] * len(doc.text)
    for i, p in enumerate(passages):
        assert p.id == f"{doc.id}#{i}" and p.doc_id == doc.id
        assert doc.text[p.start : p.end] == p.text
        assert p.text == p.text.strip() and p.text
        for c in range(p.start, p.end):
            covered[c] = True
    lost = [ch for ch, cov in zip(doc.text, covered, strict=True) if not cov and not ch.isspace()]
    assert lost == []
    starts = [p.start for p in passages]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


# ------------------------------------------------------------------ hand-worked cases


def test_fixed_windows_with_overlap() -> None:
    doc = Document(id="d", text="w0 w1 w2 w3 w4 w5 w6 w7 w8 w9")
    passages = Chunker(size=4, overlap=1, unit="words").chunk(doc)
    assert [p.text for p in passages] == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
    assert [(p.start, p.end) for p in passages] == [(0, 11), (9, 20), (18, 29)]
    assert [p.id for p in passages] == ["d#0", "d#1", "d#2"]


def test_prefers_sentence_end_near_the_limit() -> None:
    doc = Document(id="d", text="a b c d e f. g h i j k l m n")
    passages = Chunker(size=8, overlap=0, unit="words").chunk(doc)
    assert [p.text for p in passages] == ["a b c d e f.", "g h i j k l m n"]


def test_prefers_paragraph_over_sentence() -> None:
    doc = Document(id="d", text="a b c d e f. g\n\nh i j k l")
    passages = Chunker(size=8, overlap=0, unit="words").chunk(doc)
    assert [p.text for p in passages] == ["a b c d e f. g", "h i j k l"]


def test_break_is_not_searched_too_far_back() -> None:
    # The only sentence end is after word 2; with size 8 the window may end no
    # earlier than after word 6, so it is cut at the size limit instead.
    doc = Document(id="d", text="a b. c d e f g h i j")
    chunker = Chunker(size=8, overlap=0, unit="words")
    assert [p.text for p in chunker.chunk(doc)] == ["a b. c d e f g h", "i j"]


def test_short_document_is_one_passage_numbered_zero() -> None:
    doc = Document(id="d", text="  hello world \n", title="T", metadata={"k": 1})
    (p,) = Chunker(unit="words").chunk(doc)
    assert p == Passage(
        id="d#0", doc_id="d", text="hello world", start=2, end=13, title="T", metadata={"k": 1}
    )


def test_blank_document_gives_no_passages() -> None:
    assert Chunker().chunk(Document(id="d", text=" \n\t")) == []


def test_chunk_many_streams_in_order(data_dir: str) -> None:
    docs = list(read_corpus([os.path.join(data_dir, "lee5.jsonl")]))
    passages = list(Chunker(size=40, overlap=8, unit="words").chunk_many(docs))
    assert [p.doc_id for p in passages] == sorted(p.doc_id for p in passages)
    by_doc = {d.id: d for d in docs}
    for doc_id in by_doc:
        check_invariants(by_doc[doc_id], [p for p in passages if p.doc_id == doc_id])
    assert all(len(words(p.text)) <= 40 for p in passages)
    assert len(passages) > len(docs)  # the Lee documents are longer than 40 words


# ------------------------------------------------------------------ validation and manifest


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"size": 10, "overlap": 10}, "must be smaller than the chunk size"),
        ({"size": 10, "overlap": 20}, "must be smaller than the chunk size"),
        ({"size": 0, "overlap": 0}, "at least 1"),
        ({"size": 10, "overlap": -1}, "0 or more"),
        ({"size": 10.5, "overlap": 1}, "must be an integer"),
        ({"unit": "chars"}, "words, tokens"),
        ({"tokenizer": "/x", "unit": "words"}, "only used with unit='tokens'"),
    ],
)
def test_invalid_settings(kwargs: dict, needle: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(needle)):
        Chunker(**kwargs)


def test_manifest_round_trip() -> None:
    chunker = Chunker(size=128, overlap=16, unit="tokens", tokenizer="/models/x")
    data = json.loads(json.dumps(chunker.to_dict()))
    assert data == {"unit": "tokens", "size": 128, "overlap": 16, "tokenizer": "/models/x"}
    assert Chunker.from_dict(data) == chunker


def test_manifest_with_unknown_key() -> None:
    with pytest.raises(InvalidInputError, match="unknown chunker settings: stride"):
        Chunker.from_dict({"size": 10, "overlap": 0, "stride": 3})


def test_next_window_starts_at_a_sentence_within_the_overlap() -> None:
    doc = Document(id="d", text="a b c d. e f g h i j k")
    passages = Chunker(size=6, overlap=3, unit="words").chunk(doc)
    # 3 words back would be "c"; the sentence "e ..." starts within reach.
    assert [p.text for p in passages] == ["a b c d. e f", "e f g h i j", "h i j k"]


# ------------------------------------------------------------------ structure


def _sectioned() -> Document:
    intro = "Intro words here. More intro."
    install = "Install it with apt. Then configure it."
    code = "```\nline one\nline two\nline three\n```"
    text = f"{intro}\n\n{install}\n\n{code}"
    a = len(intro)
    b = a + 2 + len(install)
    c = b + 2
    return Document(
        id="g.md",
        text=text,
        metadata={"source": "g.md"},
        regions=(
            Region(0, a, section=("Guide",)),
            Region(a + 2, b, section=("Guide", "Install")),
            Region(c, len(text), section=("Guide", "Install"), whole=True),
        ),
    )


def test_passages_never_span_two_sections_and_carry_their_location() -> None:
    doc = _sectioned()
    passages = Chunker(size=50, overlap=0, unit="words").chunk(doc)
    check_invariants(doc, passages)
    assert [p.metadata["section"] for p in passages] == ["Guide", "Guide › Install"]
    assert passages[1].text.startswith("Install it") and passages[1].text.endswith("```")
    for p in passages:
        assert (p.metadata["char_start"], p.metadata["char_end"]) == (p.start, p.end)
        assert p.metadata["source"] == "g.md" and "page" not in p.metadata


def test_a_code_block_that_fits_is_never_cut() -> None:
    doc = _sectioned()
    # 7 words of prose then a 5-word block: 9 would cut inside the block.
    passages = Chunker(size=9, overlap=0, unit="words").chunk(doc)
    check_invariants(doc, passages)
    code = doc.text[doc.regions[2].start :]
    assert any(p.text == code for p in passages)
    assert not any(code in p.text and p.text != code for p in passages[2:])


def test_pages_become_passage_metadata() -> None:
    text = "first page text\n\nsecond page text"
    doc = Document(
        id="x.pdf", text=text, regions=(Region(0, 15, page=1), Region(17, len(text), page=2))
    )
    passages = Chunker(size=50, overlap=0, unit="words").chunk(doc)
    assert [(p.text, p.metadata["page"]) for p in passages] == [
        ("first page text", 1),
        ("second page text", 2),
    ]


def test_regions_must_be_ordered_and_inside_the_text() -> None:
    with pytest.raises(InvalidInputError, match="out of order"):
        Document(id="d", text="abc", regions=(Region(0, 5),))
    with pytest.raises(InvalidInputError, match="out of order"):
        Document(id="d", text="abcdef", regions=(Region(2, 4), Region(0, 1)))


# ------------------------------------------------------------------ properties

_text = st.text(
    alphabet=st.sampled_from(list("ab cd. \n\n!?\té,")), min_size=0, max_size=400
)


@settings(max_examples=150, deadline=None)
@given(text=_text, size=st.integers(1, 12), overlap_frac=st.floats(0, 0.99))
def test_offsets_coverage_size_and_overlap(text: str, size: int, overlap_frac: float) -> None:
    overlap = min(size - 1, int(size * overlap_frac))
    doc = Document(id="doc", text=text)
    passages = Chunker(size=size, overlap=overlap, unit="words").chunk(doc)
    check_invariants(doc, passages)
    spans = word_spans(text)
    assert (passages == []) == (spans == [])
    windows = [[s for s in spans if p.start <= s[0] and s[1] <= p.end] for p in passages]
    assert all(1 <= len(w) <= size for w in windows)
    for left, right in zip(windows, windows[1:], strict=False):
        shared = [s for s in left if s in right]
        assert len(shared) <= overlap  # at most `overlap` words carried over
        assert len(right) > len(shared)  # and every window moves forward
        if len(shared) < overlap:  # only to start at a sentence or paragraph
            before = text[: right[0][0]]
            assert before.rstrip().endswith((".", "!", "?")) or "\n\n" in before[-3:] or (
                before.endswith("\n\n") or re.search(r"\n\s*\n\s*$", before)
            )


@settings(max_examples=100, deadline=None)
@given(
    blocks=st.lists(
        st.tuples(_text, st.integers(0, 2), st.booleans()), min_size=1, max_size=6
    ),
    size=st.integers(1, 12),
    overlap_frac=st.floats(0, 0.99),
)
def test_regions_offsets_coverage_and_locations(
    blocks: list[tuple[str, int, bool]], size: int, overlap_frac: float
) -> None:
    overlap = min(size - 1, int(size * overlap_frac))
    text, regions = "", []
    for body, section, whole in blocks:
        body = body.strip() or "x"
        start = len(text) + (2 if text else 0)
        text += ("\n\n" if text else "") + body
        regions.append(Region(start, len(text), section=(f"s{section}",), whole=whole))
    doc = Document(id="doc", text=text, regions=tuple(regions))
    passages = Chunker(size=size, overlap=overlap, unit="words").chunk(doc)
    check_invariants(doc, passages)
    for p in passages:
        inside = [r for r in regions if r.start < p.end and p.start < r.end]
        assert len({r.section for r in inside}) == 1  # never spans two sections
        assert p.metadata["section"] == inside[0].section[0]
        assert 1 <= len(words(p.text)) <= size


# ------------------------------------------------------------------ model tokens


@pytest.fixture(scope="module")
def model_path() -> str:
    from shortlist.retrieve.encoder import default_model_path

    return default_model_path()


def test_token_windows_fit_the_model_budget(model_path: str, data_dir: str) -> None:
    from shortlist.corpus.tokenizer import load_tokenizer, token_counter

    count = token_counter(load_tokenizer(model_path))
    docs = list(read_corpus([os.path.join(data_dir, "lee5.jsonl")]))
    chunker = Chunker(size=48, overlap=8, unit="tokens", tokenizer=model_path)
    for doc in docs:
        passages = chunker.chunk(doc)
        check_invariants(doc, passages)
        assert all(count(p.text) <= 48 for p in passages)
        assert len(passages) >= count(doc.text) // 48
        # Every window starts at a word, never inside one or at a comma.
        for p in passages[1:]:
            assert doc.text[p.start - 1].isspace(), doc.text[p.start - 10 : p.start + 10]


def test_token_offsets_with_accents_cjk_and_dropped_characters(model_path: str) -> None:
    # The BERT tokenizer strips accents (offsets still point at the original text),
    # splits CJK per character, and drops control characters such as NUL.
    text = "Héllo wörld, naïve café.\x00\x00 日本語のテキスト。 Done!" * 3
    doc = Document(id="u", text=text)
    for overlap in (0, 2):
        passages = Chunker(size=5, overlap=overlap, unit="tokens", tokenizer=model_path).chunk(doc)
        check_invariants(doc, passages)
        assert len(passages) > 3


def test_tokens_unit_defaults_to_the_dense_model_tokenizer(model_path: str) -> None:
    doc = Document(id="d", text="one two three four five six")
    default = Chunker(size=3, overlap=0, unit="tokens").chunk(doc)
    explicit = Chunker(size=3, overlap=0, unit="tokens", tokenizer=model_path).chunk(doc)
    assert default == explicit
    assert [p.text for p in default] == ["one two three", "four five six"]


def test_missing_tokenizer_path(tmp_path: os.PathLike[str]) -> None:
    chunker = Chunker(size=8, overlap=0, unit="tokens", tokenizer=os.path.join(tmp_path, "none"))
    with pytest.raises(ModelLoadError, match="no tokenizer at"):
        chunker.chunk(Document(id="d", text="text"))


# ------------------------------------------------------------------ defaults


def test_default_is_the_encoder_window_in_tokens() -> None:
    from shortlist.corpus.chunking import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE

    chunker = Chunker()
    assert (chunker.unit, chunker.size, chunker.overlap) == (
        "tokens",
        DEFAULT_CHUNK_SIZE,
        DEFAULT_CHUNK_OVERLAP,
    )
    # 256 tokens for all-MiniLM-L6-v2, less [CLS] and [SEP].
    assert DEFAULT_CHUNK_SIZE == 254


_prose = st.lists(
    st.sampled_from(
        ["Cats", "purr.", "The", "naïve", "café", "opened", "at", "nine!", "Why?", "日本語",
         "\n\n", "\n", "tokenisation", "x" * 30, "(see", "§2)."]
    ),
    min_size=1,
    max_size=400,
).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(text=_prose)
def test_default_never_splits_a_document_that_fits(model_path: str, text: str) -> None:
    from shortlist.corpus.tokenizer import load_tokenizer, token_counter

    count = token_counter(load_tokenizer(model_path))
    doc = Document(id="d", text=text, title="T")
    passages = Chunker().chunk(doc)
    check_invariants(doc, passages)  # offsets into the original text are exact
    if not text.strip():
        assert passages == []  # nothing to index (readers reject such documents)
    elif count(text) <= Chunker().size:
        (only,) = passages
        assert only.text == text.strip()
        assert (only.start, only.end) == (len(text) - len(text.lstrip()), len(text.rstrip()))
    else:
        assert len(passages) >= 2
        assert all(count(p.text) <= Chunker().size for p in passages)


def test_default_split_follows_sentence_and_paragraph_boundaries() -> None:
    sentence = "The quick brown fox jumps over the lazy dog near the river bank."  # 14 tokens
    paragraphs = ["  ".join([sentence] * 8) for _ in range(3)]  # ~112 tokens each
    doc = Document(id="d", text="\n\n".join(paragraphs))
    passages = Chunker().chunk(doc)
    check_invariants(doc, passages)
    assert len(passages) == 2
    # The first window ends at a paragraph break, not mid-sentence.
    assert passages[0].text.endswith("bank.")
    assert doc.text[passages[0].end : passages[0].end + 2] == "\n\n"
    assert all(p.text.rstrip().endswith(".") for p in passages)
