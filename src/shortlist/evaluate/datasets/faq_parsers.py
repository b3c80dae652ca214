"""Question-and-answer pairs out of real FAQ documents, one reader per source format.

Every reader takes the document's text and returns `QA` records in document order; an
entry whose question or answer is empty is skipped. Formats (as shipped by Debian 12):

* POD FAQs (perlfaq1-9, perlunifaq, IO::Compress::FAQ, ...): each ``=head2`` is a question,
  the paragraphs up to the next ``=head1``/``=head2`` its answer (``=head3``+ are folded in).
* The Z-Shell FAQ (plain text, ``FAQ.gz``): ``N.M: question`` lines after the table of
  contents, the answer running to the next ``N.M:`` line or ``Chapter N:`` line.
* gitfaq(7) (AsciiDoc ``gitfaq.txt``): ``[[anchor]]`` then ``Question?::`` then the answer.
* The SQLite FAQ (``faq.html``): ``<p><b>(N) question</b></p>`` then a ``<blockquote>``.
* The Valgrind FAQ (DocBook ``faq.html``): ``<tr class="question">`` then
  ``<tr class="answer">``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shortlist.evaluate.datasets.markup import (
    Element,
    adoc_sections,
    parse_html,
    pod_sections,
    squash,
    text_of,
)


@dataclass(frozen=True)
class QA:
    """One FAQ entry: a stable anchor within its document, the question and the answer's
    plain-text paragraphs."""

    anchor: str
    question: str
    answer: tuple[str, ...]


def _slug(text: str, number: int) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())[:8]
    return f"{number}-" + "-".join(words)


def _keep(entries: list[QA]) -> list[QA]:
    return [e for e in entries if e.question and any(p.strip() for p in e.answer)]


def pod_faq(source: str) -> list[QA]:
    """Entries of a POD FAQ: ``=head2`` questions (see the module docstring)."""
    entries: list[QA] = []
    question: str | None = None
    answer: list[str] = []

    def close() -> None:
        if question is not None:
            entries.append(QA(_slug(question, len(entries) + 1), question, tuple(answer)))

    for section in pod_sections(source):
        if section.level <= 2:
            close()
            question, answer = (section.heading, list(section.paragraphs))
            if section.level == 1:
                question = None
        elif question is not None:
            answer.extend((section.heading, *section.paragraphs))
    close()
    return _keep(entries)


_ZSH_QUESTION = re.compile(r"^(\d+)\.(\d+): (.+)$")
_ZSH_CHAPTER = re.compile(r"^Chapter \d+: ")


def zsh_faq(text: str) -> list[QA]:
    """Entries of the Z-Shell FAQ plain-text edition (``/usr/share/doc/zsh-common/FAQ.gz``).

    The table of contents uses ``N.M.`` (with a dot), the body ``N.M:`` (with a colon), so
    only body lines match. A question may wrap onto following lines up to the blank line.
    """
    entries: list[QA] = []
    lines = text.replace("\r\n", "\n").split("\n")
    current: tuple[str, list[str]] | None = None
    body: list[str] = []
    in_question = False

    def close() -> None:
        if current is not None:
            paragraphs = [squash(p) for p in "\n".join(body).split("\n\n")]
            question = squash(" ".join(current[1]))
            entries.append(QA(current[0], question, tuple(p for p in paragraphs if p)))

    for line in lines:
        match = _ZSH_QUESTION.match(line)
        if match:
            close()
            current = (f"{match.group(1)}.{match.group(2)}", [match.group(3)])
            body, in_question = [], True
            continue
        if _ZSH_CHAPTER.match(line):
            close()
            current, body, in_question = None, [], False
            continue
        if current is None:
            continue
        if in_question:
            if line.strip():
                current[1].append(line)
                continue
            in_question = False
        body.append(line)
    close()
    return _keep(entries)


_GIT_ANCHOR = re.compile(r"^\[\[([\w-]+)\]\]\s*$")
_GIT_TERM = re.compile(r"^(.+?)::\s*$")


def _is_title(lines: list[str], i: int) -> bool:
    # An AsciiDoc section title is underlined with a run of one character as long as the
    # title (give or take two); a listing block's "----" delimiter is not.
    title = lines[i].strip()
    under = lines[i + 1].strip() if i + 1 < len(lines) else ""
    return (
        bool(title and under)
        and set(under) <= {"-", "="}
        and len(set(under)) == 1
        and abs(len(under) - len(title)) <= 2
        and set(title) != set(under)
    )


def gitfaq(source: str) -> list[QA]:
    """Entries of gitfaq(7) from its AsciiDoc source (``gitfaq.txt``)."""
    lines = source.replace("\r\n", "\n").split("\n")
    entries: list[QA] = []
    i = 0
    while i < len(lines):
        anchor = _GIT_ANCHOR.match(lines[i])
        term = _GIT_TERM.match(lines[i + 1]) if anchor and i + 1 < len(lines) else None
        if not (anchor and term):
            i += 1
            continue
        j = i + 2
        # The answer runs to the next entry's anchor or the next section title.
        while j < len(lines) and not _GIT_ANCHOR.match(lines[j]) and not _is_title(lines, j):
            j += 1
        body = "\n".join(line.strip() for line in lines[i + 2 : j])
        paragraphs = [p for s in adoc_sections(body) for p in s.paragraphs]
        question = adoc_sections(term.group(1))[0].paragraphs[0]
        entries.append(QA(anchor.group(1), question, tuple(paragraphs)))
        i = j
    return _keep(entries)


_SQLITE_QUESTION = re.compile(r"^\((\d+)\)\s*(.+)$", re.S)


def _next_element(parent: Element, node: Element) -> Element | None:
    siblings = parent.elements()
    index = next(k for k, s in enumerate(siblings) if s is node)
    return siblings[index + 1] if index + 1 < len(siblings) else None


def _paragraphs(node: Element) -> tuple[str, ...]:
    blocks = [c for c in node.elements() if c.tag in ("p", "pre", "ul", "ol", "blockquote", "dl")]
    loose = [c for c in node.children if isinstance(c, str) and c.strip()]
    if blocks and not loose:
        return tuple(t for t in (text_of(b) for b in blocks) if t)
    text = text_of(node)
    return (text,) if text else ()


def sqlite_faq(page: str) -> list[QA]:
    """Entries of the SQLite FAQ page (``/usr/share/doc/sqlite3/faq.html``)."""
    root = parse_html(page)
    entries: list[QA] = []
    for parent in root.iter():
        for node in parent.elements():
            if node.tag != "p" or len(node.elements()) != 1 or node.elements()[0].tag != "b":
                continue
            match = _SQLITE_QUESTION.match(text_of(node))
            answer = _next_element(parent, node)
            if not match or answer is None or answer.tag != "blockquote":
                continue
            entries.append(QA(f"q{match.group(1)}", squash(match.group(2)), _paragraphs(answer)))
    return _keep(entries)


def valgrind_faq(page: str) -> list[QA]:
    """Entries of the Valgrind FAQ (``/usr/share/doc/valgrind/html/faq.html``)."""
    root = parse_html(page)
    entries: list[QA] = []
    for parent in root.iter():
        for node in parent.elements():
            if node.tag != "tr" or "question" not in node.classes:
                continue
            answer = _next_element(parent, node)
            if answer is None or "answer" not in answer.classes:
                continue
            cells = node.elements()
            label = text_of(cells[0]).rstrip(".") if cells else ""
            question = text_of(cells[-1]) if cells else ""
            answer_cells = answer.elements()
            paragraphs = _paragraphs(answer_cells[-1]) if answer_cells else ()
            entries.append(QA(label or _slug(question, len(entries) + 1), question, paragraphs))
    return _keep(entries)
