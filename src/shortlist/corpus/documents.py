"""Text and structure out of documents: HTML, PDF, DOCX, Markdown and plain text.

Each extractor takes a file's bytes and returns an `Extracted`: the text to index, a
title, and `Region` records mapping stretches of that text to their place in the source
(heading path, PDF page, code blocks kept whole). The chunker turns regions into passage
metadata (``section``, ``page``), and `shortlist.types.citation_label` into citations.

- **HTML** (selectolax, extra ``documents``): ``<script>``, ``<style>``, navigation
  (``<nav>``, ``role="navigation"``, ``<aside>``, ``<footer>``, and the navigation blocks
  of DocBook and Sphinx manuals by class) and forms are dropped; ``<h1>``..``<h6>``
  give the heading path; ``<pre>`` is kept verbatim and whole; the ``<title>`` is the
  title. The encoding is the byte-order mark, else the declared one (``<meta charset>``
  or the XML declaration), else UTF-8; bytes that are none of these are an error, never
  a guess. selectolax was chosen over lxml and BeautifulSoup by
  ``benchmarks/extract_speed.py`` (docs/RESULTS.md, "Document extraction"): the same
  words came out of all three, selectolax was 1.2-1.7x faster than lxml and 6-7x
  faster than BeautifulSoup, and its parser follows the HTML5 parsing rules browsers
  use (lxml's libxml2 parser predates them).
- **PDF** (pdfminer.six, extra ``documents``): the text of each page, pages separated by a
  blank line, each page one region with its 1-based number. A page without a text
  layer (a scan) is reported in `Extracted.notes` and not indexed; a file where no page
  has text, an encrypted file (unless its user password is empty) and a damaged file
  are errors. pdfminer.six was chosen over pypdf by the same benchmark: pypdf was
  about 3x faster but ran words together on DocBook PDFs (word F1 0.65 against the
  manual's own text, pdfminer.six 0.94).
- **DOCX** (python-docx, extra ``documents``): paragraphs and table rows in document
  order; paragraphs styled ``Title`` or ``Heading N`` give the heading path.
- **Markdown** (no dependency): the text is the file itself, so offsets point into the
  source; ATX (``#``) and setext headings give the heading path, and fenced code blocks
  are regions kept whole.
- **Plain text**: the file itself, one region.

Errors: every problem with a file raises `ExtractionError` with a reason that names the
problem and the fix; the corpus readers add the file name and apply ``skip_bad``.
"""

from __future__ import annotations

import codecs
import io
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from shortlist._optional import require
from shortlist.types import Region

EXTENSIONS = {
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
}
"""File extension -> document format, for folders and single files."""

EXTRA = "documents"
"""The extra that installs the HTML, PDF and DOCX parsers."""


class ExtractionError(Exception):
    """A file that cannot be turned into text; ``reason`` names the problem and the fix,
    ``line`` (1-based) where in a text file it is, when known."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass(frozen=True, slots=True)
class Extracted:
    """What an extractor read from one file. ``notes`` are problems that did not stop
    it (a scanned PDF page left out), one line each."""

    text: str
    title: str
    regions: tuple[Region, ...]
    notes: tuple[str, ...] = ()


def extract(raw: bytes, fmt: str) -> Extracted:
    """Extract a file's bytes as format ``fmt`` (a value of `EXTENSIONS`).

    Raises `ExtractionError` for an unreadable file, and `MissingDependencyError` when
    the format's parser (extra ``documents``) is not installed.
    """
    if not raw.strip():
        raise ExtractionError("empty file (0 bytes or only whitespace); remove it or add text")
    return _EXTRACTORS[fmt](raw)


class _Blocks:
    """Builds extracted text out of blocks separated by a blank line, with a region each."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.regions: list[Region] = []

    def add(
        self,
        text: str,
        section: tuple[str, ...] = (),
        *,
        page: int | None = None,
        whole: bool = False,
    ) -> None:
        text = text.strip("\n") if whole else text.strip()
        if not text.strip():
            return
        if self._parts:
            self._parts.append("\n\n")
            self._length += 2
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        self.regions.append(Region(start, self._length, section, page=page, whole=whole))

    def text(self) -> str:
        return "".join(self._parts)


