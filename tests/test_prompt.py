"""Prompt packing: rank order, citations, the budget, and what was dropped."""

from __future__ import annotations

import json

import pytest

from shortlist.corpus.tokenizer import estimate_tokens
from shortlist.errors import InvalidInputError
from shortlist.prompt import DEFAULT_TEMPLATE, PackedPrompt, citation_label, pack_prompt
from shortlist.types import Hit, Ranking

TEMPLATE = "Q: {query}\n{context}"


def count_words(text: str) -> int:
    return len(text.split())


def hit(doc_id: str, text: str, rank: int) -> Hit:
    return Hit(id=f"{doc_id}#0", doc_id=doc_id, text=text, score=1.0 / rank, rank=rank)


HITS = (
    hit("a", "one two three", 1),  # block "[1] (doc: a)\none two three" = 6 words
    hit("b", "four five", 2),  # 5 words
    hit("c", "six seven eight nine", 3),  # 7 words
)


def pack(budget: int, hits: tuple[Hit, ...] = HITS, **kwargs: object) -> PackedPrompt:
    return pack_prompt(
        "why",
        hits,
        budget_tokens=budget,
        count_tokens=count_words,
        template=TEMPLATE,
        **kwargs,  # type: ignore[arg-type]
    )


def test_everything_fits_in_rank_order_with_citations() -> None:
    packed = pack(100)
    assert packed.text == (
        "Q: why\n"
        "[1] (doc: a)\none two three\n\n"
        "[2] (doc: b)\nfour five\n\n"
        "[3] (doc: c)\nsix seven eight nine"
    )
    assert packed.included == HITS and packed.dropped == ()
    assert (packed.tokens, packed.budget, packed.truncated) == (20, 100, False)
    assert packed.citations == {1: "a", 2: "b", 3: "c"}


def test_budget_drops_the_tail() -> None:
    packed = pack(13)  # header 2 + 6 + 5 = 13; the third needs 7 more
    assert packed.included == HITS[:2] and packed.dropped == HITS[2:]
    assert packed.tokens == 13 == count_words(packed.text)
    assert "six" not in packed.text


def test_stops_at_first_passage_that_does_not_fit() -> None:
    long_first = hit("x", "w " * 50, 1)
    short_next = hit("y", "tiny", 2)
    packed = pack(20, (long_first, short_next))
    # `short_next` alone would fit, but it is not allowed to jump the queue.
    assert packed.included == () and packed.dropped == (long_first, short_next)
    assert packed.text == "Q: why\n" and packed.tokens == 2


def test_truncate_last_fills_the_remaining_budget() -> None:
    packed = pack(18, truncate_last=True)  # 13 used; "[3] (doc: c)" + 1 word + "[...]" = 5
    assert packed.included == HITS and packed.dropped == () and packed.truncated
    assert packed.text.endswith("[3] (doc: c)\nsix [...]")
    assert packed.tokens == 18
    assert packed.included[2].text == "six seven eight nine"  # the hit itself is untouched


def test_truncate_last_drops_when_not_even_one_word_fits() -> None:
    packed = pack(17, truncate_last=True)
    assert packed.included == HITS[:2] and packed.dropped == HITS[2:]
    assert not packed.truncated and packed.tokens == 13


def test_accepts_a_ranking_and_does_not_change_it() -> None:
    ranking = Ranking(query="why", hits=HITS)
    packed = pack_prompt(
        "why", ranking, budget_tokens=13, count_tokens=count_words, template=TEMPLATE
    )
    assert packed.included == HITS[:2]
    assert ranking.hits == HITS


def test_several_passages_of_one_document_are_cited_each() -> None:
    hits = (hit("a", "x y", 1), hit("a", "z", 2))
    packed = pack(100, hits)
    assert "[1] (doc: a)\nx y" in packed.text and "[2] (doc: a)\nz" in packed.text
    assert packed.citations == {1: "a", 2: "a"}


def test_budget_too_small_for_the_header() -> None:
    with pytest.raises(InvalidInputError, match="already takes 2 tokens.*budget of 1"):
        pack(1)


