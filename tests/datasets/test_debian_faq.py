"""debian-faq: the FAQ and manual parsers on snippets in each source's real format, the
held-out package rules, the train/dev split, and (when the packages are installed) a build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from shortlist.errors import InvalidInputError
from shortlist.evaluate.beir import load_beir, write_beir
from shortlist.types import Document
from shortlist_datasets import debian_docs, debian_faq, faq_parsers, markup
from shortlist_datasets.debian_faq import Entry, assemble, chunk, pseudo_query

POD = """=head1 NAME

perlfaq4 - Data Manipulation

=head1 Data: Numbers

=head2 Why is int() broken?

Your C<int()> is most probably working just fine. It's the numbers that
aren't quite what you think. See L<perlfaq4/"Why am I getting long decimals">
and E<lt>thisE<gt>.

    printf("%.2f", 19.95);

=head3 A subheading

More text with C<< $a <=> $b >> and B<bold>.



=head2 How do I round?

(contributed by brian d foy)

=over 4

=item *

Use sprintf.

=back

=begin html

<p>skipped</p>

=end html

=cut

sub not_pod { }

=head2 Empty question?

=cut
"""

ZSH = """Chapter 1:  Introducing zsh
1.1. Sources of information
1.2. What is it?

Chapter 1: Introducing zsh and how to install it



1.1: Sources of information



Information on zsh is available via the World Wide Web.  The URL
  is https://zsh.sourceforge.io/ .

Another useful source of information.



1.2: What is it, and why would
  anyone use it?



Zsh is a UNIX command interpreter (shell).

Chapter 2: How does zsh differ from...?



2.1: sh and ksh?



Most features of ksh are in zsh.
"""

GITFAQ = """gitfaq(7)
=========

NAME
----
gitfaq - Frequently asked questions about using Git

Configuration
-------------

[[user-name]]
What should I put in `user.name`?::
\tYou should put your personal name, generally a form using a given name
\tand family name.
+
This configuration doesn't have any effect on authenticating; see
linkgit:git-config[1].

[[configure-editor]]
How do I configure a different editor?::
\tUse the `EDITOR` variable:
+
----
export VISUAL=nano
----

Credentials
-----------

[[http-credentials]]
How do I specify my credentials when pushing over HTTP?::
\tUse a credential helper.
"""

SQLITE = """<html><body><h2>Frequently Asked Questions</h2>
<ol class=nounderline><li value='1'><a href="#q1">How do I create an AUTOINCREMENT field?</a></li>
</ol><a name="q1"></a>
<p><b>(1) How do I create an AUTOINCREMENT field?</b></p>
<blockquote><p>Short answer: A column declared <a href="x.html">INTEGER PRIMARY KEY</a> will
  autoincrement.</p>
  <p>Longer answer: see below.</p>
<blockquote><pre>
CREATE TABLE t1(a INTEGER PRIMARY KEY);
</pre></blockquote>
</blockquote>
<a name="q2"></a>
<p><b>(2) What datatypes does
  SQLite support?</b></p>