def _clean(text: str) -> str:
    """Text any document can hold: no lone surrogates, no NUL, no form feeds."""
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(text) else text
    return text.replace("\x00", "").replace("\x0c", "\n")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# ------------------------------------------------------------------------------- HTML

_SKIPPED_TAGS = frozenset(
    {
        "head", "script", "style", "noscript", "template", "nav", "aside", "footer",
        "form", "button", "select", "svg", "iframe", "object", "canvas",
    }
)  # fmt: skip
_NAV_CLASSES = frozenset(
    {
        "navheader", "navfooter", "navbar", "navigation", "nav", "breadcrumb",
        "breadcrumbs", "sidebar", "sphinxsidebar", "related", "toc", "skip-link",
        "skiplink", "menu", "headerlink", "footer",
    }
)  # fmt: skip
_BLOCK_TAGS = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "li", "ul", "ol", "dl", "dt",
        "dd", "blockquote", "table", "tr", "caption", "figure", "figcaption", "address",
        "hr", "details", "summary", "body", "html",
    }
)  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_SPACES = re.compile(r"\s+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.\-]+)""")


def decode_html(raw: bytes) -> str:
    """The text of an HTML file: BOM, else declared encoding, else UTF-8, else an error."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                       (codecs.BOM_UTF16_BE, "utf-16-be")):  # fmt: skip
        if raw.startswith(bom):
            return _decode(raw[len(bom) :], codec, "its byte-order mark")
    head = raw[:4096]
    declared = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
    if declared is not None:
        name = declared.group(1).decode("ascii").lower()
        try:
            codec = codecs.lookup(name).name
        except LookupError:
            raise ExtractionError(
                f"declares the unknown encoding {name!r}; fix the <meta charset> or re-save "
                "the file as UTF-8"
            ) from None
        # Browsers read Latin-1 and ASCII labels as windows-1252 (WHATWG Encoding).
        if codec in ("latin-1", "iso8859-1", "ascii"):
            codec = "cp1252"
        return _decode(raw, codec, f"its declared encoding {name!r}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExtractionError(
            f"unknown encoding: not UTF-8 (byte {exc.start}) and no charset declared; add "
            "<meta charset=\"...\"> naming its encoding, or re-save it as UTF-8 "
            "(e.g. `iconv -f latin1 -t utf-8`)"
        ) from None


def _decode(raw: bytes, codec: str, why: str) -> str:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise ExtractionError(
            f"not valid {codec} (byte {exc.start}), the encoding given by {why}; "
            "fix the declaration or re-save the file as UTF-8"
        ) from None


class HtmlEvents:
    """Turns a parser's walk over an HTML tree into blocks and regions.

    The extractor (and each parser compared in benchmarks/extract_speed.py) calls
    `start`, `text` and `end` in document order; skipped subtrees never reach it.
    """

    def __init__(self) -> None:
        self.blocks = _Blocks()
        self._path: list[tuple[int, str]] = []
        self._line: list[str] = []
        self._heading: int | None = None
        self._pre = 0
        self.first_h1 = ""

    @staticmethod
    def skipped(tag: str, attrs: Callable[[str], str | None]) -> bool:
        """Whether an element and everything in it is left out (scripts, navigation)."""
        if tag in _SKIPPED_TAGS:
            return True
        if (attrs("role") or "").lower() == "navigation":
            return True
        classes = (attrs("class") or "").lower().split()
        return any(c in _NAV_CLASSES for c in classes) or (attrs("hidden") is not None)

    def start(self, tag: str) -> None:
        if tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag == "pre":
            self._flush()
            self._pre += 1
        elif tag == "br":
            self._line.append("\n")
        elif tag in _BLOCK_TAGS:
            self._flush()
        elif tag in _CELL_TAGS:
            self._line.append(" | " if self._line else "")

    def text(self, text: str) -> None:
        # Line breaks in HTML source are spaces; only <br> (and <pre>) break a line.
        # Cleaned here, before offsets exist: a NUL dropped later would shift regions.
        text = _clean(text)
        self._line.append(text if self._pre else _SPACES.sub(" ", text))

    def end(self, tag: str) -> None:
        if tag in _HEADINGS and self._heading is not None:
            title = _SPACES.sub(" ", "".join(self._line)).strip()
            self._line = []
            level, self._heading = self._heading, None
            if title:
                self._path = [(n, t) for n, t in self._path if n < level] + [(level, title)]
                self.first_h1 = self.first_h1 or (title if level == 1 else "")
                self.blocks.add(title, self.section)
        elif tag == "pre" and self._pre:
            self._pre -= 1
            if not self._pre:
                self.blocks.add("".join(self._line), self.section, whole=True)
                self._line = []
        elif tag in _BLOCK_TAGS:
            self._flush()

    @property
    def section(self) -> tuple[str, ...]:
        return tuple(t for _, t in self._path)

    def _flush(self) -> None:
        if self._pre or self._heading is not None:
            return
        lines = "".join(self._line).split("\n")
        self._line = []
        text = "\n".join(_SPACES.sub(" ", line).strip() for line in lines)
        self.blocks.add(text, self.section)

    def finish(self, title: str) -> Extracted:
        self._pre = 0
        self._heading = None
        self._flush()
        text = self.blocks.text()
        if not text.strip():
            raise ExtractionError("no text found in the HTML (after dropping navigation)")
        title = _SPACES.sub(" ", _clean(title)).strip() or self.first_h1
        return Extracted(text=text, title=title, regions=tuple(self.blocks.regions))


def extract_html(raw: bytes) -> Extracted:
    """`Extracted` of an HTML file, parsed by selectolax (Lexbor, an HTML5 parser)."""
    lexbor = require("selectolax.lexbor", EXTRA, "reading HTML")
    tree = lexbor.LexborHTMLParser(decode_html(raw))
    events = HtmlEvents()
    if tree.root is not None:
        walk_selectolax(tree.root, events)
    title = tree.css_first("title")
    return events.finish(title.text(deep=True) if title is not None else "")


def _attribute(node: Any) -> Callable[[str], str | None]:
    """An attribute getter: None when absent, "" for one without a value (``hidden``)."""
    attributes = node.attributes

    def get(name: str) -> str | None:
        return (attributes[name] or "") if name in attributes else None

    return get


def walk_selectolax(root: Any, events: HtmlEvents) -> None:
    """Feed a selectolax tree to `events` in document order, skipping what `skipped` says."""
    # Iterative: real pages nest deeper than Python's recursion limit.
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        tag = node.tag
        if leaving:
            events.end(tag)
        elif tag == "-text":
            events.text(node.text_content or "")
        elif not tag.startswith(("-", "!")) and not events.skipped(tag, _attribute(node)):
            events.start(tag)  # comments and the doctype ("-comment", "!doctype") are skipped
            stack.append((node, True))
            children = []
            child = node.child
            while child is not None:
                children.append(child)
                child = child.next
            stack.extend((c, False) for c in reversed(children))


# -------------------------------------------------------------------------------- PDF

_OCR_FIX = "OCR it first (e.g. `ocrmypdf in.pdf out.pdf`) to index it"


def extract_pdf(raw: bytes) -> Extracted:
    """`Extracted` of a PDF, one region per page with text, read by pdfminer.six."""
    pages, title = pdf_pages(raw)
    blocks = _Blocks()
    empty: list[int] = []
    for number, page_text in enumerate(pages, start=1):
        text = _clean(page_text)
        if text.strip():
            blocks.add(text, page=number)
        else:
            empty.append(number)
    if not blocks.regions:
        raise ExtractionError(
            f"no text layer on any of its {len(pages)} pages (a scanned PDF?); {_OCR_FIX}"
        )
    notes = tuple(
        f"page {n} has no text layer (a scanned page?) and was not indexed; {_OCR_FIX}"
        for n in empty
    )
    return Extracted(text=blocks.text(), title=title, regions=tuple(blocks.regions), notes=notes)


def pdf_pages(raw: bytes) -> tuple[list[str], str]:
    """The text of each page of a PDF and its title (pdfminer.six, default layout)."""
    require("pdfminer", EXTRA, "reading PDF")
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LAParams, LTTextContainer
    from pdfminer.pdfdocument import PDFDocument, PDFPasswordIncorrect
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd but readable objects are not the user's problem
        try:
            document = PDFDocument(PDFParser(io.BytesIO(raw)))  # tries the empty password
            resources = PDFResourceManager()
            device = PDFPageAggregator(resources, laparams=LAParams())
            interpreter = PDFPageInterpreter(resources, device)
            pages = []
            for page in PDFPage.create_pages(document):
                interpreter.process_page(page)
                layout = device.get_result()
                pages.append(
                    "".join(el.get_text() for el in layout if isinstance(el, LTTextContainer))
                )
        except PDFPasswordIncorrect:
            raise ExtractionError(
                "encrypted PDF that needs a password; decrypt it first "
                "(e.g. `qpdf --decrypt --password=... in.pdf out.pdf`)"
            ) from None
        except Exception as exc:  # pdfminer raises many types for a damaged file
            what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if "encrypt" in what.lower():
                raise ExtractionError(
                    f"encrypted PDF that cannot be read ({what}); decrypt it first "
                    "(e.g. `qpdf --decrypt in.pdf out.pdf`)"
                ) from None
            raise ExtractionError(
                f"not a readable PDF ({what}); check that the file is complete and not damaged"
            ) from None
    return pages, _pdf_title(document)


def _pdf_title(document: Any) -> str:
    from pdfminer.utils import decode_text as decode_pdf_text

    try:
        title: Any = document.info[0].get("Title") if document.info else None
        if hasattr(title, "resolve"):  # an indirect object
            title = title.resolve()
        if isinstance(title, bytes):
            title = decode_pdf_text(title)
    except Exception:  # a damaged info dictionary is no reason to lose the text
        return ""
    return _clean(title).strip() if isinstance(title, str) else ""


# ------------------------------------------------------------------------------- DOCX

_DOCX_HEADING = re.compile(r"^Heading (\d)$")


def extract_docx(raw: bytes) -> Extracted:
    """`Extracted` of a Word .docx file: paragraphs and table rows, headings as sections."""
    docx = require("docx", EXTRA, "reading DOCX")
    try:
        document = docx.Document(io.BytesIO(raw))
        items = list(document.iter_inner_content())
        core_title = document.core_properties.title or ""
    except Exception as exc:  # python-docx raises many types for a file that is not .docx
        raise ExtractionError(
            f"not a Word .docx file ({type(exc).__name__}: {exc}); save it as .docx "
            "(Word 2007 or later), or give it the extension of what it really is"
        ) from None
    blocks = _Blocks()
    path: list[tuple[int, str]] = []
    first_title = ""
    for item in items:
        if hasattr(item, "rows"):  # a table: one block, a line per row
            rows = [
                " | ".join(_SPACES.sub(" ", _clean(cell.text)).strip() for cell in row.cells)
                for row in item.rows
            ]
            blocks.add("\n".join(rows), tuple(t for _, t in path))
            continue
        text = _clean(item.text)
        level = _docx_heading_level(item)
        if level is not None and text.strip():
            heading = _SPACES.sub(" ", text).strip()
            path = [(n, t) for n, t in path if n < level] + [(level, heading)]
            first_title = first_title or heading
        blocks.add(text, tuple(t for _, t in path))
    if not blocks.regions:
        raise ExtractionError("no text found in the .docx file")
    return Extracted(
        text=blocks.text(),
        title=_clean(core_title).strip() or first_title,
        regions=tuple(blocks.regions),
    )


def _docx_heading_level(paragraph: Any) -> int | None:
    style = getattr(paragraph, "style", None)
    name = getattr(style, "name", "") or ""
    if name == "Title":
        return 0
    match = _DOCX_HEADING.match(name)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------- Markdown

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$|^ {0,3}(#{1,6})[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def decode_text(raw: bytes) -> str:
    """UTF-8 text (a BOM is dropped); anything else is an `ExtractionError`."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ExtractionError(
            "invalid UTF-8; re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)", line
        ) from None


