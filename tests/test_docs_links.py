"""Facts are cited inside the repository, and the documentation's links resolve.

Every fact the code relies on is stated under docs/ with its primary source (docs/loihi-facts.md,
docs/backprop.md "Sources"). These tests fail when a file cites a reference note that lives
outside the repository — a path into a ``shared/reference`` folder, or a note name with a section
mark such as ``seeds.md §1.7`` that is not a page under ``docs/`` — and when a relative link in
docs/*.md or README.md, or a ``docs/<page>.md`` mentioned anywhere, names a file that does not
exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED_DIRS = ("nmc", "tests", "bench", "docs", "targets", "examples")
SCANNED_FILES = ("README.md",)
THIS_FILE = Path(__file__).resolve()

#: Names of reference notes kept outside the repository.
NOTE_NAMES = ("loihi", "seeds", "spinnaker", "partitioning", "interop")
#: ``seeds.md §1.7``, ``loihi.md`` §2.2 (quotes allowed between), not preceded by ``docs/``.
NOTE_CITATION = re.compile(
    r"(?<!docs/)(?<![\w.-])(?:%s)\.md[`'\"]*\s*§" % "|".join(NOTE_NAMES))
OUTSIDE_PATH = re.compile(r"shared/reference")
#: Markdown links ``[text](target)``; the target up to ``)``, ``#`` or whitespace.
MD_LINK = re.compile(r"\]\(([^)#\s]*)(#[^)\s]*)?\)")
#: ``docs/page.md`` mentioned in any scanned file (code comments, docstrings, other pages).
DOCS_MENTION = re.compile(r"(?<![\w./-])docs/([\w-]+\.md)")


def _text_files() -> list[Path]:
    files = [ROOT / name for name in SCANNED_FILES if (ROOT / name).is_file()]
    for folder in SCANNED_DIRS:
        base = ROOT / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.resolve() != THIS_FILE:
                files.append(path)
    texts = []
    for path in files:
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary (e.g. .npz data)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        texts.append(path)
    return texts


def _lines(path: Path):
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        yield number, line


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_scan_sees_the_tree() -> None:
    names = {_rel(p) for p in _text_files()}
    assert "README.md" in names and "docs/loihi-facts.md" in names and "targets/loihi.toml" in names


def test_no_citation_of_notes_outside_the_repository() -> None:
    bad = []
    for path in _text_files():
        for number, line in _lines(path):
            if OUTSIDE_PATH.search(line) or NOTE_CITATION.search(line):
                bad.append(f"{_rel(path)}:{number}: {line.strip()}")
    assert not bad, ("cite the page under docs/ (docs/loihi-facts.md §N, docs/backprop.md "
                     "Sources) instead of a note outside the repository:\n" + "\n".join(bad))


def _markdown_pages() -> list[Path]:
    return sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


@pytest.mark.parametrize("page", _markdown_pages(), ids=_rel)
def test_relative_links_resolve(page: Path) -> None:
    bad = []
    for number, line in _lines(page):
        for match in MD_LINK.finditer(line):
            target = match.group(1)
            if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # same-page anchor, or a URL (https:, mailto:)
            if not (page.parent / target).exists():
                bad.append(f"{_rel(page)}:{number}: ]({target}) -> no such file")
    assert not bad, "\n".join(bad)


def test_mentioned_docs_pages_exist() -> None:
    bad = []
    for path in _text_files():
        for number, line in _lines(path):
            for match in DOCS_MENTION.finditer(line):
                if not (ROOT / "docs" / match.group(1)).is_file():
                    bad.append(f"{_rel(path)}:{number}: docs/{match.group(1)}")
    assert not bad, "pages that do not exist:\n" + "\n".join(bad)


@pytest.mark.parametrize("line, cites_outside", [
    ("(loihi.md §2.2)", True),
    ("facts in ``seeds.md`` §1.4", True),
    ("partitioning.md §1.1", True),
    ("see ../shared/reference/interop.md", True),
    ("(docs/loihi-facts.md §2.2)", False),
    ("docs/loihi.md §3", False),
    ("default ../shared/data/mnist.npz", False),
    ("nmc/formats/loihi.py", False),
])
def test_the_patterns_themselves(line: str, cites_outside: bool) -> None:
    assert bool(OUTSIDE_PATH.search(line) or NOTE_CITATION.search(line)) is cites_outside