<blockquote>SQLite uses <a href="datatype3.html">dynamic typing</a>.</blockquote>
</body></html>
"""

VALGRIND = """<div class="qandaset"><table border="0">
<tr class="question">
<td align="left" valign="top">
<a name="faq.pronounce"></a><a name="q-pronounce"></a><b>1.1.</b>
</td>
<td align="left" valign="top"><b>How do you pronounce "Valgrind"?</b></td>
</tr>
<tr class="answer">
<td align="left" valign="top"><a name="a-pronounce"></a></td>
<td align="left" valign="top"><p>The "Val" as in the word "value".</p>
<p>Don't feel bad: almost everyone gets it wrong at first.</p></td>
</tr>
<tr><td colspan="2"> </td></tr>
<tr class="question">
<td align="left" valign="top"><b>2.2.</b></td>
<td align="left" valign="top"><b>When building, 'make' fails with this:</b><pre class="screen">
/usr/bin/ld: cannot find -lc
</pre></td>
</tr>
<tr class="answer">
<td align="left" valign="top"></td>
<td align="left" valign="top"><p>You need to install the glibc-static-devel package.</p></td>
</tr>
</table></div>
"""


def test_pod_faq() -> None:
    entries = faq_parsers.pod_faq(POD)
    assert [e.question for e in entries] == ["Why is int() broken?", "How do I round?"]
    first = entries[0].answer
    assert first[0] == (
        "Your int() is most probably working just fine. It's the numbers that aren't quite "
        'what you think. See Why am I getting long decimals in perlfaq4 and <this>.'
    )
    assert first[1] == 'printf("%.2f", 19.95);'
    # =head3 and its text are part of the =head2 answer; the =begin html block is not.
    assert first[2:] == ("A subheading", "More text with $a <=> $b and bold.")
    assert entries[1].answer == ("Use sprintf.",)


def test_pod_sections_skip_code_after_cut() -> None:
    sections = markup.pod_sections(POD)
    assert [s.heading for s in sections][:3] == ["NAME", "Data: Numbers", "Why is int() broken?"]
    assert all("not_pod" not in p for s in sections for p in s.paragraphs)


PERLFUNC = """=head1 NAME

perlfunc - Perl builtin functions

=head2 Alphabetical Listing of Perl Functions

=over

=item chomp VARIABLE

=item chomp

X<chomp>

=for Pod::Functions remove a trailing record separator from a string

This safer version of L</chop> removes any trailing string.

=over

=item * nested bullet

=back


=item chop VARIABLE

Chops off the last character of a string.

=back
"""


def test_pod_items_as_sections() -> None:
    sections = markup.pod_sections(PERLFUNC, items=True)
    items = [(s.heading, s.paragraphs) for s in sections if s.level == 5]
    assert items == [
        (
            "chomp VARIABLE",
            ("This safer version of chop removes any trailing string.", "nested bullet"),
        ),
        ("chop VARIABLE", ("Chops off the last character of a string.",)),
    ]
    plain = markup.pod_sections(PERLFUNC)
    assert [s.heading for s in plain] == ["NAME", "Alphabetical Listing of Perl Functions"]


def test_zsh_faq() -> None:
    entries = faq_parsers.zsh_faq(ZSH)
    assert [(e.anchor, e.question) for e in entries] == [
        ("1.1", "Sources of information"),
        ("1.2", "What is it, and why would anyone use it?"),
        ("2.1", "sh and ksh?"),
    ]
    assert entries[0].answer == (
        "Information on zsh is available via the World Wide Web. The URL is "
        "https://zsh.sourceforge.io/ .",
        "Another useful source of information.",
    )
    assert entries[1].answer == ("Zsh is a UNIX command interpreter (shell).",)


def test_gitfaq() -> None:
    entries = faq_parsers.gitfaq(GITFAQ)
    assert [(e.anchor, e.question) for e in entries] == [
        ("user-name", "What should I put in user.name?"),
        ("configure-editor", "How do I configure a different editor?"),
        ("http-credentials", "How do I specify my credentials when pushing over HTTP?"),
    ]
    assert entries[0].answer == (
        "You should put your personal name, generally a form using a given name and family "
        "name.",
        "This configuration doesn't have any effect on authenticating; see git-config(1).",
    )
    # The listing block survives as text; the next section title is not part of the answer.
    assert entries[1].answer == ("Use the EDITOR variable:", "export VISUAL=nano")
    assert entries[2].answer == ("Use a credential helper.",)


def test_sqlite_faq() -> None:
    entries = faq_parsers.sqlite_faq(SQLITE)
    assert [(e.anchor, e.question) for e in entries] == [
        ("q1", "How do I create an AUTOINCREMENT field?"),
        ("q2", "What datatypes does SQLite support?"),
    ]
    assert entries[0].answer == (
        "Short answer: A column declared INTEGER PRIMARY KEY will autoincrement.",
        "Longer answer: see below.",
        "CREATE TABLE t1(a INTEGER PRIMARY KEY);",
    )
    assert entries[1].answer == ("SQLite uses dynamic typing.",)


def test_valgrind_faq() -> None:
    entries = faq_parsers.valgrind_faq(VALGRIND)
    assert [(e.anchor, e.question) for e in entries] == [
        ("1.1", 'How do you pronounce "Valgrind"?'),
        ("2.2", "When building, 'make' fails with this: /usr/bin/ld: cannot find -lc"),
    ]
    assert entries[0].answer == (
        'The "Val" as in the word "value".',
        "Don't feel bad: almost everyone gets it wrong at first.",
    )


VIM = """INDEX