def extract_markdown(raw: bytes) -> Extracted:
    """`Extracted` of a Markdown file: its own text, with sections and code blocks."""
    text = decode_text(raw)
    regions: list[Region] = []
    title = ""
    path: list[tuple[int, str]] = []
    for start, end, kind, level, heading in _markdown_blocks(text):
        if kind == "heading":
            path = [(n, t) for n, t in path if n < level] + [(level, heading)]
            title = title or heading
        section = tuple(t for _, t in path)
        regions.append(Region(start, end, section, whole=kind == "code"))
    if not regions:
        raise ExtractionError("no text found in the Markdown file")
    return Extracted(text=text, title=title, regions=tuple(regions))


def _markdown_blocks(text: str) -> Iterator[tuple[int, int, str, int, str]]:
    """(start, end, kind, heading level, heading text) of each block: kind is
    ``heading``, ``code`` (a fenced block, fences included) or ``text``."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    i = 0
    para_start: int | None = None

    def close(upto: int) -> Iterator[tuple[int, int, str, int, str]]:
        nonlocal para_start
        if para_start is not None:
            end = offsets[para_start] + len(text[offsets[para_start] : offsets[upto]].rstrip())
            yield offsets[para_start], end, "text", 0, ""
            para_start = None

    while i < len(lines):
        line = lines[i].rstrip("\r\n")
        fence = _FENCE_OPEN.match(line)
        if fence:
            yield from close(i)
            marker = fence.group(1)
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(marker[0] * len(marker)):
                j += 1
            last = min(j, len(lines) - 1)
            end = offsets[last] + len(lines[last].rstrip("\r\n"))
            yield offsets[i], end, "code", 0, ""
            i = last + 1
            continue
        atx = _ATX.match(line)
        if atx:
            yield from close(i)
            level = len(atx.group(1) or atx.group(3))
            heading = (atx.group(2) or "").strip()
            yield offsets[i], offsets[i] + len(line), "heading", level, heading or ""
            i += 1
            continue
        if not line.strip():
            yield from close(i)
            i += 1
            continue
        setext = _SETEXT.match(lines[i + 1].rstrip("\r\n")) if i + 1 < len(lines) else None
        if setext and para_start is None:
            level = 1 if setext.group(1)[0] == "=" else 2
            end = offsets[i + 1] + len(lines[i + 1].rstrip("\r\n"))
            yield offsets[i], end, "heading", level, line.strip()
            i += 2
            continue
        if para_start is None:
            para_start = i
        i += 1
    yield from close(len(lines))


def extract_text(raw: bytes) -> Extracted:
    """`Extracted` of a plain-text file: its own text, one region."""
    text = decode_text(raw)
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    if start >= end:
        raise ExtractionError("empty file (only whitespace); remove it or add text")
    return Extracted(text=text, title="", regions=(Region(start, end),))


_EXTRACTORS: dict[str, Callable[[bytes], Extracted]] = {
    "html": extract_html,
    "pdf": extract_pdf,
    "docx": extract_docx,
    "markdown": extract_markdown,
    "text": extract_text,
}
FORMATS = tuple(_EXTRACTORS)
"""Document formats, as `read_corpus(format=...)` and ``--format`` name them."""
