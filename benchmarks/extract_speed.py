"""Extraction speed and quality of the HTML and PDF parsers shortlist could use.

HTML: selectolax (Lexbor), lxml and BeautifulSoup (html.parser) each parse the same
files, and their trees are walked into the same `HtmlEvents` builder that
`shortlist.corpus.documents.extract_html` (selectolax) uses, so the only difference is
the parser. PDF: pypdf and pdfminer.six (shortlist's `pdf_pages`) each extract the text of
every page of the same files.
Speed is MB/s of HTML (decoding included) and pages/s of PDF, best of ``--repeat``
runs. Quality is the bag-of-words F1 of the extracted text against a reference plain
text of the same document (``--html-reference``/``--pdf-reference``; Debian's
debmake-doc ships its manual as HTML, PDF and text, all built from one source):
words are lowercased runs of letters and digits, counted with multiplicity.

    python benchmarks/extract_speed.py \\
        --html /tmp/docs/usr/share/doc/debmake-doc/html/ --html-glob '*.en.html' \\
        --html-reference /tmp/docs/debmake-doc.en.txt \\
        --pdf /tmp/docs/usr/share/doc/debmake-doc/debmake-doc.en.pdf \\
        --pdf-reference /tmp/docs/debmake-doc.en.txt

(get the files with ``apt-get download debmake-doc && dpkg-deb -x debmake-doc_*.deb
/tmp/docs``, and ``gunzip`` the ``.txt.gz``).
"""

from __future__ import annotations

import argparse
import gzip
import io
import logging
import re
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shortlist.corpus.documents import HtmlEvents, decode_html, extract_html, pdf_pages

_WORDS = re.compile(r"[^\W_]+")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def words(text: str) -> Counter[str]:
    return Counter(w.lower() for w in _WORDS.findall(text))


def f1(got: Counter[str], reference: Counter[str]) -> tuple[float, float, float]:
    common = sum((got & reference).values())
    precision = common / max(1, sum(got.values()))
    recall = common / max(1, sum(reference.values()))
    return precision, recall, 2 * precision * recall / max(1e-12, precision + recall)


# ------------------------------------------------------------------------------- HTML


def html_selectolax(raw: bytes) -> str:
    return extract_html(raw).text  # shortlist's own extractor


def html_lxml(raw: bytes) -> str:
    import lxml.html

    # lxml refuses a str that keeps its XML declaration; the text is decoded already.
    root = lxml.html.document_fromstring(_XML_DECLARATION.sub("", decode_html(raw), count=1))
    events = HtmlEvents()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        el, leaving = stack.pop()
        if leaving:
            events.end(el.tag.lower())
        elif isinstance(el.tag, str) and not events.skipped(el.tag.lower(), el.get):
            events.start(el.tag.lower())
            if el.text:
                events.text(el.text)
            stack.append((el, True))
            stack.extend((child, False) for child in reversed(el))
            continue  # its tail comes after its end
        if el.tail:  # text after an element (or a comment) belongs to its parent
            events.text(el.tail)
    return events.finish("").text


def html_bs4(raw: bytes) -> str:
    from bs4 import BeautifulSoup, NavigableString, Tag
    from bs4.element import PreformattedString

    soup = BeautifulSoup(decode_html(raw), "html.parser")
    events = HtmlEvents()

    def attrs_of(tag: Any) -> Callable[[str], str | None]:
        def get(name: str) -> str | None:
            value = tag.attrs.get(name)
            return " ".join(value) if isinstance(value, list) else value

        return get

    stack: list[tuple[Any, bool]] = [(soup, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            events.end(node.name)
            continue
        if isinstance(node, PreformattedString):  # comments, doctype, CDATA
            continue
        if isinstance(node, NavigableString):
            events.text(str(node))
            continue
        if not isinstance(node, Tag):
            continue
        if node.name != "[document]":
            if events.skipped(node.name, attrs_of(node)):
                continue
            events.start(node.name)
            stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(node.children)))
    return events.finish("").text


HTML_PARSERS: dict[str, Callable[[bytes], str]] = {
    "selectolax": html_selectolax,
    "lxml": html_lxml,
    "beautifulsoup": html_bs4,
}

# -------------------------------------------------------------------------------- PDF


def pdf_pypdf(raw: bytes) -> list[str]:
    import pypdf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = pypdf.PdfReader(io.BytesIO(raw))
        return [page.extract_text() or "" for page in reader.pages]


def pdf_pdfminer(raw: bytes) -> list[str]:
    return pdf_pages(raw)[0]  # shortlist's own extractor


PDF_PARSERS: dict[str, Callable[[bytes], list[str]]] = {
    "pypdf": pdf_pypdf,
    "pdfminer.six": pdf_pdfminer,
}


def best_time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def read_reference(path: str | None) -> Counter[str] | None:
    if path is None:
        return None
    raw = Path(path).read_bytes()
    if path.endswith(".gz"):
        raw = gzip.decompress(raw)
    return words(raw.decode("utf-8"))


def files_of(paths: list[str], pattern: str) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(sorted(p.glob(pattern)) if p.is_dir() else [p])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", nargs="*", default=[], help="HTML files or folders")
    parser.add_argument("--html-glob", default="*.html", help="files taken from a folder")
    parser.add_argument("--html-reference", help="plain text of the same document")
    parser.add_argument("--pdf", nargs="*", default=[], help="PDF files")
    parser.add_argument("--pdf-reference", help="plain text of the same document")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    # pypdf logs a line per odd font (e.g. "fontTools is required ..."); the text is compared.
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    html_files = [f.read_bytes() for f in files_of(args.html, args.html_glob)]
    if html_files:
        megabytes = sum(map(len, html_files)) / 1e6
        reference = read_reference(args.html_reference)
        print(f"HTML: {len(html_files)} files, {megabytes:.2f} MB, best of {args.repeat}")
        for name, fn in HTML_PARSERS.items():
            seconds = best_time(lambda fn=fn: [fn(raw) for raw in html_files], args.repeat)
            line = f"  {name:<14} {megabytes / seconds:8.2f} MB/s"
            if reference is not None:
                got = words("\n".join(fn(raw) for raw in html_files))
                p, r, f = f1(got, reference)
                line += f"   words vs reference: P {p:.3f} R {r:.3f} F1 {f:.3f}"
            print(line)

    pdf_files = [Path(f).read_bytes() for f in args.pdf]
    if pdf_files:
        reference = read_reference(args.pdf_reference)
        print(f"PDF: {len(pdf_files)} files, best of {args.repeat}")
        for name, pdf_fn in PDF_PARSERS.items():
            pages = [t for raw in pdf_files for t in pdf_fn(raw)]
            seconds = best_time(
                lambda pdf_fn=pdf_fn: [pdf_fn(raw) for raw in pdf_files], args.repeat
            )
            count = len(pages)
            line = f"  {name:<14} {count / seconds:8.2f} pages/s ({count} pages)"
            if reference is not None:
                p, r, f = f1(words("\n".join(pages)), reference)
                line += f"   words vs reference: P {p:.3f} R {r:.3f} F1 {f:.3f}"
            print(line)


if __name__ == "__main__":
    main()