SECTION 1 - GENERAL INFORMATION
    1.1. What is Vim?
    1.2. Who wrote
         Vim?

=============================================================================

SECTION 1 - GENERAL INFORMATION


1.1. What is Vim?

Vim stands for Vi IMproved.

For more information, read

    :help intro


1.2. Who wrote Vim? Was it
     one person?

Most of Vim was written by Bram Moolenar.

=============================================================================

SECTION 2 - RESOURCES
"""

LSOF = """1.0     General Concepts
1.1     Lsof -- what is it?

1.0     General Concepts

1.1     Lsof -- what is it?

        Lsof is a UNIX-specific tool.
"""

# Blank lines and question lines carry trailing spaces in the real file.
CVS = """\x20\x20
          " + Branching and Merging"
\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20
    1. What is a branch?\x20
\x20\x20\x20\x20
          Unfortunately, the word "branch" is an overloaded technical
          term.
\x20\x20\x20\x20\x20\x20\x20\x20\x20\x20
   Last modified: _6/13/1997_
\x20\x20\x20
    2. Why would I want to create a branch?\x20
\x20\x20\x20\x20
   Remember that you can think of your working directory as a "branch for
   one".
\x20\x20\x20
     1. Not a question, a list item
   in an answer.
\x20\x20
   " + Engineering"
\x20\x20\x20
    1. Where can I find out about Software Engineering?\x20
\x20\x20\x20\x20
   A couple different people suggested this book.
"""

SCREEN = """   screen: frequently asked questions
=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-=-


Q:   Why is it  impossible to download  a file with Kermit/sz/rz  when
     screen is running?

A:   Screen  always   interprets   control-sequences.

     Simply detach your screen session.

Q:   I  am using screen with  a  YYY terminal.

