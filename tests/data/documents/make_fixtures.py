"""Rebuild the document fixtures of this folder from Debian's documentation packages.

    apt-get download maint-guide developers-reference debmake-doc
    for f in *.deb; do dpkg-deb -x "$f" /tmp/docpkgs; done
    python tests/data/documents/make_fixtures.py /tmp/docpkgs

Needs pypdf, python-docx (the ``documents`` extra plus pypdf) and ghostscript (``gs``)
for the scanned page. What each file is, and its license: README.md beside this script.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
MAINT_PDF = "usr/share/doc/maint-guide/maint-guide.en.pdf"
UPLOAD_HTML = "usr/share/doc/maint-guide/html/upload.en.html"
DEBMAKE_DE = "usr/share/doc/debmake-doc/html/ch01.de.html"
NEW_MAINTAINER_RST = "usr/share/developers-reference/_sources/new-maintainer.rst.txt"
PIP_MD = "/usr/share/doc/python3-pip/html/topics/local-project-installs.md"


def pdf_fixtures(src: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(src / MAINT_PDF)
    # Page 51 (installing, lintian), 57 (Chapter 9: uploading) of the guide, then 58
    # as a scan: rendered to an image-only page by ghostscript, so it has no text layer.
    with tempfile.TemporaryDirectory() as tmp:
        one = PdfWriter()
        one.add_page(reader.pages[57])
        page_pdf = Path(tmp) / "page.pdf"
        one.write(page_pdf)
        scan = Path(tmp) / "scan.pdf"
        subprocess.run(
            ["gs", "-q", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfimage8", "-r40",
             f"-sOutputFile={scan}", str(page_pdf)],
            check=True,
        )  # fmt: skip
        writer = PdfWriter()
        writer.add_page(reader.pages[50])
        writer.add_page(reader.pages[56])
        writer.add_page(PdfReader(scan).pages[0])
        writer.add_metadata({"/Title": "Debian New Maintainers' Guide (excerpt)"})
        writer.compress_identical_objects(remove_duplicates=True, remove_unreferenced=True)
        with open(HERE / "mixed" / "maint-guide-excerpt.pdf", "wb") as fh:
            writer.write(fh)

    locked = PdfWriter()
    locked.add_page(reader.pages[56])
    locked.encrypt(user_password="secret", algorithm="AES-128")
    with open(HERE / "bad" / "encrypted.pdf", "wb") as fh:
        locked.write(fh)
    buffer = io.BytesIO()
    cut = PdfWriter()
    cut.add_page(reader.pages[56])
    cut.write(buffer)
    # A download that stopped half way: the header and some objects, no xref, no trailer.
    (HERE / "bad" / "truncated.pdf").write_bytes(buffer.getvalue()[:3000])


def docx_fixture(src: Path) -> None:
    import docx

    rst = (src / NEW_MAINTAINER_RST).read_text(encoding="utf-8")
    document = docx.Document()
    document.core_properties.title = "Applying to Become a Member"
    lines = rst.splitlines()
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            document.add_paragraph(_plain(" ".join(paragraph)))
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        underline = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"([*=\-^])\1{3,}", underline.strip()):
            flush()
            level = {"*": 1, "=": 2, "-": 3, "^": 4}[underline.strip()[0]]
            document.add_heading(line.strip(), level=level)
            i += 2
            continue
        if not line.strip() or line.startswith(".. "):
            flush()
        else:
            paragraph.append(line.strip())
        i += 1
    flush()
    document.save(HERE / "mixed" / "new-maintainer.docx")


def _plain(text: str) -> str:
    """reStructuredText inline markup as plain text."""
    text = re.sub(r":ref:`([^`<]*?)\s*(<[^>]*>)?`", r"\1", text)
    text = re.sub(r"`([^`<]*?)\s*<[^>]*>`__?", r"\1", text)
    return text.replace("``", "").replace("\\ ", "")


def html_fixtures(src: Path) -> None:
    shutil.copy(src / UPLOAD_HTML, HERE / "mixed" / "upload.html")
    # German text in Latin-1 with its charset declarations removed: an unknown encoding.
    german = (src / DEBMAKE_DE).read_text(encoding="utf-8")
    german = re.sub(r"<\?xml[^>]*\?>", "", german)
    german = re.sub(r"<meta[^>]*charset[^>]*>", "", german, flags=re.I)
    (HERE / "bad" / "latin1-undeclared.html").write_bytes(german.encode("latin-1", "replace"))


def other_fixtures() -> None:
    shutil.copy(PIP_MD, HERE / "mixed" / "local-project-installs.md")
    # A ".docx" that is a zip of something else (here: this folder's README).
    with zipfile.ZipFile(HERE / "bad" / "not-really.docx", "w") as archive:
        archive.write(HERE / "README.md", "README.md")
    (HERE / "bad" / "empty.txt").write_bytes(b"")


def main() -> None:
    src = Path(sys.argv[1])
    (HERE / "mixed").mkdir(exist_ok=True)
    (HERE / "bad").mkdir(exist_ok=True)
    pdf_fixtures(src)
    html_fixtures(src)
    docx_fixture(src)
    other_fixtures()


if __name__ == "__main__":
    main()
