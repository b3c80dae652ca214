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
* Numbered plain-text FAQs (the Vim FAQ): ``N.M. question`` at the start of a line, the
  answer running to the next such line or a ``SECTION``/``=====`` line; the indented table
  of contents never matches.
* The CVS FAQ-O-Matic dump: ``    N. question`` lines under ``" + Category"`` lines.
* ``Q:``/``A:`` FAQs (GNU screen).
* HTML FAQs with one heading per question (fetchmail, Apache's SSL FAQ, GNU nano): the
  headings of one level whose anchor matches a pattern; the answer is the section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shortlist_datasets.markup import (
    Element,
    adoc_sections,
    html_sections,
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


_CREDIT = re.compile(r"^\(contributed by [^)]*\)\s*", re.I)


def pod_faq(source: str) -> list[QA]:
    """Entries of a POD FAQ: ``=head2`` questions (see the module docstring)."""
    entries: list[QA] = []
    question: str | None = None
    answer: list[str] = []

    def close() -> None:
        if question is not None:
            # perlfaq credits ("(contributed by brian d foy)") are not part of the answer.
            kept = [_CREDIT.sub("", p) for p in answer]
            kept = [p for p in kept if p]
            entries.append(QA(_slug(question, len(entries) + 1), question, tuple(kept)))

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
            question = squash(" ".join(current[1]))
            entries.append(QA(current[0], question, _text_paragraphs(body)))

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


def _text_paragraphs(lines: list[str]) -> tuple[str, ...]:
    # Blank lines in these files often carry trailing spaces; they still end a paragraph.
    paragraphs = [squash(p) for p in re.split(r"\n[ \t]*\n", "\n".join(lines))]
    return tuple(p for p in paragraphs if p)


_NUMBERED = re.compile(r"^(\d+\.\d+)\.\s+(\S.*)$")
_NUMBERED_END = re.compile(r"^(SECTION \d+|={5,}\s*$|\d+\.\s+[A-Z][A-Z ,/&-]+$)")


def numbered_text_faq(text: str, question: re.Pattern[str] = _NUMBERED) -> list[QA]:
    """Entries of a plain-text FAQ whose questions start a line with a number.

    `question` matches a question's first line (group 1 the number, group 2 the text; the
    default is ``N.M. text`` at column 0); the question runs on to the first blank line
    and its answer to the next question, a ``SECTION N``, ``=====`` or ``N. ALL CAPS``
    line. A number seen twice keeps its last occurrence, so a table of contents written
    in the same format as the body is overridden by the body.
    """
    found: dict[str, QA] = {}
    current: tuple[str, list[str]] | None = None
    body: list[str] = []
    in_question = False

    def close() -> None:
        if current is not None:
            found.pop(current[0], None)
            question_text = squash(" ".join(current[1]))
            found[current[0]] = QA(current[0], question_text, _text_paragraphs(body))

    for line in text.replace("\r\n", "\n").split("\n"):
        match = question.match(line)
        if match:
            close()
            current, body, in_question = (match.group(1), [match.group(2)]), [], True
        elif _NUMBERED_END.match(line):
            close()
            current, body, in_question = None, [], False
        elif current is not None:
            if in_question and line.strip():
                current[1].append(line)
            else:
                in_question = False
                body.append(line)
    close()
    return _keep(list(found.values()))


_CVS_CATEGORY = re.compile(r'^\s*" \+ (.+?)"\s*$')
_CVS_QUESTION = re.compile(r"^    (\d+)\. (\S.*?)\s*$")
_CVS_END = re.compile(r'^\s*(" \[INLINE\] "|Last modified: )')


def cvs_faq(text: str) -> list[QA]:
    """Entries of the CVS FAQ (``/usr/share/doc/cvs/FAQ.gz``, a FAQ-O-Matic dump).

    A question is a ``    N. text`` line followed by a blank line; its answer runs to
    the next question, category line (``" + Name"``) or ``Last modified:`` line.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    entries: list[QA] = []
    category = ""
    current: tuple[str, str] | None = None
    body: list[str] = []

    def close() -> None:
        if current is not None:
            entries.append(QA(current[0], current[1], _text_paragraphs(body)))

    for i, line in enumerate(lines):
        is_category = _CVS_CATEGORY.match(line)
        question = _CVS_QUESTION.match(line)
        blank_after = i + 1 < len(lines) and not lines[i + 1].strip()
        if is_category:
            close()
            category, current, body = is_category.group(1), None, []
        elif question and blank_after:
            close()
            slug = "-".join(re.findall(r"[a-z0-9]+", category.lower())) or "top"
            current, body = (f"{slug}/{question.group(1)}", squash(question.group(2))), []
        elif _CVS_END.match(line):
            close()
            current, body = None, []
        elif current is not None:
            body.append(line)
    close()
    return _keep(entries)


def qa_text_faq(text: str) -> list[QA]:
    """Entries of a plain-text FAQ written as ``Q:`` / ``A:`` blocks (GNU screen's)."""
    entries: list[QA] = []
    question: list[str] | None = None
    answer: list[str] | None = None

    def close() -> None:
        if question is not None and answer is not None:
            q = squash(" ".join(question))
            entries.append(QA(str(len(entries) + 1), q, _text_paragraphs(answer)))

    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("Q:"):
            close()
            question, answer = [line[2:]], None
        elif line.startswith("A:") and question is not None:
            answer = [line[2:]]
        elif answer is not None:
            answer.append(line)
        elif question is not None:
            question.append(line)
    close()
    return _keep(entries)


def html_heading_faq(page: str, level: int, anchor: str = r".+") -> list[QA]:
    """Entries of an HTML FAQ with one heading per question: the ``<h{level}>`` headings
    whose anchor (``id`` or inner ``<a name>``) fully matches `anchor`; the answer is the
    section's text plus any deeper sections under it."""
    pattern = re.compile(anchor)
    entries: list[QA] = []
    current: QA | None = None
    extra: list[str] = []
    for section in html_sections(parse_html(page), max_level=6):
        if section.level == level and pattern.fullmatch(section.anchor or ""):
            if current is not None:
                entries.append(QA(current.anchor, current.question, (*current.answer, *extra)))
            key = section.anchor or _slug(section.heading, len(entries) + 1)
            current, extra = QA(key, section.heading, section.paragraphs), []
        elif section.level > level and current is not None:
            extra.extend((section.heading, *section.paragraphs))
        elif current is not None:
            entries.append(QA(current.anchor, current.question, (*current.answer, *extra)))
            current, extra = None, []
    if current is not None:
        entries.append(QA(current.anchor, current.question, (*current.answer, *extra)))
    return _keep(entries)