def test_to_dict_is_json() -> None:
    data = json.loads(json.dumps(pack(13).to_dict()))
    assert data["tokens"] == 13 and data["budget"] == 13 and data["truncated"] is False
    assert data["citations"] == [
        {"number": 1, "doc_id": "a", "id": "a#0", "label": "a"},
        {"number": 2, "doc_id": "b", "id": "b#0", "label": "b"},
    ]
    assert [h["doc_id"] for h in data["included"]] == ["a", "b"]
    assert [h["doc_id"] for h in data["dropped"]] == ["c"]


def test_default_template_and_counter() -> None:
    packed = pack_prompt("What happened?", HITS, budget_tokens=200)
    assert packed.included == HITS
    assert packed.text.startswith(DEFAULT_TEMPLATE.split("{context}")[0])
    assert packed.text.endswith("Question: What happened?\nAnswer:")
    assert packed.tokens == estimate_tokens(packed.text) <= 200


def test_estimate_tokens_hand_counts() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("Hello, world!") == 4
    assert estimate_tokens("internationalization") == 4  # 20 letters: 1 + 19 // 6
    assert estimate_tokens("a_b 42") == 4  # a, _, b, 42
    assert estimate_tokens("日本語のテキスト。") == 9  # one per CJK character
    assert estimate_tokens("naïve café") == 2


def test_model_tokenizer_counts_exactly() -> None:
    from shortlist.corpus.tokenizer import load_tokenizer, token_counter
    from shortlist.retrieve.encoder import default_model_path

    path = default_model_path()
    count = token_counter(load_tokenizer(path))
    packed = pack_prompt("why", HITS, budget_tokens=30, tokenizer=path, template=TEMPLATE)
    assert packed.tokens == count(packed.text) <= 30
    assert packed.included  # at least the first passage fits in 30 BERT tokens


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"template": "no passages {query}"}, "needs a {context} field"),
        ({"template": "{context} {other}"}, "unknown prompt template fields: other"),
        ({"template": "{context} {"}, "bad prompt template"),
        ({"budget_tokens": 0}, "positive integer"),
        ({"count_tokens": len, "tokenizer": "/x"}, "not both"),
    ],
)
def test_invalid_arguments(kwargs: dict, needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle.replace("{", r"\{").replace("}", r"\}")):
        pack_prompt("q", HITS, **kwargs)


def test_empty_query() -> None:
    with pytest.raises(InvalidInputError, match="query is empty"):
        pack_prompt("  ", HITS)


def test_braces_in_passages_and_query_are_kept() -> None:
    hits = (hit("a", "set {x} and {}", 1),)
    packed = pack_prompt("{what}?", hits, count_tokens=count_words, template=TEMPLATE)
    assert packed.text == "Q: {what}?\n[1] (doc: a)\nset {x} and {}"


def test_citations_name_the_page_or_section_of_the_source() -> None:
    pdf = Hit(
        id="m.pdf#3", doc_id="m.pdf", text="upload it", score=3.0, rank=1,
        metadata={"source": "docs/m.pdf", "page": 12},
    )
    html = Hit(
        id="g.html#0", doc_id="g.html", text="upgrade it", score=2.0, rank=2,
        metadata={"source": "g.html", "section": "Installation › Upgrading"},
    )
    txt = Hit(
        id="n.txt#0", doc_id="n.txt", text="notes", score=1.0, rank=3,
        metadata={"source": "n.txt"},
    )
    packed = pack_prompt("q", (pdf, html, txt), budget_tokens=100, count_tokens=count_words,
                         template=TEMPLATE)
    assert packed.text == (
        "Q: q\n[1] (docs/m.pdf p. 12)\nupload it\n\n"
        "[2] (g.html § Installation › Upgrading)\nupgrade it\n\n"
        "[3] (doc: n.txt)\nnotes"
    )
    assert packed.labels == {
        1: "docs/m.pdf p. 12", 2: "g.html § Installation › Upgrading", 3: "n.txt"
    }
    assert citation_label(HITS[0]) == "a"  # no source: the document id
    assert pdf.to_dict()["citation"] == "docs/m.pdf p. 12"