A:   You are out of luck there.
"""

FETCHMAIL = """<html><body>
<h1 id="Contents">Frequently Asked Questions About Fetchmail</h1>
<h2><a href="#G1">G1. What is fetchmail?</a></h2>
<hr>
<h1 id="G">General questions:</h1>
<h2><a id="G1" name="G1">G1. What is fetchmail and why should I
bother?</a></h2>
<p>Fetchmail is a one-stop solution.</p>
<h3>Details</h3>
<p>More here.</p>
<h2><a id="G2" name="G2">G2. Where do I find the latest FAQ?</a></h2>
<p>On the web.</p>
<h1>Build problems</h1><p>not an answer</p>
</body></html>
"""


def test_numbered_text_faq_prefers_the_body_to_the_table_of_contents() -> None:
    entries = faq_parsers.numbered_text_faq(VIM)
    assert [(e.anchor, e.question) for e in entries] == [
        ("1.1", "What is Vim?"),
        ("1.2", "Who wrote Vim? Was it one person?"),
    ]
    assert entries[0].answer == (
        "Vim stands for Vi IMproved.",
        "For more information, read",
        ":help intro",
    )
    assert entries[1].answer == ("Most of Vim was written by Bram Moolenar.",)
    lsof = faq_parsers.numbered_text_faq(LSOF, debian_faq._LSOF_QUESTION)
    assert [(e.anchor, e.question, e.answer) for e in lsof] == [
        ("1.1", "Lsof -- what is it?", ("Lsof is a UNIX-specific tool.",))
    ]


def test_cvs_faq() -> None:
    entries = faq_parsers.cvs_faq(CVS)
    assert [(e.anchor, e.question) for e in entries] == [
        ("branching-and-merging/1", "What is a branch?"),
        ("branching-and-merging/2", "Why would I want to create a branch?"),
        ("engineering/1", "Where can I find out about Software Engineering?"),
    ]
    assert entries[0].answer == (
        'Unfortunately, the word "branch" is an overloaded technical term.',
    )
    assert entries[1].answer == (
        'Remember that you can think of your working directory as a "branch for one".',
        "1. Not a question, a list item in an answer.",
    )


def test_qa_text_faq() -> None:
    entries = faq_parsers.qa_text_faq(SCREEN)
    assert [e.question for e in entries] == [
        "Why is it impossible to download a file with Kermit/sz/rz when screen is running?",
        "I am using screen with a YYY terminal.",
    ]
    assert entries[0].answer == (
        "Screen always interprets control-sequences.",
        "Simply detach your screen session.",
    )


def test_html_heading_faq() -> None:
    entries = faq_parsers.html_heading_faq(FETCHMAIL, 2, r"[A-Z]+\d+")
    assert [(e.anchor, e.question) for e in entries] == [
        ("G1", "What is fetchmail and why should I bother?"),
        ("G2", "Where do I find the latest FAQ?"),
    ]
    assert entries[0].answer == ("Fetchmail is a one-stop solution.", "Details", "More here.")
    assert entries[1].answer == ("On the web.",)


def test_html_sections_and_implied_end_tags() -> None:
    page = (
        "<html><head><title>Expansion (zsh)</title></head><body>"
        '<div class="header">Next: <a href="x">x</a></div>'
        '<h2 class="section">14.1 History Expansion</h2><p>History expansion allows<p>'
        "a second paragraph<ul><li>one<li>two</ul>"
        "<h3>14.1.1 Overview</h3><p>text</p></body></html>"
    )
    sections = markup.html_sections(markup.parse_html(page))
    assert [(s.level, s.heading) for s in sections] == [(2, "History Expansion"), (3, "Overview")]
    assert sections[0].paragraphs == (
        "History expansion allows",
        "a second paragraph",
        "one",
        "two",
    )
    # 10k unclosed <li>s must not nest 10k deep (the tree walkers would overflow).
    deep = markup.parse_html("<ul>" + "<li>x" * 10_000 + "</ul>")
    assert len(deep.iter()) == 10_002


def test_asciidoc_sections() -> None:
    sections = markup.adoc_sections(GITFAQ)
    assert [(s.level, s.heading) for s in sections][:3] == [
        (1, "gitfaq(7)"),
        (2, "NAME"),
        (2, "Configuration"),
    ]
    assert sections[1].paragraphs == ("gitfaq - Frequently asked questions about using Git",)


def test_asciidoc_option_items() -> None:
    page = (
        "OPTIONS\n-------\nIntro text.\n\n--onto <newbase>::\n\tStarting point.\n"
        "+\nMore about it.\n\n-q::\n--quiet::\n\tBe quiet.\n\tsub-term:::\n\t\tnested\n"
    )
    sections = markup.adoc_sections(page, items=True)
    assert [(s.level, s.heading, s.paragraphs) for s in sections] == [
        (2, "OPTIONS", ("Intro text.",)),
        (5, "--onto <newbase>", ("Starting point.", "More about it.")),
        (5, "-q, --quiet", ("Be quiet.", "sub-term", "nested")),
    ]


def test_pseudo_query_rules() -> None:
    name = "git-rebase - Reapply commits on top of another base tip"
    assert pseudo_query("git rebase", name, "DESCRIPTION") == (
        "git rebase: Reapply commits on top of another base tip"
    )
    assert pseudo_query("git rebase", name, "INTERACTIVE MODE") == "git rebase: INTERACTIVE MODE"
    for generic in ("SYNOPSIS", "OPTIONS", "See Also", "EXAMPLES", "NAME"):
        assert pseudo_query("git rebase", name, generic) == ""
    assert pseudo_query("Expansion (zsh)", "", "Expansion") == "Expansion (zsh)"
    # An option that happens to be part of the page name is still a heading of its own.
    assert pseudo_query("git ls-tree", "", "-t") == "git ls-tree: -t"
    assert pseudo_query("git add", "", "--") == ""


def test_chunk() -> None:
    assert chunk(["a b c", "d e"], max_words=4) == ["a b c", "d e"]
    assert chunk(["a b", "c d"], max_words=4) == ["a b c d"]
    long = " ".join(f"w{i}." if i % 3 == 2 else f"W{i}" for i in range(12))
    passages = chunk([long], max_words=6)
    assert all(len(p.split()) <= 6 for p in passages)
    assert " ".join(passages) == long
    # A short tail (under a quarter of max_words) is merged into the passage before it.
    assert chunk(["a b c d e f g h", "i"], max_words=8) == ["a b c d e f g h i"]


# ------------------------------------------------------------------ held-out packages


@pytest.mark.parametrize(
    "package",
    [
        "debian-faq",
        "debian-faq-de",
        "python3.11-doc",
        "python3-doc",
        "debian-reference-en",
        "installation-guide-amd64",
        "apt-doc",
        "maint-guide",
        "debian-policy",
        "harden-doc",
        "developers-reference",
        "debmake-doc",
        "debian-kernel-handbook",
        "debian-handbook",
    ],
)
def test_excluded_packages_are_refused(package: str) -> None:
    assert debian_docs.is_excluded_package(package)
    with pytest.raises(InvalidInputError, match="held out"):
        debian_docs.check_allowed(f"/usr/share/doc/{package}/index.html", package)
    # The path alone is enough: a file under an excluded package's folder is refused even
    # when dpkg names another owner.
    if "*" not in package and not package.startswith("python"):
        with pytest.raises(InvalidInputError):
            debian_docs.check_allowed(f"/usr/share/doc/{package}/faq.html", "perl-doc")


@pytest.mark.parametrize("package", ["perl-doc", "git-doc", "zsh-doc", "sqlite3-doc", "valgrind"])
def test_recipe_packages_are_allowed(package: str) -> None:
    assert not debian_docs.is_excluded_package(package)
    debian_docs.check_allowed(f"/usr/share/doc/{package}/x.html", package)
    assert not set(debian_faq.PACKAGES) & {
        p for p in debian_faq.PACKAGES if debian_docs.is_excluded_package(p)
    }


def test_python_doc_paths_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        debian_docs.check_allowed("/usr/share/doc/python3.11/html/faq/general.html", "unknown")


# ------------------------------------------------------------------ assembly and splits


P = ("p",)


def _entries() -> list[Entry]:
    entries = []
    for source in ("afaq", "bfaq"):
        for n in range(30):
            entries.append(
                Entry(
                    key=f"{source}/doc/{n}",
                    source=source,
                    kind="faq",
                    query=f"How do I do thing number {n} with {source} tool",
                    title=source,
                    passages=(f"Answer {n} of {source} first part.", f"Second part {n} {source}."),
                )
            )
    entries += [
        # A near-duplicate question (case, punctuation, spacing) of a real one: dropped.
        Entry("man/x/0", "man", "pseudo", "how do I do thing NUMBER 3, with afaq tool?", "m", P),
        Entry("man/x/1", "man", "pseudo", "man: Heading one", "m", ("Heading one text.",)),
        # Its first passage repeats a real answer's passage: after deduplication it points
        # at that passage, so it may not be trained on when that answer is in dev.
        Entry("man/x/2", "man", "pseudo", "man: Copied", "m", ("Answer 7 of afaq first part.",)),
        Entry("man/x/3", "man", "pseudo", "", "m", ("Unjudged distractor.",)),
    ]
    return entries


def test_assemble_splits() -> None:
    result = assemble(_entries())
    train, dev = result.splits["train"], result.splits["dev"]
    assert not set(train) & set(dev)
    # 10% of each FAQ source, and only real pairs, in dev.
    assert sorted(result.query_metadata[q]["source"] for q in dev) == ["afaq"] * 3 + ["bfaq"] * 3
    assert all(result.query_metadata[q]["kind"] == "faq" for q in dev)
    assert "man/x/0" not in result.queries
    assert "man/x/1" in train
    assert result.dropped["duplicate pseudo questions"] == 1
    ids = [d.id for d in result.corpus]
    assert len(ids) == len(set(ids))
    assert "man/x/3#0" in ids
    assert "man/x/2#0" not in ids  # same text as afaq/doc/7#0
    dev_positives = {d for judged in dev.values() for d in judged}
    assert not dev_positives & {d for judged in train.values() for d in judged}
    assert set(result.queries) == set(train) | set(dev)


def test_assemble_is_deterministic_and_order_free_within_sources() -> None:
    entries = _entries()
    first = assemble(entries)
    again = assemble(list(reversed(entries[:60])) + entries[60:])
    assert first.splits == again.splits
    assert sorted(d.id for d in first.corpus) == sorted(d.id for d in again.corpus)


def test_shared_positive_never_leaks_into_train() -> None:
    entries = _entries()
    result = assemble(entries)
    if "afaq/doc/7" in result.splits["dev"]:
        assert "man/x/2" not in result.splits["train"]
        assert result.dropped["train queries sharing a dev positive"] == 1
    else:
        assert result.splits["train"]["man/x/2"] == {"afaq/doc/7#0": 1}


# ------------------------------------------------------------------ writing splits


def test_write_beir_named_splits_and_query_metadata(tmp_path: Path) -> None:
    corpus = [Document(id="d1", text="one"), Document(id="d2", text="two")]
    write_beir(
        tmp_path / "ds",
        corpus,
        {"q1": "first", "q2": "second"},
        None,
        splits={"train": {"q1": {"d1": 1}}, "dev": {"q2": {"d2": 1}}},
        query_metadata={"q1": {"source": "x", "kind": "faq"}},
    )
    assert sorted(p.name for p in (tmp_path / "ds" / "qrels").iterdir()) == [
        "dev.tsv",
        "train.tsv",
    ]
    lines = (tmp_path / "ds" / "queries.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["metadata"] == {"source": "x", "kind": "faq"}
    assert "metadata" not in json.loads(lines[1])
    dev = load_beir(tmp_path / "ds", split="dev")
    assert dev.queries == {"q2": "second"} and dev.qrels == {"q2": {"d2": 1}}
    assert load_beir(tmp_path / "ds", split="train").qrels == {"q1": {"d1": 1}}


def test_write_beir_needs_some_split(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="nothing to write"):
        write_beir(tmp_path / "ds", [], {}, None)
    with pytest.raises(InvalidInputError, match="given twice"):
        write_beir(tmp_path / "ds", [], {}, {}, splits={"test": {}})
    with pytest.raises(InvalidInputError, match="invalid split"):
        write_beir(tmp_path / "ds", [], {}, None, splits={"a/b": {}})


# ------------------------------------------------------------------ the real build

def _installed() -> bool:
    if shutil.which("dpkg-query") is None:
        return False
    return all(debian_docs.installed_version(p) for p in debian_faq.PACKAGES)


def test_missing_packages_name_the_apt_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debian_faq, "installed_version", lambda name: None)
    with pytest.raises(InvalidInputError, match="apt-get install -y perl-doc"):
        debian_faq.make_collection()


@pytest.mark.slow
@pytest.mark.skipif(not _installed(), reason="needs " + debian_faq.APT_COMMAND)
def test_full_build(tmp_path: Path) -> None:
    from shortlist_datasets import build_dataset

    stats = build_dataset("debian-faq", tmp_path / "faq")
    assert set(stats.split_queries) == {"train", "dev"}
    manifest = json.loads((tmp_path / "faq" / "dataset.json").read_text())
    faq_sources = {s.name for s in debian_faq.FAQ_SOURCES}
    dev_sources = {s for s, c in manifest["queries_per_source"].items() if c["dev"]}
    assert dev_sources == faq_sources
    assert all(not debian_docs.is_excluded_package(f["package"]) for f in manifest["files"])
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    dev = load_beir(tmp_path / "faq", split="dev")
    train = load_beir(tmp_path / "faq", split="train")
    assert not set(dev.qrels) & set(train.qrels)
    dev_docs = {d for judged in dev.qrels.values() for d in judged}
    assert not dev_docs & {d for judged in train.qrels.values() for d in judged}


def _fake_sources(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, owner: str = "perl-doc"
) -> None:
    faq = tmp_path / "perlfaq4.pod"
    faq.write_text(POD.replace("=head2 How do I round?", "=head2 How do I round numbers?"))
    manual = tmp_path / "git-rebase.txt"
    manual.write_text(
        "git-rebase(1)\n=============\n\nNAME\n----\n"
        "git-rebase - Reapply commits on top of another base tip\n\n"
        "DESCRIPTION\n-----------\n" + "Rebase replays commits one by one. " * 6 + "\n\n"
        "OPTIONS\n-------\n--onto <newbase>::\n\tStarting point. " + "More words here. " * 8
    )
    monkeypatch.setattr(
        debian_faq,
        "FAQ_SOURCES",
        (debian_faq.FaqSource("perlfaq", "Perl FAQ", lambda: [faq], faq_parsers.pod_faq),),
    )
    monkeypatch.setattr(
        debian_faq,
        "SECTION_SOURCES",
        (debian_faq.SectionSource("gitman", lambda: [manual], debian_faq._read_adoc),),
    )
    monkeypatch.setattr(debian_faq, "installed_version", lambda name: "1.0")
    monkeypatch.setattr(debian_faq, "owners", lambda paths: {p: owner for p in paths})


def test_collection_from_fake_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_sources(monkeypatch, tmp_path)
    collection = debian_faq.make_collection()
    assert collection.queries == {
        "perlfaq/perlfaq4/1-why-is-int-broken": "Why is int() broken?",
        "perlfaq/perlfaq4/2-how-do-i-round-numbers": "How do I round numbers?",
        "gitman/git-rebase/2": "git rebase: Reapply commits on top of another base tip",
        # OPTIONS makes no query; its --onto entry does.
        "gitman/git-rebase/4": "git rebase: --onto <newbase>",
    }
    # One dev query per FAQ source (10% of 2 rounds to 0, raised to 1); pseudo pairs train.
    assert len(collection.splits["dev"]) == 1
    assert {"gitman/git-rebase/2", "gitman/git-rebase/4"} <= set(collection.splits["train"])
    files = collection.manifest["files"]
    assert [(f["package"], f["version"], len(f["sha256"])) for f in files] == [
        ("perl-doc", "1.0", 64),
        ("perl-doc", "1.0", 64),
    ]
    assert "OPTIONS" not in " ".join(collection.queries.values())


def test_build_refuses_files_of_excluded_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_sources(monkeypatch, tmp_path, owner="debian-reference-en")
    with pytest.raises(InvalidInputError, match="held out"):
        debian_faq.make_collection()
