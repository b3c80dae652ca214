"""Plain text out of the markup that documentation packages ship: HTML, POD and AsciiDoc.

Each reader returns `Section`s (a heading and its plain-text paragraphs, in document
order); the FAQ and heading recipes are built on them. HTML is parsed with the standard
library's `html.parser` into a small element tree; POD follows perlpod(1) (command,
verbatim and ordinary paragraphs; formatting codes ``B<>``, ``C<< >>``, ``L<>``, ``E<>``);
AsciiDoc follows the subset git's documentation uses (underlined section titles, ``::``
labelled lists, ``+`` continuations, delimited listing blocks).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_SPACE = re.compile(r"\s+")


def squash(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    return _SPACE.sub(" ", text).strip()


@dataclass(frozen=True)
class Section:
    """A heading (level 1 = top) and the plain-text paragraphs under it, before any subheading."""

    level: int
    heading: str
    paragraphs: tuple[str, ...]
    anchor: str = ""


# --------------------------------------------------------------------------- HTML

_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
_SKIP_TAGS = frozenset({"script", "style", "nav"})
# Navigation and tables of contents of texinfo, DocBook and sqlite.org pages: not content.
_SKIP_CLASSES = frozenset(
    {
        "header",
        "nav-panel",
        "contents",
        "shortcontents",
        "menu",
        "navheader",
        "navfooter",
        "toc",
        "fancy_toc",
        "nosearch",
    }
)
_BLOCK = frozenset(
    {
        "p", "div", "pre", "li", "ul", "ol", "dl", "dt", "dd", "tr", "td", "th", "table",
        "blockquote", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "body",
    }
)  # fmt: skip
_HEADING = re.compile(r"h([1-6])")
_IMPLIED: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "li": (frozenset({"li"}), frozenset({"ul", "ol", "menu"})),
    "dt": (frozenset({"dt", "dd"}), frozenset({"dl"})),
    "dd": (frozenset({"dt", "dd"}), frozenset({"dl"})),
    "tr": (frozenset({"tr", "td", "th"}), frozenset({"table", "tbody", "thead", "tfoot"})),
    "td": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
    "th": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
    "option": (frozenset({"option"}), frozenset({"select"})),
}


@dataclass
class Element:
    """An HTML element: tag, attributes and children (elements or text), in source order."""

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Element | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> list[Element]:
        """This element and every element below it, in document order."""
        out: list[Element] = []
        pending: list[Element] = [self]
        while pending:
            node = pending.pop()
            out.append(node)
            pending.extend(reversed(node.elements()))
        return out

    def elements(self) -> list[Element]:
        return [c for c in self.children if isinstance(c, Element)]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root")
        self.stack = [self.root]

    def _close_implied(self, tag: str) -> None:
        # HTML's implied end tags: an open <p> ends where a block starts, an open <li> at
        # the next <li> of the same list, and so on; without this, pages that leave them
        # open nest thousands deep.
        if tag in _BLOCK and tag != "br" and self.stack[-1].tag == "p":
            self.stack.pop()
        closes = _IMPLIED.get(tag)
        if closes is None:
            return
        siblings, scope = closes
        for depth in range(len(self.stack) - 1, 0, -1):
            open_tag = self.stack[depth].tag
            if open_tag in scope:
                return
            if open_tag in siblings:
                del self.stack[depth:]
                return

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Element(tag, {k: v or "" for k, v in attrs})
        self._close_implied(tag)
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Element:
    """Parse an HTML page into an `Element` tree (root tag ``#root``); never raises."""
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def _skipped(node: Element) -> bool:
    return node.tag in _SKIP_TAGS or bool(node.classes & _SKIP_CLASSES)


def _skipped_in_body(node: Element) -> bool:
    return node.tag in ("head", "title") or _skipped(node)


def text_of(node: Element | str) -> str:
    """The visible text of `node`, whitespace collapsed (navigation and scripts left out)."""
    parts: list[str] = []

    def walk(item: Element | str) -> None:
        if isinstance(item, str):
            parts.append(item)
            return
        if _skipped(item) or (item.tag == "head" and item is not node):
            return
        block = item.tag in _BLOCK
        if block:
            parts.append(" ")
        for child in item.children:
            walk(child)
        if block:
            parts.append(" ")

    walk(node)
    return squash("".join(parts))


_NUMBERING = re.compile(r"^(?:[A-Z]?\d+(?:\.\d+)*\.?|[A-Z]\.)\s+")


def strip_numbering(heading: str) -> str:
    """ "2.1. Getting started" -> "Getting started" (section numbers are not words)."""
    return _NUMBERING.sub("", heading).strip()


def html_sections(root: Element, *, max_level: int = 4) -> list[Section]:
    """Cut a page into sections at every ``<h1>``..``<h{max_level}>``; text before the first
    heading is dropped (page banners). Paragraphs are the text of block elements."""
    sections: list[Section] = []
    current: tuple[int, str, str] | None = None
    paragraphs: list[str] = []
    buffer: list[str] = []

    def flush_paragraph() -> None:
        text = squash("".join(buffer))
        buffer.clear()
        if text:
            paragraphs.append(text)

    def close_section() -> None:
        flush_paragraph()
        if current is not None:
            sections.append(Section(current[0], current[1], tuple(paragraphs), current[2]))
        paragraphs.clear()

    def walk(item: Element | str) -> None:
        nonlocal current
        if isinstance(item, str):
            buffer.append(item)
            return
        if _skipped_in_body(item):
            return
        match = _HEADING.fullmatch(item.tag)
        if match and int(match.group(1)) <= max_level:
            close_section()
            inner = [n.attrs.get("id") or n.attrs.get("name", "") for n in item.iter()[1:]]
            anchor = item.attrs.get("id") or next((a for a in inner if a), "")
            current = (int(match.group(1)), strip_numbering(text_of(item)), anchor)
            return
        if item.tag in _BLOCK:
            flush_paragraph()
        for child in item.children:
            walk(child)
        if item.tag in _BLOCK:
            flush_paragraph()

    walk(root)
    close_section()
    return sections


# --------------------------------------------------------------------------- POD

# C<< text >>, C<<< text >>>, ...: the closing run is as long as the opening one.
_POD_MULTI = tuple(
    re.compile(rf"([A-Z])<{{{n}}}\s+(.*?)\s+>{{{n}}}", re.S) for n in (4, 3, 2)
)
_POD_SINGLE = re.compile(r"([A-Z])<([^<>]*)>")
_LT, _GT = "\ue000", "\ue001"  # stand-ins for E<lt>/E<gt> until every code is resolved
_POD_ESCAPES = {"lt": _LT, "gt": _GT, "verbar": "|", "sol": "/"}


def _pod_code(code: str, body: str) -> str:
    if code in ("X", "Z"):
        return ""
    if code == "E":
        if body in _POD_ESCAPES:
            return _POD_ESCAPES[body]
        if body.isdigit() or body.lower().startswith("0x"):
            return chr(int(body, 0))
        return html.unescape(f"&{body};")
    if code == "L":
        if "|" in body:
            return body.split("|", 1)[0]
        if "/" in body and not body.startswith(("http:", "https:", "ftp:")):
            page, _, section = body.partition("/")
            section = section.strip('"')
            return f"{section} in {page}" if page else section
        return body.strip('"')
    return body


def pod_text(text: str) -> str:
    """Resolve POD formatting codes (perlpod "Formatting Codes") to plain text."""
    previous = None
    while previous != text:
        previous = text
        for pattern in _POD_MULTI:
            text = pattern.sub(lambda m: _pod_code(m.group(1), m.group(2)), text)
        text = _POD_SINGLE.sub(lambda m: _pod_code(m.group(1), m.group(2)), text)
    return squash(text.replace(_LT, "<").replace(_GT, ">"))


_POD_HEAD = re.compile(r"=head([1-4])\b")


def pod_sections(source: str, *, items: bool = False) -> list[Section]:
    """Cut a POD document into sections at ``=head1``..``=head4``.

    Ordinary paragraphs become text, verbatim paragraphs (indented code) are kept with their
    whitespace collapsed, ``=item`` labels become paragraphs of their own (bullets dropped),
    ``=begin``/``=end`` and ``=for`` blocks are skipped, and so is anything between ``=cut``
    and the next command. With `items`, each ``=item`` of an outermost ``=over`` list starts
    a level-5 section instead (the reference layout of perlfunc and perlvar); items that
    follow one another with no text between them (``=item chomp VARIABLE``, ``=item chomp``)
    share one section under the first label.
    """
    sections: list[Section] = []
    heading: tuple[int, str] | None = None
    paragraphs: list[str] = []
    in_pod = False
    skipping: str | None = None
    depth = 0
    for block in re.split(r"\n(?:[ \t]*\n)+", source.replace("\r\n", "\n")):
        if not block.strip():
            continue
        if block.startswith("="):
            command, _, rest = block.partition(" ")
            command = command.split("\n", 1)[0]
            rest = block[len(command) :].strip()
            in_pod = command != "=cut"
            if skipping is not None:
                if command == "=end" and rest.split()[:1] == [skipping]:
                    skipping = None
                continue
            if command == "=begin":
                skipping = (rest.split() or [""])[0]
                continue
            head = _POD_HEAD.fullmatch(command)
            if head:
                if heading is not None:
                    sections.append(Section(heading[0], heading[1], tuple(paragraphs)))
                heading = (int(head.group(1)), pod_text(rest))
                paragraphs = []
            elif command == "=over":
                depth += 1
            elif command == "=back":
                depth = max(0, depth - 1)
            elif command == "=item":
                label = re.sub(r"^(?:[*-]|\d+[.)]?)\s+", "", pod_text(rest))
                bullet = label in ("*", "o", "-") or re.fullmatch(r"\d+[.)]?", label)
                if items and depth == 1 and label and not bullet:
                    if heading is not None and (heading[0] != 5 or paragraphs):
                        sections.append(Section(heading[0], heading[1], tuple(paragraphs)))
                        heading, paragraphs = (5, label), []
                    elif heading is None:
                        heading = (5, label)
                elif label and not bullet:
                    paragraphs.append(label)
            continue
        if not in_pod or skipping is not None or heading is None:
            continue
        text = squash(block) if block[0] in " \t" else pod_text(block)
        if text:  # an index-only paragraph (X<...>) has no text
            paragraphs.append(text)
    if heading is not None:
        sections.append(Section(heading[0], heading[1], tuple(paragraphs)))
    return [s for s in sections if s.heading]


# --------------------------------------------------------------------------- AsciiDoc

_ADOC_UNDERLINE = {"=": 0, "-": 1, "~": 2, "^": 3, "+": 4}
_ADOC_LINKGIT = re.compile(r"linkgit:([\w.-]+)\[(\d)\]")
_ADOC_ANCHOR = re.compile(r"^\[\[([^\]]+)\]\]$")
_ADOC_DELIMITER = re.compile(r"^(-{4,}|\.{4,}|={4,}|\*{4,}|_{4,}|--)$")
_ADOC_SKIP_LINE = re.compile(r"^(?:ifn?def::|endif::|include::|:[\w-]+:|//|\[[\w\",= ]*\]$)")


def adoc_inline(text: str) -> str:
    """Drop AsciiDoc inline markup: ``linkgit:git-add[1]`` -> ``git-add(1)``, quotes and
    attribute references; then collapse whitespace."""
    text = _ADOC_LINKGIT.sub(r"\1(\2)", text)
    text = re.sub(r"\{(litdd)\}", "--", text)
    text = re.sub(r"\{[\w-]+\}", "", text)
    text = re.sub(r"(?<![\w`])[`'*_]{1,2}([^`*_\n]+?)[`'*_]{1,2}(?![\w`])", r"\1", text)
    text = text.replace("`", "")
    return squash(text)


def adoc_sections(source: str, *, items: bool = False) -> list[Section]:
    """Cut an AsciiDoc page into sections at underlined titles (``Title`` then ``-----``).

    The document title (``====`` underline) is level 1, ``----`` titles level 2 and so on;
    text before the first title is a level-0 section with an empty heading.
    Paragraphs are runs of lines between blank lines, list continuations (``+``) and block
    delimiters; a ``term::`` line is its own paragraph. With `items`, an unindented
    ``term::`` line (two colons: the outermost labelled list, as in git's OPTIONS) starts a
    level-5 section instead, and terms that follow one another (``-q::`` ``--quiet::``)
    share it, joined with ", ".
    """
    lines = source.replace("\r\n", "\n").split("\n")
    sections: list[Section] = []
    # Text before the first title goes to a level-0 section with an empty heading.
    heading: tuple[int, str, str] | None = (0, "", "")
    anchor = ""
    paragraphs: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        text = adoc_inline(" ".join(buffer))
        buffer.clear()
        if text:
            paragraphs.append(text)

    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        underline = lines[i + 1].rstrip() if i + 1 < len(lines) else ""
        if (
            line
            and underline
            and underline[0] in _ADOC_UNDERLINE
            and set(underline) == {underline[0]}
            and abs(len(underline) - len(line)) <= 2
            and not _ADOC_DELIMITER.match(line)
        ):
            flush()
            if heading is not None:
                sections.append(Section(heading[0], heading[1], tuple(paragraphs), heading[2]))
            heading = (_ADOC_UNDERLINE[underline[0]] + 1, adoc_inline(line), anchor)
            anchor, paragraphs = "", []
            i += 2
            continue
        i += 1
        match = _ADOC_ANCHOR.match(line.strip())
        if match:
            flush()
            anchor = match.group(1)
            continue
        stripped = line.strip()
        if not stripped or stripped == "+" or _ADOC_DELIMITER.match(stripped):
            flush()
            continue
        if _ADOC_SKIP_LINE.match(stripped):
            continue
        if items and re.search(r"(?<!:)::$", line) and not line[:1].isspace():
            flush()
            term = adoc_inline(stripped[:-2])
            if heading is not None and heading[0] == 5 and not paragraphs:
                heading = (5, f"{heading[1]}, {term}", heading[2])
            else:
                if heading is not None:
                    sections.append(
                        Section(heading[0], heading[1], tuple(paragraphs), heading[2])
                    )
                heading, paragraphs = (5, term, ""), []
            continue
        if re.search(r"::+$", stripped) or re.search(r";;$", stripped):
            flush()
            buffer.append(re.sub(r"(::+|;;)$", "", stripped))
            flush()
            continue
        buffer.append(stripped)
    flush()
    if heading is not None:
        sections.append(Section(heading[0], heading[1], tuple(paragraphs), heading[2]))
    return [s for s in sections if s.heading or s.paragraphs]
