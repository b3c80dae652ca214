"""Document readers on real files (tests/data/documents, see its README): HTML, PDF,
DOCX and Markdown with their structure, and one line per bad file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from optional import needs_extra
from shortlist.corpus.chunking import Chunker
from shortlist.corpus.documents import ExtractionError, decode_html, extract
from shortlist.corpus.readers import BadRecord, DocumentWarning, read_corpus
from shortlist.errors import CorpusFormatError, MissingDependencyError

pytestmark = needs_extra("documents")

DOCS = Path(__file__).parent / "data" / "documents"
MIXED = DOCS / "mixed"
BAD = DOCS / "bad"


def read_one(path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    notes: list[BadRecord] = []
    docs = list(read_corpus([path], on_note=notes.append, **kwargs))  # type: ignore[arg-type]
    assert len(docs) == 1
    return docs[0], notes


def region_texts(doc):  # type: ignore[no-untyped-def]
    return [(doc.text[r.start : r.end], r) for r in doc.regions]


def test_html_keeps_headings_as_sections_and_drops_navigation() -> None:
    doc, notes = read_one(MIXED / "upload.html")
    assert notes == []
    assert doc.id == (MIXED / "upload.html").as_posix()
    assert doc.title == "Chapter 9. Uploading the package"
    assert doc.metadata["format"] == "html" and len(doc.metadata["sha256"]) == 64
    # DocBook's navigation header and footer ("Prev", "Up", "Home", "Next") are gone.
    assert "Prev" not in doc.text and "Home" not in doc.text
    assert doc.text.startswith("Chapter 9. Uploading the package\n\n")
    sections = {r.section for r in doc.regions}
    assert (
        "Chapter 9. Uploading the package",
        "9.1. Uploading to the Debian archive",
    ) in sections
    code = [text for text, r in region_texts(doc) if r.whole]
    assert "$ dupload gentoo_0.9.12-1_i386.changes" in code
    where = doc.text.index("$ dupload gentoo")
    (region,) = [r for r in doc.regions if r.start <= where < r.end]
    assert region.section[-1] == "9.1. Uploading to the Debian archive"


def test_pdf_pages_and_a_scanned_page_reported(recwarn: pytest.WarningsRecorder) -> None:
    doc, notes = read_one(MIXED / "maint-guide-excerpt.pdf")
    assert doc.title == "Debian New Maintainers' Guide (excerpt)"
    assert [r.page for r in doc.regions] == [1, 2]  # page 3 is an image
    page2 = doc.text[doc.regions[1].start : doc.regions[1].end]
    assert "Chapter 9" in page2 and "dupload" in page2 and "dupload" not in doc.text[:100]
    assert "If you did not listen to me" not in page2  # words keep their spaces
    assert [n.reason.split(" (")[0] for n in notes] == ["page 3 has no text layer"]
    assert "ocrmypdf" in notes[0].reason and notes[0].path.endswith("maint-guide-excerpt.pdf")
    # Without on_note, the note is a warning rather than lost.
    with pytest.warns(DocumentWarning, match="page 3 has no text layer"):
        list(read_corpus([MIXED / "maint-guide-excerpt.pdf"]))


def test_docx_headings_become_the_section_path() -> None:
    doc, _ = read_one(MIXED / "new-maintainer.docx")
    assert doc.title == "Applying to Become a Member"
    where = doc.text.index("The mailing list debian-mentors@lists.debian.org has been set up")
    (region,) = [r for r in doc.regions if r.start <= where < r.end]
    assert region.section == ("Applying to Become a Member", "Debian mentors and sponsors")


def test_markdown_sections_code_blocks_whole_and_text_is_the_file() -> None:
    path = MIXED / "local-project-installs.md"
    doc, _ = read_one(path)
    assert doc.text == path.read_text(encoding="utf-8")  # offsets point into the file
    assert doc.title == "Local project installs"
    code = [(text, r.section) for text, r in region_texts(doc) if r.whole]
    assert ("```{pip-cli}\n$ pip install -e path/to/SomeProject\n```",
            ("Local project installs", "Editable installs")) in code  # fmt: skip
    # A code block that fits is never cut, even when the chunks are small.
    passages = Chunker(size=40, overlap=8, unit="words").chunk(doc)
    fitting = [text for text, _ in code if len(text.split()) <= 40]
    assert len(fitting) >= 3
    for text in fitting:
        assert any(text in p.text for p in passages), text


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("encrypted.pdf", "encrypted PDF that needs a password"),
        ("truncated.pdf", "not a readable PDF"),
        ("not-really.docx", "not a Word .docx file"),
        ("latin1-undeclared.html", "unknown encoding: not UTF-8"),
        ("empty.txt", "empty file"),
    ],
)
def test_each_bad_file_is_one_line_naming_file_and_problem(name: str, problem: str) -> None:
    with pytest.raises(CorpusFormatError) as info:
        list(read_corpus([BAD / name]))
    message = str(info.value)
    assert "\n" not in message and name in message and problem in message
    assert info.value.exit_code == 2


def test_skip_bad_reads_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for source in [*BAD.iterdir(), MIXED / "upload.html"]:
        (folder / source.name).write_bytes(source.read_bytes())
    bad: list[BadRecord] = []
    docs = list(read_corpus([folder], skip_bad=True, on_bad=bad.append))
    assert [d.id for d in docs] == ["upload.html"]
    assert sorted(Path(b.path).name for b in bad) == sorted(p.name for p in BAD.iterdir())


def test_hidden_and_navigation_elements_are_dropped() -> None:
    raw = (MIXED / "upload.html").read_bytes().replace(
        b"<body>",
        b'<body><div hidden>Hidden words</div><nav>Site menu</nav>'
        b'<div role="navigation">Jump to</div><script>var tracking = 1;</script>',
        1,
    )
    text = extract(raw, "html").text
    assert text.startswith("Chapter 9. Uploading the package")
    for dropped in ("Hidden words", "Site menu", "Jump to", "tracking"):
        assert dropped not in text


def test_offsets_hold_when_control_characters_are_dropped() -> None:
    raw = (MIXED / "upload.html").read_bytes().replace(b"<p>", b"<p>\x00\x0c", 3)
    result = extract(raw, "html")
    assert "\x00" not in result.text
    for region in result.regions:  # every region still holds exactly one whole block
        block = result.text[region.start : region.end]
        assert block == (block.strip("\n") if region.whole else block.strip()) and block


def test_a_gzipped_document_is_read_through(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "upload.html.gz"
    path.write_bytes(gzip.compress((MIXED / "upload.html").read_bytes()))
    (doc,) = read_corpus([path])
    assert doc.title == "Chapter 9. Uploading the package" and doc.metadata["ext"] == ".html"


def test_declared_encodings() -> None:
    raw = (BAD / "latin1-undeclared.html").read_bytes()
    declared = raw.replace(b"<head>", b'<head><meta charset="iso-8859-1">', 1)
    assert "für" in decode_html(declared)
    bogus = raw.replace(b"<head>", b'<head><meta charset="x-klingon">', 1)
    with pytest.raises(ExtractionError, match="unknown encoding 'x-klingon'"):
        decode_html(bogus)


def test_format_option_reads_a_file_without_its_extension(tmp_path: Path) -> None:
    page = tmp_path / "saved-page"
    page.write_bytes((MIXED / "upload.html").read_bytes())
    with pytest.raises(CorpusFormatError, match="cannot tell the corpus format"):
        read_corpus([page])
    (doc,) = read_corpus([page], format="html")
    assert doc.title == "Chapter 9. Uploading the package"
    (doc,) = read_corpus([tmp_path], format="html")  # a folder: every file as HTML
    assert doc.id == "saved-page" and doc.metadata["format"] == "html"


@pytest.mark.parametrize(
    ("name", "module"),
    [("upload.html", "selectolax.lexbor"), ("maint-guide-excerpt.pdf", "pdfminer"),
     ("new-maintainer.docx", "docx")],
)  # fmt: skip
def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, name: str, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[documents\]'"):
        list(read_corpus([MIXED / name]))
    # Markdown and text need nothing.
    assert extract(b"# T\n\nbody", "markdown").title == "T"
